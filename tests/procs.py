"""Real processes in tests: start them with a settings environment, wait for conditions
(polling with a deadline, never a bare sleep), always clean up, and find the processes a
service left behind (by an environment variable each of them carries)."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from engine.config import Settings
from engine.waiting import free_port
from engine.waiting import wait_for as wait_for  # re-exported: tests import it from here
from engine.worker.decode_ahead import PARENT_ENV

ROOT = Path(__file__).resolve().parent.parent


def env_for(settings: Settings, extra: dict[str, str] | None = None) -> dict[str, str]:
    return settings.child_env({"PYTHONUNBUFFERED": "1", **(extra or {})})


def start(
    args: list[str], settings: Settings, log: Path, extra_env: dict[str, str] | None = None
) -> subprocess.Popen:
    """`seaco ARGS` as a process of its own; `extra_env` is for test seams such as
    SEACO_TEST_PIPELINE (tests/fault_pipeline.py), which are not settings."""
    out = open(log, "ab")  # noqa: SIM115 - closed with the process by stop()
    return subprocess.Popen(
        [sys.executable, "-m", "engine.cli", *args], cwd=ROOT, env=env_for(settings, extra_env),
        stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip


def stop(proc: subprocess.Popen, timeout: float = 60) -> int:
    """SIGTERM `proc` and wait; past `timeout`, SIGKILL its process group and those of the
    processes it started (`seaco serve` starts each child in a group of its own)."""
    if proc.poll() is None:
        try:
            started = psutil.Process(proc.pid).children(recursive=True)
        except psutil.Error:
            started = []
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            for pid in [proc.pid, *(p.pid for p in started)]:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:  # not a group leader, or gone
                    pass
            for child in started:
                try:
                    child.kill()
                except psutil.Error:
                    pass
            proc.wait()
    return proc.returncode


def processes_with_env(name: str, value: str) -> list[psutil.Process]:
    """Live processes (zombies, already dead, left out) whose environment has `name=value`."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get(name) == value and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except psutil.Error:  # gone meanwhile, or another user's
            continue
    return found


def decode_helpers_of(worker_pid: int) -> list[psutil.Process]:
    """The live decode-ahead processes that worker `worker_pid` started, found by the marker
    each carries (engine/worker/decode_ahead.py), so also one started at the moment the
    worker died."""
    return processes_with_env(PARENT_ENV, str(worker_pid))


def instance_processes(settings: Settings) -> list[psutil.Process]:
    """Every live process of the instance with this data dir: supervisor, web, worker, and
    anything they started (each inherits SEACO_DATA_DIR)."""
    return processes_with_env("SEACO_DATA_DIR", str(settings.data_dir))


def seaco_stop(settings: Settings) -> str:
    """`seaco stop` for this instance, as an operator runs it; its output ("stopped")."""
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", "stop"], cwd=ROOT, env=env_for(settings),
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def get_health(base_url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(base_url + "/health", timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)
    except OSError:
        return 0, {}


def serve(tmp_path: Path, name: str, extra_env: dict[str, str] | None = None, **overrides: str):
    """`seaco serve` on a free port with its own data dir; returns (settings, proc, url)."""
    from tests.conftest import make_settings

    settings = make_settings(
        tmp_path / name, port=str(free_port()), device="cpu", ncpu="1", heartbeat_s="1",
        lease_s="5", **overrides,
    )  # fmt: skip
    settings.ensure_dirs()
    proc = start(["serve"], settings, tmp_path / f"{name}.log", extra_env)
    return settings, proc, f"http://127.0.0.1:{settings.port}"


def _forked_worker(settings: Settings, log: Path) -> None:
    """The body of a fork_worker process: `run_worker`, its output going to `log`."""
    code = 70
    try:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
        from engine.logging_setup import configure_logging
        from engine.worker.queue_worker import run_worker

        configure_logging("worker")
        code = run_worker(settings)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        os._exit(code)  # no cleanup: like `seaco worker`, whose run_worker ends the process


def freeze_outside_a_write(pid: int, db_path: Path, tries: int = 100) -> None:
    """SIGSTOP `pid` at a moment it holds no write lock on `db_path`. A process frozen in
    the middle of a write transaction (a heartbeat, a telemetry row) would hold the lock
    until SIGCONT and turn every other writer's request into a "database busy" 503."""
    probe = sqlite3.connect(db_path, timeout=0, isolation_level=None)
    try:
        for _ in range(tries):
            os.kill(pid, signal.SIGSTOP)
            try:
                probe.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:  # caught mid-write: let it finish, try again
                os.kill(pid, signal.SIGCONT)
                probe.execute("PRAGMA busy_timeout = 30000")  # wait for that write's commit
                probe.execute("BEGIN IMMEDIATE")
                probe.execute("ROLLBACK")
                probe.execute("PRAGMA busy_timeout = 0")
                continue
            probe.execute("ROLLBACK")
            return
    finally:
        probe.close()
    raise AssertionError(f"process {pid} held the write lock on {db_path} at every try")


def fork_worker(settings: Settings, log: Path) -> multiprocessing.process.BaseProcess:
    """Start a worker process in well under a second; returns its Process (`.pid`; reap it
    with `.join()`). It runs the same `run_worker` as `seaco worker`, in a process of its
    own, but is forked from multiprocessing's fork server, a clean single-threaded process
    that imported funasr once (~7 s) instead of every worker paying for it, so one test can
    kill twenty of them. (Forking the test process itself would copy whatever threads and
    locks earlier tests left in it.)"""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["funasr", "engine.worker.queue_worker", "tests.procs"])
    process = ctx.Process(target=_forked_worker, args=(settings, log), daemon=False)
    process.start()
    return process
