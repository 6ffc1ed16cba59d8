"""What /health, the sidebar and `seaco status` report: one function, many readers.

Status rules (also in the README):
- down (HTTP 503): the database cannot be read, or the disk is nearly full (< 100 MB free).
- degraded (HTTP 200): fewer live workers than SEACO_WORKERS configures (naming the missing
  ones), models not loaded (with the reason), queue full, or less than 1 GB free. Uploads
  are still accepted and kept; they wait for a worker.
- ok: everything above is fine.

A worker is one slot of SEACO_WORKERS (`configured_workers`): w0, w1, ... Each start of a
worker process adds a row to the store's workers table; a slot's newest row says whether it
is alive (not stopped, and a heartbeat within 3 x SEACO_HEARTBEAT_S + 5 s).
"""

from __future__ import annotations

import functools
import os
import shutil
from dataclasses import dataclass
from typing import Any

import psutil

from engine import __version__
from engine.config import Settings, WorkerSlot
from engine.errors import DatabaseUnusableError
from engine.ops import gpu
from engine.store import Store, now_ms

DOWN_FREE_BYTES = 100 * 1024 * 1024
DEGRADED_FREE_BYTES = 1024 * 1024 * 1024
_RANK = {"ok": 0, "degraded": 1, "down": 2}


def _check(status: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"status": status, "detail": detail, **extra}


@functools.lru_cache(maxsize=1)
def visible_gpu_count() -> int:
    """GPUs a worker can use here: those NVML sees, limited by CUDA_VISIBLE_DEVICES when it
    is set (as torch would be). Read once per process."""
    found = len(gpu.read_gpus().gpus)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return found
    listed = []
    for entry in (e.strip() for e in visible.split(",")):
        if not entry or entry.startswith("-"):  # CUDA stops at the first invalid entry
            break
        listed.append(entry)
    return min(found, len(listed))


def configured_workers(settings: Settings) -> tuple[WorkerSlot, ...]:
    """The worker slots SEACO_WORKERS asks for on this machine (`Settings.worker_slots`, with
    its cores, RAM and visible GPUs): the supervisor starts one process per slot, and /health
    expects each to be alive. Only `auto` on a GPU-capable device setting counts GPUs
    (through NVML)."""
    auto = settings.workers == "auto"
    needs_gpus = auto and settings.device in ("auto", "cuda")
    return settings.worker_slots(
        gpu_count=visible_gpu_count() if needs_gpus else 0,
        ram_mb=psutil.virtual_memory().total // 2**20 if auto else None,
    )


@dataclass(frozen=True)
class WorkerState:
    """One worker slot as /health, /metrics and the System page see it: its configured
    `slot` (device and threads), the newest `row` of the store's workers table for it (None
    before it ever started), whether it is `alive`, its heartbeat age (s) and whether the
    slot is `configured` (a row of a slot SEACO_WORKERS no longer has is listed while it
    lives, not expected)."""

    slot: WorkerSlot
    row: dict[str, Any] | None
    alive: bool
    heartbeat_age_s: float | None
    configured: bool

    @property
    def name(self) -> str:
        return self.slot.name

    @property
    def fields(self) -> dict[str, Any]:
        """The row's columns; empty before the slot's first start."""
        return self.row or {}

    @property
    def device(self) -> str:
        """The device as the worker reports it once its models are loaded ("cpu",
        "cuda:1"), else the one its slot was given."""
        info = self.fields.get("info") or {}
        return str(info.get("device") or self.fields.get("device") or self.slot.device)

    @property
    def host(self) -> str | None:
        return self.fields.get("hostname")

    def describe(self) -> str:
        if self.row is None:
            return f"{self.name} ({self.slot.device}) has not started"
        return (
            f"{self.name} ({self.device}): last heartbeat {self.heartbeat_age_s:.0f} s ago "
            f"(state {self.fields['state']})"
        )


def worker_states(rows: list[dict[str, Any]], settings: Settings, now: int) -> list[WorkerState]:
    """Each configured slot with its newest worker row (`store.workers()` rows), then any
    live worker of a slot that is not configured; in slot order."""
    stale_after_s = 3 * settings.heartbeat_s + 5
    newest: dict[int, dict[str, Any]] = {}
    for row in rows:
        index = int(row.get("slot") or 0)
        if index not in newest or row["started_at"] > newest[index]["started_at"]:
            newest[index] = row
    configured = {s.index: s for s in configured_workers(settings)}
    states = []
    for index in sorted(set(configured) | set(newest)):
        found = newest.get(index)
        age = None if found is None else round((now - found["heartbeat_at"]) / 1000, 1)
        alive = found is not None and found["state"] != "stopped" and (age or 0) <= stale_after_s
        if index not in configured and not alive:
            continue
        fields = found or {}
        slot = configured.get(index) or WorkerSlot(
            index, str(fields.get("device") or "?"), int(fields.get("threads") or 0)
        )
        states.append(WorkerState(slot, found, alive, age, index in configured))
    return states


def worker_check(states: list[WorkerState]) -> dict:
    """ok when every configured worker is alive; degraded naming those that are not."""
    started = [w for w in states if w.row is not None]
    if not started:
        return _check("degraded", "No worker has started yet.", alive=0, configured=len(states))
    expected = [w for w in states if w.configured]
    alive = [w for w in states if w.alive]
    missing = [w for w in expected if not w.alive]
    first = alive[0] if alive else max(started, key=lambda w: w.fields["heartbeat_at"])
    extra = {
        "heartbeat_age_s": first.heartbeat_age_s,
        "alive": len(alive),
        "configured": len(expected),
        "workers": [_worker_entry(w) for w in states],
    }
    if not alive:
        return _check(
            "degraded",
            f"No live worker: {_missing_text(missing, len(expected))} "
            "Queued jobs wait until one is back.",
            **extra,
        )
    info = first.fields.get("info") or {}
    extra |= {
        "state": first.fields["state"],
        "current_job_id": first.fields["current_job_id"],
        # memory at the last heartbeat, for the memory guard's limits and leak watching (soak)
        "pid": info.get("pid"),
        "rss_mb": info.get("rss_mb"),
        "vram_mb": info.get("vram_mb"),
    }
    if missing:
        return _check(
            "degraded",
            f"{len(alive)} of {len(expected)} workers alive; not alive: "
            f"{_missing_text(missing, len(expected))}",
            **extra,
        )
    if len(alive) == 1:
        detail = f"Worker {first.fields['state']}, heartbeat {first.heartbeat_age_s:.0f} s ago."
    else:
        listed = ", ".join(f"{w.name} {w.fields['state']}" for w in alive)
        detail = f"{len(alive)} workers alive: {listed}."
    return _check("ok", detail, **extra)


def _missing_text(missing: list[WorkerState], configured: int) -> str:
    if configured == 1 and len(missing) == 1 and missing[0].row is not None:
        w = missing[0]  # one worker, as before SEACO_WORKERS: the wording operators know
        return f"last heartbeat {w.heartbeat_age_s:.0f} s ago (state {w.fields['state']})."
    return "; ".join(w.describe() for w in missing) + "."


def _worker_entry(w: WorkerState) -> dict[str, Any]:
    row = w.fields
    info = row.get("info") or {}
    return {
        "worker": w.name,
        "host": w.host,
        "device": w.device,
        "threads": w.slot.threads,
        "alive": w.alive,
        "state": row.get("state"),
        "heartbeat_age_s": w.heartbeat_age_s,
        "pid": row.get("pid"),
        "current_job_id": row.get("current_job_id"),
        "model_loaded": bool(row.get("model_loaded")),
        "rss_mb": info.get("rss_mb"),
        "vram_mb": info.get("vram_mb"),
    }


def uses_random_weights(model_info: dict[str, Any]) -> bool:
    """True when any loaded model was built by `seaco models build-test`."""
    flags = model_info.get("random_weights") or {}
    return any(flags.values()) if isinstance(flags, dict) else bool(flags)


def model_check(states: list[WorkerState]) -> dict:
    """The live workers' models (or, with none alive, the latest worker's): ok when every
    one has loaded them; a load error or loading otherwise, naming the worker when there
    are several."""
    latest = sorted(
        (w for w in states if w.row is not None), key=lambda w: w.fields["heartbeat_at"]
    )
    rows = [w for w in states if w.alive] or latest[-1:]
    if not rows:
        return _check("degraded", "Models are not loaded yet (no worker).")
    several = len(states) > 1
    failed = [w for w in rows if not w.fields["model_loaded"] and w.fields["model_error"]]
    if failed:
        where = f" ({', '.join(w.name for w in failed)})" if several else ""
        error = failed[0].fields["model_error"]
        return _check("degraded", f"Models could not be loaded{where}: {error}")
    loading = [w for w in rows if not w.fields["model_loaded"]]
    if loading:
        where = f" on {', '.join(w.name for w in loading)}" if several else ""
        return _check("degraded", f"Models are loading{where}.")
    random = any(uses_random_weights(w.fields.get("info") or {}) for w in rows)
    note = " (RANDOM-WEIGHT test models: the text is meaningless)" if random else ""
    return _check("ok", f"Models loaded{note}.", random_weights=random)


def disk_check(settings: Settings) -> dict:
    free = shutil.disk_usage(settings.data_dir).free
    detail = f"{free / 1024**3:.1f} GB free in {settings.data_dir}."
    if free < DOWN_FREE_BYTES:
        return _check("down", "Disk almost full: " + detail, free_bytes=free)
    if free < DEGRADED_FREE_BYTES:
        return _check("degraded", "Disk space low: " + detail, free_bytes=free)
    return _check("ok", detail, free_bytes=free)


def health(store: Store, settings: Settings, now: int | None = None) -> dict[str, Any]:
    now = now_ms() if now is None else now
    checks: dict[str, dict] = {}
    rows: list[dict[str, Any]] = []
    try:
        store.check()
        rows = store.workers()
        depth = store.queue_depth()
        checks["database"] = _check("ok", f"{settings.db_path} readable.")
    except DatabaseUnusableError as exc:  # its message already says what could not be used
        checks["database"] = _check("down", str(exc))
        depth = None
    except Exception as exc:  # any other database failure means we cannot serve either
        checks["database"] = _check("down", f"Database unusable: {exc}")
        depth = None
    if depth is not None:
        states = worker_states(rows, settings, now)
        checks["worker"] = worker_check(states)
        checks["model"] = model_check(states)
        full = depth >= settings.queue_max
        checks["queue"] = _check(
            "degraded" if full else "ok",
            f"{depth} queued (limit {settings.queue_max}).",
            depth=depth,
            limit=settings.queue_max,
        )
    checks["disk"] = disk_check(settings)
    status = max((c["status"] for c in checks.values()), key=_RANK.__getitem__)
    reasons = [f"{name}: {c['detail']}" for name, c in checks.items() if c["status"] != "ok"]
    return {"status": status, "reasons": reasons, "checks": checks, "version": __version__}


def http_status(report: dict[str, Any]) -> int:
    return 503 if report["status"] == "down" else 200
