"""Waiting on other processes without bare sleeps: poll a condition against a deadline, and
pick a free local port. Shared by `seaco bench` and the test harness (tests/procs.py)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
POLL_S = 0.05


def wait_for(condition: Callable[[], T | None], timeout: float = 60, what: str = "condition") -> T:
    """Call `condition` until it returns something truthy, and return that; TimeoutError
    naming `what` once `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(POLL_S)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
