"""What the supervisor knows about its worker through jobs.db: hard per-job time limits, and
recovery of a dead worker's job the moment the process is seen to exit.

A job that hangs inside native code (a decoder or torch stuck in a loop) cannot be interrupted
from inside the worker: its threads may never run Python again. So the limit is enforced from
outside, by `seaco serve`: each job may run SEACO_JOB_TIMEOUT_S plus SEACO_JOB_TIMEOUT_FACTOR
seconds per second of audio; past that, the supervisor kills the worker (SIGKILL), counts the
attempt, and queues the job again or, after SEACO_MAX_ATTEMPTS, fails it with a reason that
names the time limit. The jobs behind it then go to the fresh worker.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass

from engine.config import Settings, WorkerSlot
from engine.jobs import Job
from engine.store import Recovery, Store, now_ms, open_store

log = logging.getLogger("seaco.watchdog")
PID_CLOCK_SLACK_MS = 5_000  # a worker row's started_at is written just after the process starts


@dataclass(frozen=True)
class Overdue:
    job: Job
    limit_s: float
    running_s: float


class Watchdog:
    """Opens jobs.db lazily: the supervisor must start (and keep the web process up) even when
    the database cannot be opened."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.hostname = socket.gethostname()
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(
                self.settings.db_path, busy_timeout_s=self.settings.db_busy_timeout_s
            )
        return self._store

    def _worker_ids(self, pid: int, started_ms: int) -> list[str]:
        return self.store.worker_ids_for_pid(pid, self.hostname, started_ms - PID_CLOCK_SLACK_MS)

    def overdue(self, pid: int, started_ms: int, now: int | None = None) -> list[Overdue]:
        """The jobs the worker process `pid` (started at `started_ms`) holds past their limit."""
        now = now_ms() if now is None else now
        late = []
        for job in self.store.running_jobs_of(self._worker_ids(pid, started_ms)):
            if job.started_at is None:
                continue
            limit_s = self.settings.job_time_limit_s(job.duration_ms)
            running_s = (now - job.started_at) / 1000
            if running_s > limit_s:
                late.append(Overdue(job, limit_s, running_s))
        return late

    def timed_out(self, overdue: Overdue) -> str | None:
        """Record a job whose worker was killed for running past its limit (the process must
        already be dead, so it cannot write a result afterwards)."""
        job = overdue.job
        assert job.lease_owner is not None
        outcome = self.store.time_out(job.id, job.lease_owner, overdue.limit_s)
        if outcome is None:
            return None
        message = (
            f"Attempt {job.attempts} of {job.max_attempts} ran {overdue.running_s:.0f} s, past "
            f"its hard time limit of {overdue.limit_s:.0f} s; the worker was killed. "
            + ("The job was failed." if outcome == "failed" else "The job was queued again.")
        )
        self.store.add_event("job.timeout", message, level="error", job_id=job.id)
        return outcome

    def worker_exited(
        self, pid: int, started_ms: int, code: int | None, slot: WorkerSlot | None = None
    ) -> Recovery:
        """The worker process `pid` (of `slot`) ended: recover the jobs it held now rather
        than when their leases run out (only its own: a sibling's are never touched), and
        say so in the event log (a clean exit, code 0, is not news)."""
        recovery = self.store.abandon_jobs_of(self._worker_ids(pid, started_ms))
        if code != 0:
            name = f"worker {slot.name}" if slot is not None else "worker"
            self.store.add_event(
                "worker.exit",
                f"The {name} (pid {pid}) exited with code {code}; a new one is being started.",
                level="error",
                data=None
                if slot is None
                else {
                    "worker": slot.name,
                    "slot": slot.index,
                    "host": self.hostname,
                    "device": slot.device,
                    "pid": pid,
                    "code": code,
                },  # fmt: skip
            )
        record_recovery(self.store, recovery)
        return recovery

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def record_recovery(store: Store, recovery: Recovery) -> None:
    """Log and record what happened to the jobs of a worker that stopped mid-job."""
    for job_id in recovery.requeued:
        log.warning("job %s: its worker stopped; queued again", job_id)
        store.add_event(
            "job.requeued", "Worker stopped during the job; queued again.", job_id=job_id
        )
    for job_id in recovery.poisoned:
        log.error("job %s: failed as poison after repeated worker deaths", job_id)
        store.add_event(
            "job.poison", "Failed after repeated worker deaths.", level="error", job_id=job_id
        )
