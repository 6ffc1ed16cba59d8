"""Which queued jobs may join the job the worker just claimed (cross-job batching).

Rules, chosen so batching never costs a job its place or its time limit:

- the claimed job (the queue's head) is always processed; companions only come from the
  next `max_jobs - 1` queued jobs in claim order (a window), so a job passed over for having
  other hotwords keeps its place and is the head within a few rounds: never starved;
- a companion has the head's priority (live recordings are not held up by batch work, and
  batch work does not overtake anything) and exactly the head's effective hotword list (one
  model call has one hotword list);
- the group's audio adds up to at most `max_audio_ms` (SEACO_BATCH_SIZE_S): every job in it
  waits for the whole group, and the per-job hard time limit is sized for the job alone.
  A job of unknown length never joins.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.jobs import Job


def pick_companions(
    head: Job,
    queued: list[Job],
    hotwords_of: Callable[[Job], list[str]],
    *,
    max_jobs: int,
    max_audio_ms: int,
) -> list[Job]:
    """The queued jobs (in claim order, from the window after the head) to process with it."""
    if max_jobs <= 1 or head.duration_ms is None:
        return []
    words = hotwords_of(head)
    total = head.duration_ms
    picked: list[Job] = []
    for job in queued[: max_jobs - 1]:
        if job.id == head.id or job.priority != head.priority or job.duration_ms is None:
            continue
        if total + job.duration_ms > max_audio_ms or hotwords_of(job) != words:
            continue
        picked.append(job)
        total += job.duration_ms
    return picked
