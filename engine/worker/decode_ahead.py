"""Decode ahead of the model: the next queued jobs' audio is decoded to 16 kHz PCM in a
separate process while the worker's model is busy, and cached on disk for the worker.

- `PcmCache`: `<data>/tmp/pcm/<sha256>.v1.npy` (float32 samples) plus `.json` (AudioInfo),
  keyed by the upload's content hash (stored audio is named by it, so equal files share an
  entry). Written atomically (rename), bounded by `SEACO_PCM_CACHE_MB` (oldest use evicted
  first); the scheduled temp cleanup also removes entries not used for
  `SEACO_TEMP_MAX_AGE_S`. A missing, half-evicted or unreadable entry is just a miss.
- `Prefetcher`: a pool of one process (spawned, so it never inherits torch's threads or the
  model) at a lower CPU priority, so decoding yields to inference on a small machine. The
  worker calls `ahead(jobs)` with the queue's next jobs (peeked, not claimed) and `get(job)`
  for the job it is about to run: a cached entry, else the pool's decode of it if one is in
  flight (waiting costs less than decoding twice), else None and the worker decodes itself,
  which is also how every decoding error reaches the job.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import uuid
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np

from engine.audio import TARGET_RATE, AudioInfo, decode

log = logging.getLogger("seaco.prefetch")
VERSION = "v1"  # bump when decoding changes, so stale PCM is never used


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


def _init_child() -> None:
    try:
        os.nice(10)  # the model's threads come first; decoding is ~1 % of the work
    except OSError:
        pass


def _decode_into(path: str, sha256: str, cache_dir: str, max_bytes: int, max_s: float) -> bool:
    """In the pool process: decode and store. Errors stay here: the worker will decode the
    file itself and report them on the job."""
    try:
        samples, info = decode(path, max_duration_s=max_s)
        return PcmCache(Path(cache_dir), max_bytes).put(sha256, samples, info)
    except Exception:
        return False


class Prefetcher:
    def __init__(self, cache: PcmCache, data_dir: Path, max_duration_s: float, ahead: int):
        self.cache = cache
        self.data_dir = Path(data_dir)
        self.max_duration_s = max_duration_s
        self.ahead_n = ahead
        self._pool: ProcessPoolExecutor | None = None
        self._inflight: dict[str, Future] = {}

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_child,
            )
        return self._pool

    def ahead(self, jobs: list) -> int:
        """Start decoding these upcoming jobs (queue order) unless cached or in flight."""
        started = 0
        self._inflight = {k: f for k, f in self._inflight.items() if not f.done()}
        for job in jobs[: self.ahead_n]:
            sha = job.audio_sha256
            if sha in self._inflight or self.cache.has(sha):
                continue
            try:
                self._inflight[sha] = self._executor().submit(
                    _decode_into, str(self.data_dir / job.audio_path), sha,
                    str(self.cache.directory), self.cache.max_bytes, self.max_duration_s,
                )  # fmt: skip
                started += 1
            except Exception:  # a broken pool must not stop the worker: it decodes itself
                log.exception("decode-ahead could not start; decoding in the worker")
                self.close()
        return started

    def get(self, job) -> tuple[np.ndarray, AudioInfo] | None:
        """The job's decoded audio if it was decoded ahead, else None."""
        future = self._inflight.pop(job.audio_sha256, None)
        if future is not None:
            try:
                future.result()
            except Exception:
                return None
        hit = self.cache.get(job.audio_sha256)
        if hit is not None and len(hit[0]) > self.max_duration_s * TARGET_RATE:
            return None  # the limit was lowered since: let decode() say so
        return hit

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self._inflight.clear()
