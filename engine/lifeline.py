"""A helper process that must not outlive the process that started it (README, "no process
outlives the one that started it"). Called first thing in the helper:

- `die_with_parent(parent_pid)`: the kernel kills this process (SIGKILL) when its parent dies
  (Linux `prctl(PR_SET_PDEATHSIG)` through ctypes; elsewhere nothing), a daemon thread also
  ends it when the parent *process* has gone (a pidfd on Linux, else `getppid()` polled once
  a second), and if the parent died before either was armed, the process ends at once.
  Every way out is `os._exit(0)` or SIGKILL: quiet, no traceback, no cleanup to hang on.

Two watches, because PR_SET_PDEATHSIG fires when the parent *thread* that started this
process ends, and the thread only when Python gets to run it (not inside a long C call).
Only the standard library: the helper calls this before importing anything heavy.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent_pid: int) -> None:
    """Tie this process's life to `parent_pid` (its parent at start). Ends the process with
    exit status 0 at once when that is no longer its parent."""
    _arm_death_signal()
    pidfd = _open_pidfd(parent_pid)
    if os.getppid() != parent_pid:  # it died before we were watching (we were re-parented)
        os._exit(0)
    threading.Thread(
        target=_watch, args=(parent_pid, pidfd), name="parent-watch", daemon=True
    ).start()


def _arm_death_signal() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # no libc / no prctl: the watch thread still works
        pass


def _open_pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)  # Linux 5.3+: readable once the process has exited
    except (AttributeError, OSError):
        return None


def _watch(parent_pid: int, pidfd: int | None) -> None:
    if pidfd is not None:
        select.select([pidfd], [], [])
    else:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
    os._exit(0)


SUPERVISOR_ENV = "SEACO_SUPERVISOR_PID"
"""Set by `seaco serve` in the environment of the web and worker processes it starts."""


def die_with_supervisor() -> None:
    """In a process `seaco serve` started (SEACO_SUPERVISOR_PID is set): end when the
    supervisor ends, even by SIGKILL, so no web or worker process outlives it (a new
    `seaco serve` would find the port taken and a second worker on the queue, and `seaco stop`,
    which finds the instance by the supervisor's pid file, could not stop them). A worker
    killed this way mid-job loses only its lease: the job is queued again. Nothing happens in
    a process started any other way."""
    pid = os.environ.get(SUPERVISOR_ENV, "")
    if pid.isdigit():
        die_with_parent(int(pid))
