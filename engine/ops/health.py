"""What /health, the sidebar and `seaco status` report: one function, many readers.

Status rules (also in the README):
- down (HTTP 503): the database cannot be read, or the disk is nearly full (< 100 MB free).
- degraded (HTTP 200): no live worker, models not loaded (with the reason), queue full,
  or less than 1 GB free. Uploads are still accepted and kept; they wait for the worker.
- ok: everything above is fine.
"""

from __future__ import annotations

import shutil
from typing import Any

from engine import __version__
from engine.config import Settings
from engine.errors import DatabaseUnusableError
from engine.store import Store, now_ms

DOWN_FREE_BYTES = 100 * 1024 * 1024
DEGRADED_FREE_BYTES = 1024 * 1024 * 1024
_RANK = {"ok": 0, "degraded": 1, "down": 2}


def _check(status: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"status": status, "detail": detail, **extra}


def worker_check(worker: dict[str, Any] | None, settings: Settings, now: int) -> dict:
    if worker is None:
        return _check("degraded", "No worker has started yet.")
    age_s = (now - worker["heartbeat_at"]) / 1000
    stale_after_s = 3 * settings.heartbeat_s + 5
    if worker["state"] == "stopped" or age_s > stale_after_s:
        return _check(
            "degraded",
            f"No live worker: last heartbeat {age_s:.0f} s ago (state {worker['state']}). "
            "Queued jobs wait until it is back.",
            heartbeat_age_s=round(age_s, 1),
        )
    info = worker.get("info") or {}
    return _check(
        "ok",
        f"Worker {worker['state']}, heartbeat {age_s:.0f} s ago.",
        heartbeat_age_s=round(age_s, 1),
        state=worker["state"],
        current_job_id=worker["current_job_id"],
        # memory at the last heartbeat, for the memory guard's limits and leak watching (soak)
        pid=info.get("pid"),
        rss_mb=info.get("rss_mb"),
        vram_mb=info.get("vram_mb"),
    )


def uses_random_weights(model_info: dict[str, Any]) -> bool:
    """True when any loaded model was built by `seaco models build-test`."""
    flags = model_info.get("random_weights") or {}
    return any(flags.values()) if isinstance(flags, dict) else bool(flags)


def model_check(worker: dict[str, Any] | None) -> dict:
    if worker is None:
        return _check("degraded", "Models are not loaded yet (no worker).")
    if worker["model_loaded"]:
        random = uses_random_weights(worker.get("info") or {})
        note = " (RANDOM-WEIGHT test models: the text is meaningless)" if random else ""
        return _check("ok", f"Models loaded{note}.", random_weights=random)
    if worker["model_error"]:
        return _check("degraded", f"Models could not be loaded: {worker['model_error']}")
    return _check("degraded", "Models are loading.")


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
    try:
        store.check()
        worker = store.latest_worker()
        depth = store.queue_depth()
        checks["database"] = _check("ok", f"{settings.db_path} readable.")
    except DatabaseUnusableError as exc:  # its message already says what could not be used
        checks["database"] = _check("down", str(exc))
        worker, depth = None, None
    except Exception as exc:  # any other database failure means we cannot serve either
        checks["database"] = _check("down", f"Database unusable: {exc}")
        worker, depth = None, None
    if depth is not None:
        checks["worker"] = worker_check(worker, settings, now)
        checks["model"] = model_check(worker)
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
