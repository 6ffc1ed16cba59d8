"""`seaco serve`: start the web and worker processes, keep them alive, stop them cleanly.

One worker process per slot of SEACO_WORKERS (`engine.ops.health.configured_workers`: w0,
w1, ..., each `seaco worker --slot N` with its own device and torch threads). Each slot is a
child of its own: its own restart back-off, hard time limit and recovery of the job it
held; a dying worker never touches its siblings or their jobs.

One instance per data directory, found through <data>/seaco.pid: a stale instance is stopped before
a new one starts. Children write to <data>/logs/app.log. A worker that dies is started again after a
back-off (1 s doubling to 30 s, reset once it has lived a minute); the job it held is queued again
at once and, after SEACO_MAX_ATTEMPTS deaths, failed as poison rather than taking the service down.
A worker that exits cleanly (code 0: the memory guard or its job quota, see
engine/worker/memory_guard.py) is replaced at once. The supervisor also enforces the hard per-job
time limit (engine/worker/watchdog.py): a worker stuck in a job past it is killed.

Each child runs in a process group (and session) of its own, and once it has exited the
supervisor kills what is left of that group before reaping it, so no helper a child started
(the worker's decode-ahead process) outlives it, whatever killed the child. A terminal's
Ctrl-C reaches only the supervisor, which stops the children itself.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TypeVar

import psutil

from engine.app_files import APP_DIR
from engine.config import Settings, WorkerSlot
from engine.errors import ConfigError
from engine.intake import remove_stale_temp
from engine.lifeline import SUPERVISOR_ENV
from engine.ops.health import configured_workers
from engine.worker.watchdog import Watchdog

log = logging.getLogger("seaco.supervisor")
STOP_GRACE_S = 30  # a running job gets this long to finish before it is given back
T = TypeVar("T")


def pid_file(settings: Settings) -> Path:
    return settings.data_dir / "seaco.pid"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_instance(settings: Settings, timeout_s: float = STOP_GRACE_S + 10) -> bool:
    """Stop the instance recorded in the pid file, if any. True when one was stopped."""
    path = pid_file(settings)
    try:
        pid = int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return False
    if pid == os.getpid() or not _alive(pid):
        path.unlink(missing_ok=True)
        return False
    log.info("stopping the running instance (pid %s)", pid)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive(pid):
        log.warning("instance %s did not stop in %.0f s; killing it", pid, timeout_s)
        for child in _children(pid):  # each in a group of its own (Supervisor._start)
            _kill_group(child)
        os.killpg(pid, signal.SIGKILL) if _is_group_leader(pid) else os.kill(pid, signal.SIGKILL)
    path.unlink(missing_ok=True)
    return True


def _children(pid: int) -> list[int]:
    try:
        return [child.pid for child in psutil.Process(pid).children()]
    except psutil.Error:
        return []


def _kill_group(pgid: int) -> None:
    """SIGKILL every process in group `pgid`; nothing when the group is empty or gone."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _has_exited(process: subprocess.Popen) -> bool:
    """True once `process` has exited. It is left unreaped (a zombie keeps its pid and its
    process group id from being reused), so `_reap` can still kill its group safely."""
    if process.returncode is not None:
        return True
    if not hasattr(os, "waitid"):  # not Linux: reap now; its group is killed just after
        return process.poll() is not None
    try:
        return os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # already reaped
        return True


def _wait_exited(process: subprocess.Popen, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not _has_exited(process):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def _reap(process: subprocess.Popen) -> int:
    """Kill what is left of an exited child's process group, then reap the child; its code."""
    _kill_group(process.pid)
    return process.wait()


def _is_group_leader(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except ProcessLookupError:
        return False


def check_log_dir(settings: Settings) -> Path:
    """The article's run.sh checks this first: a service that cannot log is blind."""
    settings.ensure_dirs()
    probe = settings.log_dir / ".write-test"
    try:
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"The log directory {settings.log_dir} is not writable: {exc}") from exc
    return settings.log_dir / "app.log"


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff_s: float = 1.0
    next_start: float = 0.0
    env: dict[str, str] = field(default_factory=dict)
    started_ms: int = 0  # wall clock, to tell this process's worker rows from older ones
    killed_for_timeout: bool = False
    slot: WorkerSlot | None = None  # a worker's slot of SEACO_WORKERS; None for the web

    @property
    def is_worker(self) -> bool:
        return self.slot is not None


def web_argv(settings: Settings) -> list[str]:
    return [
        sys.executable, "-m", "streamlit", "run", str(APP_DIR / "server.py"),
        "--server.address", settings.host,
        "--server.port", str(settings.port),
        "--server.headless", "true",
        "--server.maxUploadSize", str(settings.max_upload_mb),
        "--server.enableXsrfProtection", "true",
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "viewer",
    ]  # fmt: skip


def worker_argv(slot: int = 0) -> list[str]:
    return [sys.executable, "-m", "engine.cli", "worker", "--slot", str(slot)]


# Thread pools that libraries other than torch size from the core count; a worker gets its
# slot's thread count in them too (unless the operator set them), so that workers sharing a
# CPU do not each start a thread per core.
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def worker_env(env: dict[str, str], slot: WorkerSlot) -> dict[str, str]:
    threads = {name: str(slot.threads) for name in THREAD_ENV if name not in env}
    return {**env, **threads}


class Supervisor:
    def __init__(self, settings: Settings, log_stream: IO[bytes] | None = None):
        self.settings = settings
        self.log_stream = log_stream
        # SUPERVISOR_ENV: the children end with this process, however it ends (lifeline.py)
        env = {
            **os.environ,
            **settings.supervised_env(),
            "PYTHONUNBUFFERED": "1",
            SUPERVISOR_ENV: str(os.getpid()),
        }
        # Uploads are spooled by the web framework before our code sees them: keep those
        # files on the data disk (watched by /health, cleaned at start), not in a RAM /tmp.
        web_env = {**env, "TMPDIR": str(settings.tmp_dir)}
        self.slots = configured_workers(settings)
        self.children = [
            Child("web", web_argv(settings), env=web_env),
            *(
                Child(
                    f"worker {slot.name}" if len(self.slots) > 1 else "worker",
                    worker_argv(slot.index),
                    env=worker_env(env, slot),
                    slot=slot,
                )  # fmt: skip
                for slot in self.slots
            ),
        ]
        self.stopping = False
        self.watchdog = Watchdog(settings)
        self._db_error_logged = False

    def _start(self, child: Child) -> None:
        out = self.log_stream if self.log_stream is not None else None
        child.process = subprocess.Popen(
            child.argv, cwd=APP_DIR, env=child.env, stdout=out, stderr=out,
            stdin=subprocess.DEVNULL, start_new_session=True,  # its group: see _reap
        )  # fmt: skip
        child.started_at = time.monotonic()
        child.started_ms = int(time.time() * 1000)
        child.killed_for_timeout = False
        log.info("%s started (pid %s)", child.name, child.process.pid)

    def _watch(self, child: Child) -> None:
        if child.process is None:
            if time.monotonic() >= child.next_start:
                if child.name == "web":
                    self._clean_temp()
                self._start(child)
            return
        if not _has_exited(child.process):
            if time.monotonic() - child.started_at > 60:
                child.backoff_s = 1.0
            if child.is_worker:
                self._enforce_time_limit(child)
            return
        code = _reap(child.process)
        child.restarts += 1
        pid = child.process.pid
        child.process = None
        if child.slot is not None:
            slot = child.slot
            self._db(lambda: self.watchdog.worker_exited(pid, child.started_ms, code, slot))
        if code == 0 or child.killed_for_timeout:
            # planned: the memory guard / job quota, or a job killed for its time limit; the
            # process itself was healthy, so a fresh one starts at once
            log.info("%s (pid %s) exited with code %s; starting a fresh one", child.name, pid, code)
            child.next_start = time.monotonic()
            return
        log.error(
            "%s exited with code %s; restarting in %.0f s (restart %d)",
            child.name, code, child.backoff_s, child.restarts,
        )  # fmt: skip
        child.next_start = time.monotonic() + child.backoff_s
        child.backoff_s = min(child.backoff_s * 2, 30.0)

    def _enforce_time_limit(self, child: Child) -> None:
        """Kill the worker when a job it holds has run past its hard time limit."""
        process = child.process
        assert process is not None
        late = self._db(lambda: self.watchdog.overdue(process.pid, child.started_ms))
        if not late:
            return
        for overdue in late:
            log.error(
                "job %s has run %.0f s, past its hard time limit of %.0f s: killing the "
                "worker (pid %s)", overdue.job.id, overdue.running_s, overdue.limit_s,
                process.pid,
            )  # fmt: skip
        _kill_group(process.pid)  # the worker and its decode-ahead process
        process.wait()  # dead before the job is handed on: it can write nothing more
        child.killed_for_timeout = True
        for overdue in late:
            self._db(functools.partial(self.watchdog.timed_out, overdue))

    def _db(self, action: Callable[[], T]) -> T | None:
        """Run a watchdog query; the supervisor itself must survive an unusable database."""
        try:
            result = action()
        except Exception:
            if not self._db_error_logged:
                log.exception("the supervisor could not use the job database")
                self._db_error_logged = True
            return None
        self._db_error_logged = False
        return result

    def _clean_temp(self) -> None:
        """Uploads cut off by a crash of the web process leave partial files behind."""
        try:
            removed = remove_stale_temp(self.settings)
        except OSError:
            log.exception("could not clean %s", self.settings.tmp_dir)
            return
        if removed:
            log.info("removed %d stale temporary upload files", removed)

    def request_stop(self, *_args: object) -> None:
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        stop_instance(self.settings)
        pid_file(self.settings).write_text(str(os.getpid()))
        try:
            while not self.stopping:
                for child in self.children:
                    self._watch(child)
                time.sleep(0.5)
        finally:
            self.stop_children()
            self.watchdog.close()
            if pid_file(self.settings).read_text().strip() == str(os.getpid()):
                pid_file(self.settings).unlink(missing_ok=True)
        return 0

    def stop_children(self) -> None:
        """SIGTERM all; the worker finishes its job (up to STOP_GRACE_S), then a second
        SIGTERM makes it give the job back; SIGKILL is the last resort. Each child's process
        group is killed once the child has exited, so nothing it started is left behind."""
        running = [
            (c.name, c.process)
            for c in self.children
            if c.process is not None and c.process.returncode is None
        ]
        for _name, process in running:  # os.kill, not send_signal: that reaps an exited child
            os.kill(process.pid, signal.SIGTERM)  # alive or a zombie: still ours
        for name, process in running:
            if not _wait_exited(process, STOP_GRACE_S):
                log.warning("%s still running after %s s; asking again", name, STOP_GRACE_S)
                os.kill(process.pid, signal.SIGTERM)
                _wait_exited(process, 10)
            _reap(process)  # SIGKILLs the group, the child too if it is still running
        log.info("stopped")


def serve(settings: Settings) -> int:
    log_path = check_log_dir(settings)
    if settings.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning(
            "listening on %s: the dashboard has no login, so anyone who can reach this address "
            "can upload audio and read transcripts; put it behind an authenticating reverse "
            "proxy (README, Security).%s",
            settings.host,
            "" if settings.token_list else " SEACO_API_TOKENS is empty: /api and /v1 are open too.",
        )
    file_handler = logging.FileHandler(log_path, encoding="utf-8")
    file_handler.setFormatter(logging.getLogger().handlers[0].formatter)
    logging.getLogger().addHandler(file_handler)
    with open(log_path, "ab", buffering=0) as stream:
        log.info("serving http://%s:%s (logs: %s)", settings.host, settings.port, log_path)
        return Supervisor(settings, log_stream=stream).run()
