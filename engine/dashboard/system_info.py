"""What the System page shows: the device and GPUs, the models the worker really loaded,
package versions, the worker, the queue and the disk, as plain values."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from engine import __version__
from engine.config import SETTINGS, Settings
from engine.ops import gpu
from engine.ops.health import health, uses_random_weights
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


def overview(store: Store, settings: Settings, gpus: gpu.GpuSnapshot) -> dict[str, str]:
    """The headline numbers at the top of the page."""
    worker = worker_view(store)
    disk = shutil.disk_usage(settings.data_dir)
    return {  # short values: st.metric cuts long ones off
        "Device": device_label(worker, gpus, settings.device),
        "Worker": "none" if worker is None else worker.state,
        "Heartbeat": "–" if worker is None else f"{worker.heartbeat_age_s:.0f} s ago",
        "Current job": "–"
        if worker is None or worker.current_job_id is None
        else f"{worker.current_job_id}",
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
