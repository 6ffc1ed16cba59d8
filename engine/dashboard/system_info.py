"""What the System page shows: the device and GPUs, the models the worker really loaded,
package versions, each worker (one row per slot of SEACO_WORKERS), the queue and the disk,
as plain values."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from engine import __version__
from engine.config import SETTINGS, Settings
from engine.ops import gpu
from engine.ops.health import health, uses_random_weights, worker_states
from engine.store import Store, now_ms

PACKAGES = ("seaco-asr", "funasr", "torch", "streamlit", "av", "fastapi", "nvidia-ml-py")


def service_health(store: Store, settings: Settings) -> dict[str, Any]:
    """The report /health serves (status ok|degraded|down, reasons, checks), for the sidebar
    and the pages: one function, many readers (engine.ops.health)."""
    return health(store, settings)


def read_gpus() -> gpu.GpuSnapshot:
    """The GPUs NVML sees now (an empty snapshot without a GPU or driver)."""
    return gpu.read_gpus()


def package_versions() -> dict[str, str]:
    """Installed versions read from package metadata (importing torch here would cost
    seconds in the web process)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    versions["seaco-asr"] = __version__
    return versions


def human_bytes(n: float | None) -> str:
    if n is None:
        return "–"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


@dataclass(frozen=True)
class WorkerView:
    state: str
    heartbeat_age_s: float
    current_job_id: int | None
    pid: int
    hostname: str
    jobs_done: int
    jobs_failed: int
    device: str | None
    model_error: str | None
    info: dict[str, Any]


def worker_view(store: Store, now: int | None = None) -> WorkerView | None:
    row = store.latest_worker()
    if row is None:
        return None
    now = now_ms() if now is None else now
    info = row["info"] or {}
    return WorkerView(
        state=row["state"],
        heartbeat_age_s=round((now - row["heartbeat_at"]) / 1000, 1),
        current_job_id=row["current_job_id"],
        pid=row["pid"],
        hostname=row["hostname"],
        jobs_done=row["jobs_done"],
        jobs_failed=row["jobs_failed"],
        device=info.get("device"),
        model_error=row["model_error"],
        info=info,
    )


def device_label(worker: WorkerView | None, gpus: gpu.GpuSnapshot, setting: str) -> str:
    """'cuda:0 (NVIDIA H100)' / 'cpu' as the worker reports it, else what the setting asks."""
    if worker is None or worker.device is None:
        return f"not known yet ({setting})"  # the worker reports it once models load
    if worker.device.startswith("cuda"):
        name = worker.info.get("gpu") or (gpus.gpus[0].name if gpus.gpus else "GPU")
        return f"{worker.device} ({name})"
    return "cpu" + ("" if gpus.cpu_mode else " (a GPU is present but not used)")


def gpu_rows(gpus: gpu.GpuSnapshot) -> list[dict[str, Any]]:
    return [
        {
            "gpu": g.index,
            "name": g.name,
            "memory used": human_bytes(g.memory_used_bytes),
            "memory total": human_bytes(g.memory_total_bytes),
            "used %": round(100 * g.memory_used_fraction, 1),
            "utilisation %": g.utilization_pct,
            "temperature °C": g.temperature_c,
            "power W": None if g.power_w is None else round(g.power_w, 1),
        }
        for g in gpus.gpus
    ]


def model_rows(worker: WorkerView | None) -> list[dict[str, Any]]:
    """The models the worker loaded (id or directory), whether each is a random-weight test
    model, its size in parameters and its compute precision."""
    if worker is None or not worker.info.get("models"):
        return []
    info = worker.info
    flags = info.get("random_weights") or {}
    params = info.get("parameters") or {}
    return [
        {
            "model": kind,
            "id or directory": spec,
            "random weights": "YES: test model" if flags.get(kind) else "no",
            "parameters": f"{params[kind] / 1e6:.1f} M" if params.get(kind) else "–",
            # SEACO_PRECISION applies to the ASR model only
            "precision": info.get("precision", "fp32") if kind == "asr" else "fp32",
        }
        for kind, spec in info["models"].items()
    ]


def worker_rows(store: Store, settings: Settings, now: int | None = None) -> list[dict[str, Any]]:
    """One row per worker slot (SEACO_WORKERS: w0, w1, ...) with its newest process: device,
    torch threads, whether it is alive, its state, heartbeat age, pid, host, the job it holds,
    jobs done and failed since that process started, and its memory at the last heartbeat."""
    now = now_ms() if now is None else now
    rows = []
    for w in worker_states(store.workers(), settings, now):
        row, info = w.fields, w.fields.get("info") or {}
        rows.append(
            {
                "worker": w.name,
                "device": w.device,
                "threads": w.slot.threads or None,
                "alive": "yes" if w.alive else "NO",
                "state": row.get("state", "not started"),
                "heartbeat": "–" if w.heartbeat_age_s is None else f"{w.heartbeat_age_s:.0f} s ago",
                "pid": row.get("pid"),
                "host": w.host,
                "current job": row.get("current_job_id"),
                "jobs done": row.get("jobs_done"),
                "jobs failed": row.get("jobs_failed"),
                "RSS": human_bytes(info["rss_mb"] * 2**20) if info.get("rss_mb") else "–",
            }
        )
    return rows


def overview(store: Store, settings: Settings, gpus: gpu.GpuSnapshot) -> dict[str, str]:
    """The headline numbers at the top of the page. With several workers, "Worker" says how
    many are alive and "Current job" lists the jobs they hold."""
    worker = worker_view(store)
    disk = shutil.disk_usage(settings.data_dir)
    states = worker_states(store.workers(), settings, now_ms())
    several = len(states) > 1
    held = [
        str(w.fields["current_job_id"])
        for w in states
        if w.alive and w.fields.get("current_job_id")
    ]
    if several:
        alive = sum(w.alive for w in states)
        worker_state = f"{alive} of {sum(w.configured for w in states)} alive"
        current = ", ".join(held) or "–"
    else:
        worker_state = "none" if worker is None else worker.state
        current = (
            "–" if worker is None or worker.current_job_id is None else f"{worker.current_job_id}"
        )
    return {  # short values: st.metric cuts long ones off
        "Device": device_label(worker, gpus, settings.device),
        "Worker" + ("s" if several else ""): worker_state,
        "Heartbeat": "–" if worker is None else f"{worker.heartbeat_age_s:.0f} s ago",
        "Current job" + ("s" if several and len(held) > 1 else ""): current,
        "Queue": f"{store.queue_depth()} / {settings.queue_max}",
        "Database": human_bytes(store.database_bytes()),
        "Free disk": human_bytes(disk.free),
        "Test models": "YES" if worker and uses_random_weights(worker.info) else "no",
    }


def settings_rows(settings: Settings) -> list[dict[str, str]]:
    """The settings table: one row per setting in declaration order, with its variable,
    its value (secrets masked), where it came from ("env", ".env" or "default") and its
    meaning."""
    return [
        {
            "setting": spec.env,
            "value": settings.display_value(spec.name),
            "from": settings.sources.get(spec.name, "default"),
            "meaning": spec.plain_description,
        }
        for spec in SETTINGS
    ]
