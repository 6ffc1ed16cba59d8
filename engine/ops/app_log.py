"""app.log and its rotated days: rotation (`app.log.YYYY-MM-DD.gz`, keep N) and counting the
ERROR lines of a time window for the Stability page.

Rotation copies and truncates (logrotate's copytruncate) instead of renaming: the supervisor,
the web process and the worker all hold app.log open in append mode, and none of them would
notice a rename; after a truncate their next append lands at the start of the empty file.
Lines written between the last copy and the truncate (microseconds) can be lost; that is the
price of not restarting the processes.
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

LOG_NAME = "app.log"
_ROTATED = re.compile(r"^app\.log\.(\d{4}-\d{2}-\d{2})(?:\.(\d+))?\.gz$")
# engine/logging_setup.py's format: "2026-01-02 03:04:05,678 ERROR [worker 123] seaco.worker: ..."
_LINE = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}),(\d{3}) (ERROR|CRITICAL) ")
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Rotation:
    rotated: Path | None  # the new .gz, None when app.log was empty or missing
    bytes: int
    deleted: list[str] = field(default_factory=list)


def rotated_files(log_dir: Path) -> list[Path]:
    """Rotated logs, oldest first (by the date in the name, then the sequence number)."""

    def key(path: Path) -> tuple[str, int]:
        match = _ROTATED.match(path.name)
        assert match
        return match.group(1), int(match.group(2) or 0)

    return sorted((p for p in log_dir.glob("app.log.*.gz") if _ROTATED.match(p.name)), key=key)


def _free_name(log_dir: Path, day: dt.date) -> Path:
    """app.log.2026-01-02.gz, or .1.gz, .2.gz ... when rotated more than once that day."""
    path = log_dir / f"{LOG_NAME}.{day.isoformat()}.gz"
    n = 0
    while path.exists():
        n += 1
        path = log_dir / f"{LOG_NAME}.{day.isoformat()}.{n}.gz"
    return path


def rotate(log_dir: Path, keep: int, now: dt.datetime | None = None) -> Rotation:
    """Compress app.log into app.log.<date>.gz, empty it, and delete all but the `keep`
    newest rotated files. The date is the local day of the minute before `now`: at midnight,
    the day that just ended, which is the day the file's lines belong to."""
    now = now or dt.datetime.now().astimezone()
    source = log_dir / LOG_NAME
    rotated: Path | None = None
    copied = 0
    if source.exists() and source.stat().st_size > 0:
        target = _free_name(log_dir, (now - dt.timedelta(minutes=1)).date())
        partial = target.with_name(target.name + ".part")
        with open(source, "r+b") as log, gzip.open(partial, "wb") as out:
            # Copy to the end (including what is appended while copying), then truncate at
            # once: the window in which a line can be lost stays tiny.
            while chunk := log.read(_CHUNK):
                out.write(chunk)
                copied += len(chunk)
            log.truncate(0)
        with open(partial, "rb") as written:
            os.fsync(written.fileno())
        os.replace(partial, target)
        rotated = target
    old = rotated_files(log_dir)
    deleted = []
    for path in old[: max(0, len(old) - keep)]:
        path.unlink(missing_ok=True)
        deleted.append(path.name)
    return Rotation(rotated=rotated, bytes=copied, deleted=deleted)


def _lines(path: Path) -> Iterator[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as f:
            yield from f
    except (OSError, EOFError):  # a file being rotated away, or a damaged .gz
        return


@dataclass(frozen=True)
class ErrorLines:
    count: int
    latest: list[str]  # the newest few, newest last


def error_lines(
    log_dir: Path,
    start_ms: int,
    end_ms: int,
    tz: dt.tzinfo | None = None,
    keep_latest: int = 20,
) -> ErrorLines:
    """ERROR and CRITICAL lines of app.log and its rotated files logged in [start, end).
    Log times are the processes' local time (`tz`, default the server's)."""
    tz = tz or dt.datetime.now().astimezone().tzinfo
    first_day = dt.datetime.fromtimestamp(start_ms / 1000, tz).date() - dt.timedelta(days=1)
    files = [
        p
        for p in rotated_files(log_dir)
        if dt.date.fromisoformat(_ROTATED.match(p.name).group(1)) >= first_day  # type: ignore[union-attr]
    ]
    files.append(log_dir / LOG_NAME)
    count, latest = 0, []
    for path in files:
        if not path.exists():
            continue
        for line in _lines(path):
            match = _LINE.match(line)
            if not match:
                continue
            stamp = dt.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=tz)
            at = int(stamp.timestamp() * 1000) + int(match.group(2))
            if start_ms <= at < end_ms:
                count += 1
                latest.append(line.rstrip("\n"))
                del latest[:-keep_latest]
    return ErrorLines(count=count, latest=latest)
