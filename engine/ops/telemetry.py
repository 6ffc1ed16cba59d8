"""The worker's telemetry: what the machine and the worker look like every few seconds, and
whether /health answers, kept in jobs.db for the Operations, Stability and Capacity pages.

- `Sampler.sample()` reads every GPU through engine/ops/gpu.py (NVML; none in CPU mode), the
  worker's own RSS, the machine's CPU and RAM (psutil) and the queue, every SEACO_TELEMETRY_S.
- `probe_health()` GETs /health on the web process like any client, every SEACO_PROBE_S:
  the record of those answers is the availability figure.
- `compact()` is the retention: raw samples for SEACO_TELEMETRY_RAW_DAYS, then 1-minute means
  up to SEACO_TELEMETRY_KEEP_DAYS (probes are kept as long), then nothing.

The worker runs these from its APScheduler scheduler (`register`). Each function takes its
clock and its NVML module as arguments so tests call it directly.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import psutil
from apscheduler.schedulers.base import BaseScheduler

from engine.config import Settings
from engine.cron import ensure_ops_executor
from engine.ops import gpu
from engine.store import Store, now_ms

log = logging.getLogger("seaco.telemetry")
DAY_MS = 86_400_000
COMPACT_EVERY_S = 3600
PROBE_TIMEOUT_S = 10


class Sampler:
    """Takes one telemetry sample at a time. CPU percentages are measured between two calls
    (psutil), so the sampler is primed when made and each sample covers the interval since
    the previous one."""

    def __init__(self, store: Store, nvml: ModuleType | None = None):
        self.store = store
        self.nvml = nvml
        self.process = psutil.Process()
        psutil.cpu_percent(interval=None)

    def sample(self, now: int | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """(the machine-wide row, one row per GPU); both ready for store.add_telemetry."""
        at = now_ms() if now is None else now
        memory = psutil.virtual_memory()
        rss = self.process.memory_info().rss
        counts = self.store.counts_by_state()
        snapshot = gpu.read_gpus(self.nvml)
        gpus = [
            {
                "at": at,
                "gpu": g.index,
                "name": g.name,
                "memory_used_bytes": g.memory_used_bytes,
                "memory_total_bytes": g.memory_total_bytes,
                "utilization_pct": g.utilization_pct,
                "temperature_c": g.temperature_c,
                "power_w": g.power_w,
            }
            for g in snapshot.gpus
        ]
        utilisations = [g.utilization_pct for g in snapshot.gpus if g.utilization_pct is not None]
        row = {
            "at": at,
            "cpu_pct": psutil.cpu_percent(interval=None),
            "ram_used_bytes": memory.total - memory.available,  # what programs hold
            "ram_total_bytes": memory.total,
            "rss_bytes": rss,
            "queue_depth": counts["queued"],
            "running_jobs": counts["running"],
            # CPU mode: NULL, so charts show "no GPU" rather than a flat zero
            "vram_used_bytes": sum(g.memory_used_bytes for g in snapshot.gpus) or None,
            "vram_total_bytes": sum(g.memory_total_bytes for g in snapshot.gpus) or None,
            "gpu_util_pct": sum(utilisations) / len(utilisations) if utilisations else None,
        }
        return row, gpus

    def record(self, now: int | None = None) -> dict[str, Any]:
        row, gpus = self.sample(now)
        self.store.add_telemetry([row], gpus)
        return row


@dataclass(frozen=True)
class ProbeResult:
    at: int
    healthy: bool
    http_status: int | None
    status: str | None
    latency_ms: float | None
    error: str | None


def health_url(settings: Settings) -> str:
    """Where the worker reaches /health: the listen address, or loopback when the service
    listens on every interface."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(settings.host, settings.host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}/health"


def probe_health(
    url: str, timeout_s: float = PROBE_TIMEOUT_S, now: int | None = None
) -> ProbeResult:
    """GET /health once. Healthy means HTTP 200 with status "ok"; "degraded" answers are
    recorded as not healthy, with the reasons /health gave."""
    at = now_ms() if now is None else now
    started = time.monotonic()
    code: int | None = None
    body = b""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            code, body = response.status, response.read()
    except urllib.error.HTTPError as exc:  # 503 "down" still has a JSON body
        code, body = exc.code, exc.read()
    except Exception as exc:  # refused, timeout, reset: the service did not answer
        latency = (time.monotonic() - started) * 1000
        reason = getattr(exc, "reason", None) or exc
        return ProbeResult(at, False, None, None, round(latency, 1), f"no answer: {reason}")
    latency = round((time.monotonic() - started) * 1000, 1)
    try:
        report = json.loads(body)
        status = str(report.get("status"))
        reasons = "; ".join(report.get("reasons") or [])
    except (ValueError, AttributeError):
        status, reasons = None, "the answer was not /health's JSON"
    healthy = code == 200 and status == "ok"
    error = None if healthy else (reasons or f"HTTP {code}, status {status}")
    return ProbeResult(at, healthy, code, status, latency, error)


def record_probe(store: Store, result: ProbeResult) -> None:
    store.add_probe(
        at=result.at,
        healthy=result.healthy,
        http_status=result.http_status,
        status=result.status,
        latency_ms=result.latency_ms,
        error=result.error,
    )


def compact(store: Store, settings: Settings, now: int | None = None) -> dict[str, int]:
    """Retention and downsampling (see the module docstring)."""
    now = now_ms() if now is None else now
    return store.downsample_telemetry(
        raw_before=now - settings.telemetry_raw_days * DAY_MS,
        drop_before=now - settings.telemetry_keep_days * DAY_MS,
    )


def register(
    scheduler: BaseScheduler,
    settings: Settings,
    store: Store,
    nvml: ModuleType | None = None,
) -> None:
    """Add sampling, the /health self-probe and the hourly compaction to the worker's
    scheduler (on their own thread pool, see schedules.ensure_ops_executor)."""
    executor = ensure_ops_executor(scheduler)
    common = {"executor": executor, "coalesce": True, "max_instances": 1}
    if settings.telemetry_s:
        sampler = Sampler(store, nvml)
        scheduler.add_job(
            _guarded(sampler.record, "telemetry sample"),
            "interval",
            seconds=settings.telemetry_s,
            id="telemetry.sample",
            **common,
        )
    if settings.probe_s:
        url = health_url(settings)
        scheduler.add_job(
            _guarded(lambda: record_probe(store, probe_health(url)), "health probe"),
            "interval",
            seconds=settings.probe_s,
            id="telemetry.probe",
            **common,
        )
    scheduler.add_job(
        _guarded(lambda: compact(store, settings), "telemetry compaction"),
        "interval",
        seconds=COMPACT_EVERY_S,
        id="telemetry.compact",
        **common,
    )


def _guarded(fn, what: str):
    """A failing sample (database busy a moment) is logged and the next one tried; an
    exception must not reach APScheduler's thread, which would only log it less clearly."""

    def run() -> None:
        try:
            fn()
        except Exception:
            log.exception("%s failed", what)

    return run
