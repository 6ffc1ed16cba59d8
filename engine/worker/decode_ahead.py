"""Decode ahead of the model: the next queued jobs' audio is decoded to 16 kHz PCM in a
separate process while the worker's model is busy, and cached on disk for the worker.

- `PcmCache`: `<data>/tmp/pcm/<sha256>.v1.npy` (float32 samples) plus `.json` (AudioInfo),
  keyed by the upload's content hash (stored audio is named by it, so equal files share an
  entry). Written atomically (rename), bounded by `SEACO_PCM_CACHE_MB` (oldest use evicted
  first); the scheduled temp cleanup also removes entries not used for
  `SEACO_TEMP_MAX_AGE_S`. A missing, half-evicted or unreadable entry is just a miss.
- `Prefetcher`: one helper process (a fresh interpreter, so it never inherits torch's threads
  or the model) at a lower CPU priority, so decoding yields to inference on a small machine.
  The worker calls `ahead(jobs)` with the queue's next jobs (peeked, not claimed) and
  `get(job)` for the job it is about to run: a cached entry, else the helper's decode of it
  if one was asked for (waiting costs less than decoding twice), else None and the worker
  decodes itself, which is also how every decoding error reaches the job.

The helper is a plain subprocess speaking JSON lines over its stdin and stdout, not a
multiprocessing pool: no resource-tracker process beside it, and nothing of
multiprocessing's start-up that prints `EOFError: Ran out of input` when the worker dies
while it starts. It never outlives the worker (engine/lifeline.py: the kernel's
parent-death signal and a watch on the parent process; EOF on stdin ends it too), exits
quietly (status 0, no traceback) when the worker has gone, and carries
`SEACO_DECODE_AHEAD_PARENT=<worker pid>` in its environment, so tests (and an operator) can
find the helpers of a given worker.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import asdict
from pathlib import Path

import numpy as np

from engine.audio import TARGET_RATE, AudioInfo, decode

log = logging.getLogger("seaco.prefetch")
VERSION = "v1"  # bump when decoding changes, so stale PCM is never used
PARENT_ENV = "SEACO_DECODE_AHEAD_PARENT"  # the helper's marker: the pid of its worker
ROOT = Path(__file__).resolve().parents[2]  # the directory `engine` is imported from
# The helper's program: tie its life to the worker before anything slow is imported.
HELPER = (
    "import os; from engine.lifeline import die_with_parent; "
    f"die_with_parent(int(os.environ['{PARENT_ENV}'])); "
    "from engine.worker.decode_ahead import helper_main; helper_main()"
)


class PcmCache:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes

    def _paths(self, sha256: str) -> tuple[Path, Path]:
        stem = f"{sha256}.{VERSION}"
        return self.directory / f"{stem}.npy", self.directory / f"{stem}.json"

    def has(self, sha256: str) -> bool:
        return all(p.is_file() for p in self._paths(sha256))

    def get(self, sha256: str) -> tuple[np.ndarray, AudioInfo] | None:
        npy, meta = self._paths(sha256)
        try:
            info = AudioInfo(**json.loads(meta.read_text()))
            samples = np.load(npy, allow_pickle=False)
            os.utime(npy)  # a use: keeps it from the temp cleanup and from eviction
        except (OSError, ValueError, TypeError):
            return None
        if samples.dtype != np.float32 or samples.ndim != 1:
            return None
        return samples, info

    def put(self, sha256: str, samples: np.ndarray, info: AudioInfo) -> bool:
        """Store an entry (False when it alone exceeds the bound), then evict to the bound."""
        if samples.nbytes > self.max_bytes:
            return False
        self.directory.mkdir(parents=True, exist_ok=True)
        npy, meta = self._paths(sha256)
        part = self.directory / f".{uuid.uuid4().hex}.part"
        with open(part, "wb") as stream:
            np.save(stream, np.ascontiguousarray(samples, dtype=np.float32))
        os.replace(part, npy)  # the samples first: an entry counts only once its .json exists
        part.write_text(json.dumps(asdict(info)))
        os.replace(part, meta)
        self.evict()
        return True

    def evict(self) -> int:
        """Remove least recently used entries until the cache fits its bound."""
        entries = []
        for npy in self.directory.glob(f"*.{VERSION}.npy"):
            try:
                stat = npy.stat()
            except FileNotFoundError:
                continue
            entries.append((max(stat.st_mtime, stat.st_atime), stat.st_size, npy))
        total = sum(size for _, size, _ in entries)
        removed = 0
        for _, size, npy in sorted(entries):
            if total <= self.max_bytes:
                break
            npy.with_name(npy.name.removesuffix(".npy") + ".json").unlink(missing_ok=True)
            npy.unlink(missing_ok=True)
            total -= size
            removed += 1
        return removed


def _decode_into(path: str, sha256: str, cache_dir: str, max_bytes: int, max_s: float) -> bool:
    """In the helper: decode and store. Errors stay here: the worker will decode the file
    itself and report them on the job."""
    try:
        samples, info = decode(path, max_duration_s=max_s)
        return PcmCache(Path(cache_dir), max_bytes).put(sha256, samples, info)
    except Exception:
        return False


def helper_main() -> None:
    """The decode-ahead helper's loop (run by `HELPER` in its own interpreter): one request a
    line on stdin (`_decode_into`'s arguments as a JSON object), one answer a line on stdout
    (`{"sha256": ..., "stored": bool}`), in request order. Ends with status 0, quietly, at
    EOF on stdin or when the worker can no longer read the answers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is the worker's to handle
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # whatever a library prints goes to the log, not among the answers
    try:
        os.nice(10)  # the model's threads come first; decoding is ~1 % of the work
    except OSError:
        pass
    try:
        for line in sys.stdin:
            request = json.loads(line)
            stored = _decode_into(**request)
            answers.write(json.dumps({"sha256": request["sha256"], "stored": stored}) + "\n")
            answers.flush()
    except (BrokenPipeError, ConnectionResetError):  # the worker has gone
        pass
    os._exit(0)  # nothing to flush into a closed pipe at exit


class Prefetcher:
    def __init__(self, cache: PcmCache, data_dir: Path, max_duration_s: float, ahead: int):
        self.cache = cache
        self.data_dir = Path(data_dir)
        self.max_duration_s = max_duration_s
        self.ahead_n = ahead
        self._helper: subprocess.Popen | None = None
        self._pending: list[str] = []  # sha256s asked for whose answers are not read yet

    def _start_helper(self) -> subprocess.Popen:
        if self._helper is None:
            self._helper = subprocess.Popen(
                [sys.executable, "-c", HELPER], cwd=ROOT, text=True, encoding="utf-8",
                stdin=subprocess.PIPE, stdout=subprocess.PIPE,  # stderr: the worker's log
                env={**os.environ, PARENT_ENV: str(os.getpid())},
            )  # fmt: skip
        return self._helper

    @property
    def helper_pid(self) -> int | None:
        """The helper process's pid while one is running (started by the first `ahead`)."""
        return self._helper.pid if self._helper is not None else None

    def ahead(self, jobs: list) -> int:
        """Ask for these upcoming jobs (queue order) to be decoded unless cached or already
        asked for. Returns how many were asked for."""
        started = 0
        for job in jobs[: self.ahead_n]:
            sha = job.audio_sha256
            if sha in self._pending or self.cache.has(sha):
                continue
            request = {
                "path": str(self.data_dir / job.audio_path), "sha256": sha,
                "cache_dir": str(self.cache.directory), "max_bytes": self.cache.max_bytes,
                "max_s": self.max_duration_s,
            }  # fmt: skip
            try:
                requests = self._start_helper().stdin
                assert requests is not None  # stdin=PIPE
                requests.write(json.dumps(request) + "\n")
                requests.flush()
            except OSError:  # could not start, or it died: the worker decodes itself
                log.exception("decode-ahead could not start; decoding in the worker")
                self.close()
                break
            self._pending.append(sha)
            started += 1
        return started

    def get(self, job) -> tuple[np.ndarray, AudioInfo] | None:
        """The job's decoded audio if it was decoded ahead, else None."""
        if job.audio_sha256 in self._pending:
            self._wait_for(job.audio_sha256)
        hit = self.cache.get(job.audio_sha256)
        if hit is not None and len(hit[0]) > self.max_duration_s * TARGET_RATE:
            return None  # the limit was lowered since: let decode() say so
        return hit

    def _wait_for(self, sha: str) -> None:
        """Read the helper's answers (they come in request order) up to `sha`'s."""
        answers = self._helper.stdout if self._helper is not None else None
        try:
            while answers is not None and sha in self._pending:
                line = answers.readline()
                if not line:
                    log.warning("the decode-ahead process has gone; decoding in the worker")
                    self.close()
                    return
                self._pending.remove(json.loads(line)["sha256"])
        except (OSError, ValueError, KeyError):
            log.exception("decode-ahead answered nonsense; decoding in the worker")
            self.close()

    def close(self) -> None:
        """Stop the helper (SIGTERM, SIGKILL after 5 s) and reap it."""
        helper, self._helper = self._helper, None
        self._pending.clear()
        if helper is None:
            return
        for stream in (helper.stdin, helper.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:  # e.g. a request still buffered for a helper that has died
                pass
        helper.terminate()
        try:
            helper.wait(timeout=5)
        except subprocess.TimeoutExpired:
            helper.kill()
            helper.wait()
