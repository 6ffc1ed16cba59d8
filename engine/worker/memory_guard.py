"""The worker's memory guard: when to replace the worker process by a fresh one.

A model server that runs for weeks must not trust itself to give memory back: allocator
fragmentation, caches in funasr or torch, or a leak grow a long-lived process. So after each
job the worker compares its resident memory (and, on a GPU, what torch holds) and its job
count with the configured limits; past one, it finishes cleanly (exit code 0) and
`seaco serve` starts a fresh process at once. Checking between jobs means no job is ever cut
short by the guard itself.
"""

from __future__ import annotations

import sys

import psutil

from engine.config import Settings


def rss_mb() -> float:
    """This process's resident memory in MB."""
    return psutil.Process().memory_info().rss / 2**20


def vram_mb() -> float | None:
    """GPU memory torch holds for this process (reserved, MB), or None without CUDA.

    Only looks when torch is already imported and CUDA already initialised: asking would
    otherwise import torch (seconds) or create a CUDA context (hundreds of MB)."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    return torch.cuda.memory_reserved() / 2**20


def recycle_reason(
    settings: Settings,
    *,
    jobs_processed: int,
    rss: float,
    vram: float | None,
    max_jobs: int | None = None,
) -> str | None:
    """Why the worker should hand over to a fresh process now, or None.

    `max_jobs` (from `seaco worker --max-jobs`) wins over SEACO_WORKER_MAX_JOBS."""
    limit_jobs = max_jobs if max_jobs is not None else settings.worker_max_jobs
    if settings.worker_max_rss_mb and rss > settings.worker_max_rss_mb:
        return (
            f"Worker memory {rss:.0f} MB is above SEACO_WORKER_MAX_RSS_MB="
            f"{settings.worker_max_rss_mb}; replacing the worker with a fresh process."
        )
    if settings.worker_max_vram_mb and vram is not None and vram > settings.worker_max_vram_mb:
        return (
            f"GPU memory held by the worker {vram:.0f} MB is above SEACO_WORKER_MAX_VRAM_MB="
            f"{settings.worker_max_vram_mb}; replacing the worker with a fresh process."
        )
    if limit_jobs and jobs_processed >= limit_jobs:
        return (
            f"The worker has processed {jobs_processed} jobs (limit {limit_jobs}); "
            "replacing it with a fresh process."
        )
    return None
