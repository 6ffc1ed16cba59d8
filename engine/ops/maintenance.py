"""Scheduled maintenance, run by the worker's APScheduler scheduler.

| task | default schedule | does |
|---|---|---|
| log rotation | daily at midnight | app.log -> app.log.YYYY-MM-DD.gz, keep SEACO_LOG_KEEP |
| temp cleanup | every 2 h | delete files in <data>/tmp unused for 1 h; stored audio no job uses |
| GPU memory check | every 15 min | alert after SEACO_GPU_ALERT_READINGS high readings in a row |
| audio retention | daily 00:30, when SEACO_AUDIO_RETENTION_DAYS > 0 | delete old audio |
| VACUUM/ANALYZE | Sundays 03:00 | compact jobs.db, refresh planner statistics |

The stale-lease sweep is not here: the worker already runs it every SEACO_LEASE_S / 2 and
records what it recovers (job.requeued, job.poison events).

Each task is a plain function taking its paths, thresholds and clock as arguments, so tests
call it directly on real files; `run()` records every run as a `maintenance.<task>` event
(level error when the task raised), which the Operations page lists.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.base import BaseTrigger
from tzlocal import get_localzone

from engine.config import Settings
from engine.cron import cron_trigger, ensure_ops_executor, is_off
from engine.ops import alerts, app_log, gpu
from engine.store import Store, now_ms

log = logging.getLogger("seaco.maintenance")
DAY_MS = 86_400_000
WATCH_KEY = "maintenance.gpu_memory_runs"  # settings_kv: each GPU's run of high readings
CATCH_UP_DELAY_S = 60  # a missed run is made up this long after the worker starts
# Tasks made up once when a run fell while no worker ran (the GPU check is not: a reading is
# only worth something now, and it runs every 15 minutes anyway).
CATCH_UP_TASKS = frozenset({"log_rotate", "temp_cleanup", "audio_retention", "vacuum"})
VACUUM_RETRY_S = 900  # a VACUUM put off because jobs were running is tried again this soon
FRESH_AUDIO_S = 3600  # an audio file written this recently may belong to an upload in flight
_STORED_AUDIO_NAME = re.compile(r"[0-9a-f]{64}")  # intake.audio_path_for: named by sha256


# --- temp cleanup ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Cleanup:
    removed: int
    bytes: int
    kept: int


def clean_temp(tmp_dir: Path, max_age_s: float, now: float | None = None) -> Cleanup:
    """Delete files under `tmp_dir` not accessed for `max_age_s`: the later of the access
    and modification times is the last use (many filesystems are mounted relatime, so an
    upload being written shows it in mtime, not atime). Empty subdirectories go too."""
    now = time.time() if now is None else now
    removed = size = kept = 0
    if not tmp_dir.is_dir():
        return Cleanup(0, 0, 0)
    for root, dirs, files in os.walk(tmp_dir, topdown=False):
        for name in files:
            path = Path(root) / name
            try:
                info = path.lstat()
                if now - max(info.st_atime, info.st_mtime) < max_age_s:
                    kept += 1
                    continue
                path.unlink()
            except FileNotFoundError:  # removed meanwhile (an upload finished)
                continue
            removed += 1
            size += info.st_size
        for name in dirs:
            try:
                (Path(root) / name).rmdir()  # only succeeds when empty
            except OSError:
                pass
    return Cleanup(removed, size, kept)


# --- GPU memory -----------------------------------------------------------------------------
@dataclass
class GpuMemoryWatch:
    """Counts consecutive high GPU-memory readings per GPU. The alert fires on exactly the
    `readings`-th high reading in a row, once; a reading under the threshold re-arms it."""

    threshold_pct: float
    threshold_mb: int = 0  # an absolute threshold wins over the percentage when set
    readings: int = 3
    consecutive: dict[int, int] = field(default_factory=dict)

    def threshold_bytes(self, total_bytes: int) -> float:
        if self.threshold_mb:
            return self.threshold_mb * 2**20
        return total_bytes * self.threshold_pct / 100

    def observe(self, snapshot: gpu.GpuSnapshot) -> list[tuple[gpu.GpuReading, int]]:
        """Feed one reading; returns the GPUs (with their run of high readings) that should
        alert now."""
        firing = []
        for g in snapshot.gpus:
            if g.memory_used_bytes > self.threshold_bytes(g.memory_total_bytes):
                self.consecutive[g.index] = self.consecutive.get(g.index, 0) + 1
                if self.consecutive[g.index] == self.readings:
                    firing.append((g, self.consecutive[g.index]))
            else:
                self.consecutive[g.index] = 0
        return firing

    @classmethod
    def for_settings(cls, settings: Settings, store: Store | None = None) -> GpuMemoryWatch:
        """A watch with the configured thresholds that goes on counting where the last
        worker stopped: the memory guard may replace the worker between two readings, and
        a count that restarted at zero each time would never reach the alert."""
        watch = cls(settings.gpu_alert_pct, settings.gpu_alert_mb, settings.gpu_alert_readings)
        saved = store.get_setting(WATCH_KEY) if store is not None else None
        if saved:
            try:
                watch.consecutive = {int(k): int(v) for k, v in json.loads(saved).items()}
            except (ValueError, AttributeError):
                pass  # unreadable: start counting afresh
        return watch

    def describe(self) -> str:
        if self.threshold_mb:
            return f"{self.threshold_mb} MB"
        return f"{self.threshold_pct:g} % of the card"


def check_gpu_memory(
    store: Store,
    settings: Settings,
    watch: GpuMemoryWatch,
    nvml: ModuleType | None = None,
    now: int | None = None,
) -> dict[str, Any]:
    """Read GPU memory (through engine/ops/gpu.py) and raise an alert when a GPU has been over
    the threshold `watch.readings` times in a row. Returns what the run saw, for its event."""
    snapshot = gpu.read_gpus(nvml)
    if snapshot.cpu_mode:
        return {"summary": snapshot.summary(), "gpus": []}
    alerted = []
    firing = watch.observe(snapshot)
    store.set_setting(WATCH_KEY, json.dumps(watch.consecutive))
    for reading, run in firing:
        used_gb, total_gb = reading.memory_used_bytes / 2**30, reading.memory_total_bytes / 2**30
        alerts.raise_alert(
            store,
            settings,
            "gpu_memory",
            f"GPU {reading.index} ({reading.name}) has used {used_gb:.1f} of {total_gb:.1f} GB "
            f"for {run} readings in a row (threshold {watch.describe()}).",
            data={
                "gpu": reading.index,
                "used_bytes": reading.memory_used_bytes,
                "total_bytes": reading.memory_total_bytes,
                "readings": run,
            },
            now=now,
        )
        alerted.append(reading.index)
    return {
        "summary": "; ".join(
            f"GPU {g.index}: {g.memory_used_bytes / 2**30:.1f}/{g.memory_total_bytes / 2**30:.1f}"
            f" GB, {watch.consecutive.get(g.index, 0)} high in a row"
            for g in snapshot.gpus
        ),
        "alerted": alerted,
    }


# --- audio retention ------------------------------------------------------------------------
@dataclass(frozen=True)
class Purge:
    files: int
    bytes: int
    skipped: int


def purge_old_audio(
    store: Store, data_dir: Path, retention_days: int, now: int | None = None
) -> Purge:
    """Delete the audio of jobs that finished more than `retention_days` ago (every job that
    shares the file must be that old and finished); transcripts, sentences and timings stay.
    A file written within the last hour is left alone: an upload of the same content may be
    about to queue a job on it."""
    now = now_ms() if now is None else now
    cutoff = now - retention_days * DAY_MS
    files = size = skipped = 0
    for row in store.audio_to_purge(cutoff):
        path = data_dir / row["audio_path"]

        def remove(path: Path = path) -> bool:
            try:
                if now / 1000 - path.stat().st_mtime < FRESH_AUDIO_S:
                    return False
                path.unlink()
            except FileNotFoundError:
                pass  # already gone (deleted by hand): still mark it purged
            return True

        if store.purge_audio(row["audio_sha256"], cutoff, remove, now):
            files += 1
            size += row["audio_bytes"] or 0
        else:
            skipped += 1
    return Purge(files, size, skipped)


# --- orphan audio (part of the temp cleanup) ------------------------------------------------
@dataclass(frozen=True)
class OrphanSweep:
    removed: int
    bytes: int


def remove_orphan_audio(store: Store, audio_dir: Path, now: float | None = None) -> OrphanSweep:
    """Delete stored audio that no job uses: left when the database refused an upload's row
    (busy or full) after its file was stored. A file written within FRESH_AUDIO_S may belong
    to an upload about to queue its job; the check and the delete happen under the write
    lock (Store.remove_unused_audio), so no upload can queue a job on a file being deleted."""
    now = time.time() if now is None else now
    removed = size = 0
    if not audio_dir.is_dir():
        return OrphanSweep(0, 0)
    for path in audio_dir.glob("??/*"):
        if not _STORED_AUDIO_NAME.fullmatch(path.name) or not path.is_file():
            continue  # not named like ours (an operator's file): leave it
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        if now - info.st_mtime < FRESH_AUDIO_S or store.audio_references(path.name):
            continue  # cheap checks first; the decisive ones are repeated under the lock

        def remove(path: Path = path) -> None:
            if now - path.stat().st_mtime >= FRESH_AUDIO_S:  # not just replaced by an upload
                path.unlink()

        try:
            if store.remove_unused_audio(path.name, remove) and not path.exists():
                removed += 1
                size += info.st_size
        except FileNotFoundError:  # deleted meanwhile
            continue
    return OrphanSweep(removed, size)


@dataclass(frozen=True)
class TempCleanup:
    temp: Cleanup
    orphans: OrphanSweep


def describe_cleanup(r: TempCleanup) -> str:
    text = f"Removed {r.temp.removed} files ({r.temp.bytes / 2**20:.1f} MB); kept {r.temp.kept}."
    if r.orphans.removed:
        text += (
            f" Deleted {r.orphans.removed} stored audio files no job uses "
            f"({r.orphans.bytes / 2**20:.1f} MB)."
        )
    return text


# --- the database ---------------------------------------------------------------------------
def vacuum_database(store: Store) -> dict[str, Any]:
    """VACUUM and ANALYZE when no job is queued or running (VACUUM holds the write lock for
    its whole run, which would stall a running job's writes); otherwise put off."""
    counts = store.counts_by_state()
    if counts["queued"] or counts["running"]:
        return {"skipped": True, "queued": counts["queued"], "running": counts["running"]}
    return {"skipped": False, **store.vacuum()}


# --- running and scheduling -----------------------------------------------------------------
def run(store: Store, task: str, fn: Callable[[], Any], describe: Callable[[Any], str]) -> Any:
    """Run one task and record it as a `maintenance.<task>` event; a failure is logged and
    recorded (level error) instead of raised, so the next run still happens."""
    started = time.monotonic()
    try:
        result = fn()
    except Exception as exc:
        log.exception("maintenance %s failed", task)
        _event(store, task, f"Failed: {type(exc).__name__}: {exc}", "error", {})
        return None
    is_record = dataclasses.is_dataclass(result) and not isinstance(result, type)
    data = dataclasses.asdict(result) if is_record else dict(result or {})
    data = {k: (str(v) if isinstance(v, Path) else v) for k, v in data.items()}
    data["seconds"] = round(time.monotonic() - started, 3)
    _event(store, task, describe(result), "info", data)
    return result


def _event(store: Store, task: str, message: str, level: str, data: dict[str, Any]) -> None:
    try:
        store.add_event(f"maintenance.{task}", message, level=level, data=data)
    except Exception:  # the database is busy or full: the log still has it
        log.exception("could not record maintenance %s", task)


def _rotation_text(r: app_log.Rotation) -> str:
    head = (
        f"Rotated {r.bytes / 2**20:.1f} MB to {r.rotated.name}."
        if r.rotated
        else "app.log was empty; nothing to rotate."
    )
    return head + (f" Deleted {', '.join(r.deleted)}." if r.deleted else "")


def _vacuum_text(r: dict[str, Any]) -> str:
    if r["skipped"]:
        return (
            f"Put off: {r['queued']} queued, {r['running']} running; "
            f"trying again in {VACUUM_RETRY_S // 60} min."
        )
    return (
        f"VACUUM and ANALYZE: {r['bytes_before'] / 2**20:.1f} -> {r['bytes_after'] / 2**20:.1f} MB."
    )


@dataclass(frozen=True)
class Task:
    name: str
    title: str
    schedule: str  # a crontab expression or "off"
    does: str


def tasks(settings: Settings) -> list[Task]:
    """The schedule as configured, for the Operations page and register()."""
    retention = settings.retention_cron if settings.audio_retention_days else "off"
    return [
        Task(
            "log_rotate",
            "Log rotation",
            settings.log_rotate_cron,
            f"app.log -> app.log.YYYY-MM-DD.gz, keep {settings.log_keep}",
        ),
        Task(
            "temp_cleanup",
            "Temp cleanup",
            settings.temp_cleanup_cron,
            f"delete files in tmp/ not accessed for {settings.temp_max_age_s} s, "
            "and stored audio no job uses",
        ),
        Task(
            "gpu_check",
            "GPU memory check",
            settings.gpu_check_cron,
            f"alert after {settings.gpu_alert_readings} readings in a row over "
            + (
                f"{settings.gpu_alert_mb} MB"
                if settings.gpu_alert_mb
                else f"{settings.gpu_alert_pct:g} %"
            ),
        ),
        Task(
            "audio_retention",
            "Audio retention",
            retention,
            f"delete audio of jobs finished {settings.audio_retention_days} days ago"
            if settings.audio_retention_days
            else "off (SEACO_AUDIO_RETENTION_DAYS=0)",
        ),
        Task("vacuum", "VACUUM / ANALYZE", settings.vacuum_cron, "compact jobs.db when idle"),
    ]


def register(
    scheduler: BaseScheduler,
    settings: Settings,
    store: Store,
    nvml: ModuleType | None = None,
) -> GpuMemoryWatch:
    """Add every maintenance task to the worker's scheduler, at its crontab schedule in the
    server's local time, on the operations thread pool. A run that cannot start on time
    (its pool busy) still runs within the hour, once; a run that fell due while no worker
    process was running is made up once, CATCH_UP_DELAY_S after this worker starts."""
    executor = ensure_ops_executor(scheduler)
    zone = get_localzone()
    watch = GpuMemoryWatch.for_settings(settings, store)

    def vacuum() -> None:
        result = run(store, "vacuum", lambda: vacuum_database(store), _vacuum_text)
        if result and result["skipped"]:
            scheduler.add_job(
                vacuum,
                "date",
                run_date=dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=VACUUM_RETRY_S),
                id="maintenance.vacuum_retry",
                replace_existing=True,
                executor=executor,
                misfire_grace_time=None,
            )

    jobs: dict[str, Callable[[], Any]] = {
        "log_rotate": lambda: run(
            store,
            "log_rotate",
            lambda: app_log.rotate(settings.log_dir, settings.log_keep),
            _rotation_text,
        ),
        "temp_cleanup": lambda: run(
            store,
            "temp_cleanup",
            lambda: TempCleanup(
                clean_temp(settings.tmp_dir, settings.temp_max_age_s),
                remove_orphan_audio(store, settings.audio_dir),
            ),
            describe_cleanup,
        ),
        "gpu_check": lambda: run(
            store,
            "gpu_check",
            lambda: check_gpu_memory(store, settings, watch, nvml),
            lambda r: r["summary"],
        ),
        "audio_retention": lambda: run(
            store,
            "audio_retention",
            lambda: purge_old_audio(store, settings.data_dir, settings.audio_retention_days),
            lambda r: (
                f"Deleted the audio of {r.files} files ({r.bytes / 2**20:.1f} MB); "
                f"{r.skipped} in use again."
            ),
        ),
        "vacuum": vacuum,
    }
    for task in tasks(settings):
        if is_off(task.schedule):
            continue
        trigger = cron_trigger(task.schedule, zone)
        scheduler.add_job(
            jobs[task.name],
            trigger,
            id=f"maintenance.{task.name}",
            executor=executor,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=3600,
        )
        if task.name in CATCH_UP_TASKS:
            _catch_up(scheduler, store, task, trigger, jobs[task.name], executor)
    return watch


def missed_run(trigger: BaseTrigger, last_run_ms: int, now: dt.datetime) -> dt.datetime | None:
    """The first run due after the last recorded one, when it is already past: it fell while
    no worker process was running (APScheduler only knows about runs due while it runs)."""
    last = dt.datetime.fromtimestamp(last_run_ms / 1000, tz=dt.timezone.utc)
    due = trigger.get_next_fire_time(None, last + dt.timedelta(milliseconds=1))
    return due if due is not None and due <= now else None


def _catch_up(
    scheduler: BaseScheduler,
    store: Store,
    task: Task,
    trigger: BaseTrigger,
    job: Callable[[], Any],
    executor: str,
) -> None:
    """Run a task once, soon, when a run was missed since its last recorded one (a task that
    never ran has nothing to catch up: a new installation). One run, however many were
    missed: each run does all the work that is due (rotation, cleanup, retention)."""
    try:
        last = store.last_event_at(f"maintenance.{task.name}")
        now = dt.datetime.now(dt.timezone.utc)
        due = None if last is None else missed_run(trigger, last, now)
        if due is None:
            return
        scheduler.add_job(
            job,
            "date",
            run_date=now + dt.timedelta(seconds=CATCH_UP_DELAY_S),
            id=f"maintenance.{task.name}.catch_up",
            replace_existing=True,
            executor=executor,
            misfire_grace_time=None,
        )
        when = due.astimezone().strftime("%Y-%m-%d %H:%M")
        _event(
            store,
            "catch_up",
            f"{task.title} was due at {when} while no worker ran; "
            f"running it in {CATCH_UP_DELAY_S} s.",
            "info",
            {"task": task.name},
        )
    except Exception:  # a busy database must not stop the worker from starting
        log.exception("could not check %s for a missed run", task.name)
