"""Logging for every process: one line format to stderr, which the supervisor sends to
<data>/logs/app.log. Call after importing funasr (it calls logging.basicConfig itself)."""

from __future__ import annotations

import logging
import os
import sys

FORMAT = "%(asctime)s %(levelname)s [{role} %(process)d] %(name)s: %(message)s"


def configure_logging(role: str, level: str | None = None) -> None:
    level = (level or os.environ.get("SEACO_LOG_LEVEL", "INFO")).upper()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT.format(role=role)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # APScheduler logs every run of every job at INFO: the heartbeat alone would flood app.log.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
