"""Cron expressions for the maintenance settings, read the way crontab(5) reads them.

APScheduler 3 counts the day of the week from Monday = 0, crontab from Sunday = 0 (7 is
Sunday too), so "0 3 * * 0" would run on Mondays if handed over as it is. Numbers in the
day-of-week field are translated to day names first. "off" (or an empty value) turns a
task off.
"""

from __future__ import annotations

import datetime as dt
import re

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger

OFF = "off"
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DOW_NUMBER = re.compile(r"(?<![/\d])\d+")  # a day number, not the step after a slash


def is_off(expr: str) -> bool:
    return expr.strip().lower() in ("", OFF)


def _crontab_days(field: str) -> str:
    def name(match: re.Match[str]) -> str:
        number = int(match.group())
        if number > 7:
            raise ValueError(f"day of week {number} is not 0-7")
        return _DAYS[number]

    return _DOW_NUMBER.sub(name, field)


def cron_trigger(expr: str, timezone: dt.tzinfo | str | None = None) -> CronTrigger:
    """A trigger for a five-field crontab expression (minute hour day month weekday).
    Raises ValueError naming what is wrong."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"expected 5 fields (minute hour day month weekday), got {len(fields)}")
    minute, hour, day, month, weekday = fields
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=_crontab_days(weekday),
        timezone=timezone,
    )


OPS_EXECUTOR = "ops"


def ensure_ops_executor(scheduler: BaseScheduler, threads: int = 2) -> str:
    """The worker's scheduler runs the heartbeat and the lease sweep on its default pool (the
    queue itself is a loop on a thread of its own); telemetry and maintenance get a pool of
    their own so a slow VACUUM or a hanging webhook can never delay a heartbeat (and so expire
    the running job's lease)."""
    try:
        scheduler.add_executor(ThreadPoolExecutor(threads), alias=OPS_EXECUTOR)
    except ValueError:  # already added by the other register()
        pass
    return OPS_EXECUTOR
