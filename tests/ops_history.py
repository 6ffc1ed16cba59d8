"""Synthetic operations history written through the real store: jobs submitted, claimed and
finished at chosen times, telemetry samples and /health probes, with known answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

from engine.jobs import Sentence
from engine.store import JobResult, NewJob, Store

HOUR_MS = 3_600_000
MINUTE_MS = 60_000
GB = 2**30
MB = 2**20


def add_finished_job(
    store: Store,
    *,
    submitted_at: int,
    wait_ms: int,
    processing_ms: int,
    audio_ms: int,
    fail: str | None = None,
    name: str = "call.wav",
    sha: str | None = None,
    audio_path: str | None = None,
) -> int:
    """One job through submit -> claim -> complete/fail at exact times; returns its id."""
    job = store.submit(
        NewJob(
            audio_sha256=sha or f"{submitted_at:064x}",
            audio_path=audio_path or f"audio/{submitted_at}",
            audio_bytes=1000,
            original_name=name,
            duration_ms=audio_ms,
        ),
        queue_max=10**9,
        max_attempts=3,
        now=submitted_at,
    )
    started = submitted_at + wait_ms
    claimed = store.claim("w-test", 3600, now=started)
    assert claimed is not None and claimed.id == job.id
    finished = started + processing_ms
    if fail:
        store.fail(job.id, "w-test", 1, fail, "CorruptAudioError", now=finished)
    else:
        store.complete(
            job.id,
            "w-test",
            1,
            JobResult(
                text="好。",
                raw_text="好",
                confidence=0.9,
                sentences=[Sentence("好。", 0, 500)],
                effective_hotwords=[],
                duration_ms=audio_ms,
                decode_ms=10,
                inference_ms=processing_ms - 10,
                model_info={},
            ),
            now=finished,
        )
    return job.id


@dataclass
class Soak:
    """What fill_soak wrote, for the assertions."""

    start: int
    end: int
    done: int = 0
    failed: int = 0
    probes: int = 0
    unhealthy: int = 0
    worst_wait_job: int = 0
    slowest_job: int = 0
    outlier_job: int = 0
    job_ids: list[int] = field(default_factory=list)


def fill_soak(store: Store, end: int, hours: int = 72, *, gpu: bool = True) -> Soak:
    """The article's 72-hour soak shape, compressed: every hour 3 jobs (2 single files and
    a batch file) of 60 s audio taking 6 s with a 0.2 s wait; one job an hour before the end
    fails; one waits 40 s (worst queue delay); one is a disk stall taking 60 s (slowest and
    an RTF outlier). Telemetry every minute (flat memory; VRAM only with `gpu`), probes every
    minute with 3 unhealthy in a row at hour 10."""
    start = end - hours * HOUR_MS
    soak = Soak(start=start, end=end)
    for hour in range(hours):
        for k in range(3):
            at = start + hour * HOUR_MS + k * 10 * MINUTE_MS + 1000
            wait, processing, fail = 200, 6000, None
            if hour == hours - 1 and k == 0:
                fail = "The file is damaged."
            if hour == 20 and k == 1:
                wait = 40_000
            if hour == 30 and k == 2:
                processing = 60_000
            job_id = add_finished_job(
                store,
                submitted_at=at,
                wait_ms=wait,
                processing_ms=processing + k * 100,
                audio_ms=60_000,
                fail=fail,
            )
            soak.job_ids.append(job_id)
            if fail:
                soak.failed += 1
            else:
                soak.done += 1
            if wait == 40_000:
                soak.worst_wait_job = job_id
            if processing == 60_000:
                soak.slowest_job = soak.outlier_job = job_id
    samples, gpus = [], []
    for minute in range(hours * 60):
        at = start + minute * MINUTE_MS + 500
        wobble = (minute % 7) * MB  # noise without a trend
        samples.append(
            {
                "at": at,
                "cpu_pct": 20.0 + minute % 5,
                "ram_used_bytes": 6 * GB + wobble,
                "ram_total_bytes": 16 * GB,
                "rss_bytes": 1500 * MB + wobble,
                "queue_depth": minute % 3,
                "running_jobs": minute % 2,
                "vram_used_bytes": 9 * GB + wobble if gpu else None,
                "vram_total_bytes": 12 * GB if gpu else None,
                "gpu_util_pct": 40.0 if gpu else None,
            }
        )
        if gpu:
            gpus.append(
                {
                    "at": at,
                    "gpu": 0,
                    "name": "NVIDIA GeForce RTX 3060",
                    "memory_used_bytes": 9 * GB + wobble,
                    "memory_total_bytes": 12 * GB,
                    "utilization_pct": 40.0,
                    "temperature_c": 60.0,
                    "power_w": 120.0,
                }
            )
    store.add_telemetry(samples, gpus)
    for minute in range(hours * 60):
        at = start + minute * MINUTE_MS + 30_000
        healthy = not (600 <= minute < 603)
        store.add_probe(
            at=at,
            healthy=healthy,
            http_status=200 if healthy else None,
            status="ok" if healthy else None,
            latency_ms=3.0,
            error=None if healthy else "no answer: connection refused",
        )
        soak.probes += 1
        soak.unhealthy += not healthy
    store.add_event(
        "maintenance.temp_cleanup", "Removed 2 files (0.1 MB); kept 0.", now=end - 2 * HOUR_MS
    )
    store.add_event(
        "alert.gpu_memory",
        "GPU 0 has used 11.6 of 12.0 GB for 3 readings.",
        level="warning",
        now=end - HOUR_MS,
    )
    return soak


class NVMLError(Exception):
    pass


def fake_nvml(used_gb: list[float] | None = None, total_gb: float = 12, available: bool = True):
    """A stand-in for the pynvml module: one GPU whose memory use the test sets between
    readings (`nvml.used_gb[0] = ...`); `available=False` behaves like a machine without a
    driver."""
    used = used_gb if used_gb is not None else [9.0]

    def init():
        if not available:
            raise NVMLError("NVML Shared Library Not Found")

    return SimpleNamespace(
        used_gb=used,
        nvmlInit=init,
        nvmlShutdown=lambda: None,
        nvmlDeviceGetCount=lambda: 1,
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetName=lambda _h: b"NVIDIA GeForce RTX 3060",
        nvmlDeviceGetMemoryInfo=lambda _h: SimpleNamespace(
            used=int(used[0] * GB), total=int(total_gb * GB)
        ),
        nvmlDeviceGetUtilizationRates=lambda _h: SimpleNamespace(gpu=55, memory=20),
        nvmlDeviceGetTemperature=lambda _h, _s: 63,
        nvmlDeviceGetPowerUsage=lambda _h: 150_000,
        nvmlSystemGetDriverVersion=lambda: "550.54.15",
        nvmlSystemGetCudaDriverVersion=lambda: 12040,
    )


def queue_one(store, name="a.wav"):
    return store.submit(
        NewJob(audio_sha256="a" * 64, audio_path="audio/aa/a", audio_bytes=1, original_name=name),
        queue_max=20,
        max_attempts=3,
    )
