"""The worker's side of the store: claim, lease, finish, recover, cancel; workers' heartbeats.

A job's life after it is queued: a worker claims it under a lease, renews the lease and
finishes it; the supervisor recovers the jobs of a worker that died or ran past its time
limit; a cancel request reaches the worker that holds the job. Every write is one
`BEGIN IMMEDIATE` transaction, fenced by the lease (owner and attempt), so a result is
written exactly once. Kept apart from submitting and reading (engine/store/jobstore.py) and from
operations (engine/store/operations.py) because this is the part crash safety depends on.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from engine.errors import InvalidJobStateError, JobNotFoundError
from engine.jobs import Job, JobState, Sentence
from engine.store.database import Database, now_ms, words_to_json
from engine.store.search_index import (
    _FTS_DELETE_JOB,
    _FTS_INSERT,
    FTS_ROWS_PER_JOB,
    _fts_rowid_range,
    fts_body,
)


@dataclass(frozen=True)
class JobResult:
    text: str
    raw_text: str
    confidence: float | None
    sentences: list[Sentence]
    effective_hotwords: list[str]
    duration_ms: int  # exact, from the decoded audio (the upload's header may have lied)
    decode_ms: int
    inference_ms: int
    model_info: dict[str, Any]
    # wall ms per recognition stage, keys "vad", "asr", "punc" (Transcript.stage_ms)
    stage_ms: dict[str, int] = field(default_factory=dict)
    # what was left out of the hotwords and why (hotword_vocabulary.select_hotwords)
    hotword_warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Recovery:
    requeued: list[int]
    poisoned: list[int]


# A claim records which worker (host and slot, from its registered row) took the attempt;
# two parameters: the owner's id twice. An owner that never registered leaves them NULL.
_CLAIMED_BY = (
    "worker_host = (SELECT hostname FROM workers WHERE id = ?),"
    " worker_slot = (SELECT slot FROM workers WHERE id = ?)"
)


class QueueSide(Database):
    """Claim, lease, finish, recover and cancel jobs; the workers' own rows."""

    # --- the worker's side: claim, lease, finish ---------------------------------------------
    def claim(self, owner: str, lease_s: int, now: int | None = None) -> Job | None:
        """Take the next queued job (highest priority, then oldest) under a lease."""
        now = now_ms() if now is None else now
        with self._write() as conn:
            row = conn.execute(
                f"""UPDATE jobs SET state = 'running', stage = 'decoding', lease_owner = ?,
                       lease_expires_at = ?, attempts = attempts + 1, started_at = ?,
                       updated_at = ?, queue_wait_ms = ? - submitted_at, {_CLAIMED_BY}
                   WHERE id = (SELECT id FROM jobs WHERE state = 'queued'
                               ORDER BY priority DESC, id LIMIT 1)
                   RETURNING id""",
                (owner, now + lease_s * 1000, now, now, now, owner, owner),
            ).fetchone()
        return None if row is None else self.get(row[0])

    def claim_queued(
        self, job_id: int, owner: str, lease_s: int, now: int | None = None
    ) -> Job | None:
        """Take this queued job under a lease, as `claim` does for the next one (cross-job
        batching adds jobs to the one it claimed); None when it is no longer queued."""
        now = now_ms() if now is None else now
        with self._write() as conn:
            row = conn.execute(
                f"""UPDATE jobs SET state = 'running', stage = 'decoding', lease_owner = ?,
                       lease_expires_at = ?, attempts = attempts + 1, started_at = ?,
                       updated_at = ?, queue_wait_ms = ? - submitted_at, {_CLAIMED_BY}
                   WHERE id = ? AND state = 'queued'
                   RETURNING id""",
                (owner, now + lease_s * 1000, now, now, now, owner, owner, job_id),
            ).fetchone()
        return None if row is None else self.get(row[0])

    def peek_queued(self, limit: int) -> list[Job]:
        """The next `limit` queued jobs in claim order, without claiming them (read-only:
        decode-ahead looks at what comes next; another worker may still take them)."""
        rows = self._rows(
            "SELECT * FROM jobs WHERE state = 'queued' ORDER BY priority DESC, id LIMIT ?",
            (int(limit),),
        )
        return [Job.from_row(row) for row in rows]

    def renew_lease(self, job_id: int, owner: str, lease_s: int, now: int | None = None) -> bool:
        now = now_ms() if now is None else now
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE jobs SET lease_expires_at = ?"
                " WHERE id = ? AND state = 'running' AND lease_owner = ?",
                (now + lease_s * 1000, job_id, owner),
            )
        return cursor.rowcount == 1

    def set_stage(
        self, job_id: int, owner: str, stage: str, *, duration_ms: int | None = None
    ) -> None:
        """Record the running job's stage; after decoding also its exact audio length, which
        the supervisor's hard time limit is computed from (a header may not say, or only
        guess: the estimate flag is cleared with it)."""
        with self._write() as conn:
            conn.execute(
                "UPDATE jobs SET stage = ?, updated_at = ?, duration_ms = coalesce(?, duration_ms),"
                " duration_estimated = CASE WHEN ? IS NULL THEN duration_estimated ELSE 0 END"
                " WHERE id = ? AND state = 'running' AND lease_owner = ?",
                (stage, now_ms(), duration_ms, duration_ms, job_id, owner),
            )

    def _held(
        self, conn: sqlite3.Connection, job_id: int, owner: str, attempt: int
    ) -> dict[str, Any] | None:
        """The row if this owner still holds this attempt's lease, else None (fencing)."""
        row = conn.execute(
            "SELECT * FROM jobs WHERE id = ? AND state = 'running'"
            " AND lease_owner = ? AND attempts = ?",
            (job_id, owner, attempt),
        ).fetchone()
        return dict(row) if row else None

    def complete(
        self, job_id: int, owner: str, attempt: int, result: JobResult, now: int | None = None
    ) -> bool:
        """Write the result exactly once. False when the lease was lost meanwhile (the job was
        re-queued to someone else, or cancelled): then nothing is written."""
        now = now_ms() if now is None else now
        with self._write() as conn:
            row = self._held(conn, job_id, owner, attempt)
            if row is None:
                return False
            if row["cancel_requested"]:
                self._finish_cancelled(conn, job_id, now)
                return False
            total_ms = now - row["started_at"]
            duration_ms = result.duration_ms
            conn.execute(
                """UPDATE jobs SET state = 'done', stage = NULL, finished_at = ?, updated_at = ?,
                       lease_owner = NULL, lease_expires_at = NULL, text = ?, raw_text = ?,
                       confidence = ?, sentence_count = ?, effective_hotwords = ?,
                       hotword_warnings = ?, decode_ms = ?, inference_ms = ?, total_ms = ?,
                       rtf = ?, model_info = ?,
                       duration_ms = ?, error = NULL, error_class = NULL,
                       vad_ms = ?, asr_ms = ?, punc_ms = ?
                   WHERE id = ?""",
                (
                    now,
                    now,
                    result.text,
                    result.raw_text,
                    result.confidence,
                    len(result.sentences),
                    json.dumps(result.effective_hotwords, ensure_ascii=False),
                    json.dumps(result.hotword_warnings, ensure_ascii=False),
                    result.decode_ms,
                    result.inference_ms,
                    total_ms,
                    (total_ms / duration_ms) if duration_ms else None,
                    json.dumps(result.model_info, ensure_ascii=False),
                    duration_ms,
                    result.stage_ms.get("vad"),
                    result.stage_ms.get("asr"),
                    result.stage_ms.get("punc"),
                    job_id,
                ),
            )
            conn.execute("DELETE FROM sentences WHERE job_id = ?", (job_id,))
            conn.execute(_FTS_DELETE_JOB, _fts_rowid_range(job_id))
            first_rowid = _fts_rowid_range(job_id)[0]
            for idx, s in enumerate(result.sentences):
                conn.execute(
                    "INSERT INTO sentences (job_id, idx, start_ms, end_ms, text, words)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (job_id, idx, s.start_ms, s.end_ms, s.text, words_to_json(s.words)),
                )
                if idx < FTS_ROWS_PER_JOB:  # beyond: the next job's range (a month of speech)
                    fts_row = (first_rowid + idx, fts_body(s.text), job_id, idx, s.start_ms)
                    conn.execute(_FTS_INSERT, fts_row)
            if not result.sentences and result.text:
                conn.execute(_FTS_INSERT, (first_rowid, fts_body(result.text), job_id, 0, 0))
        return True

    def fail(
        self,
        job_id: int,
        owner: str,
        attempt: int,
        error: str,
        error_class: str,
        *,
        decode_ms: int | None = None,
        now: int | None = None,
    ) -> bool:
        """Record a failure a user can act on; False when the lease was lost meanwhile."""
        now = now_ms() if now is None else now
        with self._write() as conn:
            row = self._held(conn, job_id, owner, attempt)
            if row is None:
                return False
            conn.execute(
                """UPDATE jobs SET state = 'failed', stage = NULL, finished_at = ?, updated_at = ?,
                       lease_owner = NULL, lease_expires_at = NULL, error = ?, error_class = ?,
                       decode_ms = coalesce(?, decode_ms), total_ms = ? - started_at
                   WHERE id = ?""",
                (now, now, error, error_class, decode_ms, now, job_id),
            )
        return True

    def release(self, job_id: int, owner: str, now: int | None = None) -> bool:
        """Give a running job back to the queue (graceful shutdown); the attempt is not
        counted against it, since the job did nothing wrong."""
        now = now_ms() if now is None else now
        with self._write() as conn:
            cursor = conn.execute(
                """UPDATE jobs SET state = 'queued', stage = NULL, lease_owner = NULL,
                       lease_expires_at = NULL, attempts = max(attempts - 1, 0), updated_at = ?
                   WHERE id = ? AND state = 'running' AND lease_owner = ?""",
                (now, job_id, owner),
            )
        return cursor.rowcount == 1

    def requeue_abandoned(self, now: int | None = None) -> Recovery:
        """Running jobs whose lease expired belong to a worker that died or hung: queue them
        again, or fail them as poison once they have used up their attempts (rq's
        StartedJobRegistry.cleanup, with an injectable clock)."""
        now = now_ms() if now is None else now
        with self._write() as conn:
            rows = conn.execute(
                "SELECT id, attempts, max_attempts FROM jobs"
                " WHERE state = 'running' AND lease_expires_at < ?",
                (now,),
            ).fetchall()
            return self._recover(conn, rows, now)

    def abandon_jobs_of(self, worker_ids: list[str], now: int | None = None) -> Recovery:
        """The supervisor saw these workers' process exit: recover their running jobs now
        (queued again, or failed as poison) instead of when their leases run out."""
        now = now_ms() if now is None else now
        if not worker_ids:
            return Recovery(requeued=[], poisoned=[])
        marks = ", ".join("?" * len(worker_ids))
        with self._write() as conn:
            rows = conn.execute(
                "SELECT id, attempts, max_attempts FROM jobs"
                f" WHERE state = 'running' AND lease_owner IN ({marks})",
                tuple(worker_ids),
            ).fetchall()
            conn.execute(
                "UPDATE workers SET state = 'stopped', current_job_id = NULL"
                f" WHERE id IN ({marks})",
                tuple(worker_ids),
            )
            return self._recover(conn, rows, now)

    def time_out(
        self, job_id: int, owner: str, limit_s: float, now: int | None = None
    ) -> str | None:
        """The supervisor killed this job's worker because the job ran past its hard time
        limit. Queue it again, or fail it with a reason naming the limit once it has used up
        its attempts. Returns "requeued" or "failed"; None when `owner` no longer held it."""
        now = now_ms() if now is None else now
        with self._write() as conn:
            row = conn.execute(
                "SELECT id, attempts, max_attempts FROM jobs"
                " WHERE id = ? AND state = 'running' AND lease_owner = ?",
                (job_id, owner),
            ).fetchone()
            if row is None:
                return None
            attempts = row[1]
            recovery = self._recover(
                conn,
                [row],
                now,
                error_class="JobTimeout",
                error=f"The job ran past its hard time limit of {limit_s:.0f} s "
                f"(SEACO_JOB_TIMEOUT_S + SEACO_JOB_TIMEOUT_FACTOR x its audio length) and the "
                f"worker was stopped, on {attempts} attempt{'s' if attempts != 1 else ''}, so "
                "it was set aside. The file may be damaged or too demanding; check the "
                "service log.",
            )
        return "failed" if recovery.poisoned else "requeued"

    def _recover(
        self,
        conn: sqlite3.Connection,
        rows: list,
        now: int,
        *,
        error: str | None = None,
        error_class: str = "PoisonJob",
    ) -> Recovery:
        """Queue each (id, attempts, max_attempts) job again, or fail it as poison once it
        has used up its attempts. Inside the caller's write transaction."""
        requeued, poisoned = [], []
        for job_id, attempts, max_attempts in rows:
            if attempts >= max_attempts:
                reason = error or (
                    f"The worker stopped (crash, kill or hang) during this job {attempts} "
                    "times, so it was set aside. The file may be damaged or too demanding; "
                    "check the service log."
                )
                conn.execute(
                    """UPDATE jobs SET state = 'failed', stage = NULL, finished_at = ?,
                           updated_at = ?, lease_owner = NULL, lease_expires_at = NULL,
                           error = ?, error_class = ?
                       WHERE id = ?""",
                    (now, now, reason, error_class, job_id),
                )
                poisoned.append(job_id)
            else:
                conn.execute(
                    """UPDATE jobs SET state = 'queued', stage = NULL, lease_owner = NULL,
                           lease_expires_at = NULL, updated_at = ? WHERE id = ?""",
                    (now, job_id),
                )
                requeued.append(job_id)
        return Recovery(requeued=requeued, poisoned=poisoned)

    def worker_ids_for_pid(self, pid: int, hostname: str, since_ms: int) -> list[str]:
        """The worker rows a process registered (a pid is only unique while it lives, so
        rows older than the process are not its own)."""
        rows = self.conn.execute(
            "SELECT id FROM workers WHERE pid = ? AND hostname = ? AND started_at >= ?",
            (pid, hostname, since_ms),
        ).fetchall()
        return [r[0] for r in rows]

    def running_jobs_of(self, worker_ids: list[str]) -> list[Job]:
        if not worker_ids:
            return []
        marks = ", ".join("?" * len(worker_ids))
        rows = self._rows(
            f"SELECT * FROM jobs WHERE state = 'running' AND lease_owner IN ({marks})",
            tuple(worker_ids),
        )
        return [Job.from_row(r) for r in rows]

    def _finish_cancelled(self, conn: sqlite3.Connection, job_id: int, now: int) -> None:
        conn.execute(
            """UPDATE jobs SET state = 'cancelled', stage = NULL, finished_at = ?, updated_at = ?,
                   lease_owner = NULL, lease_expires_at = NULL WHERE id = ?""",
            (now, now, job_id),
        )

    def cancel(self, job_id: int, now: int | None = None) -> Job:
        """A queued job is cancelled at once; a running one when its worker next looks."""
        now = now_ms() if now is None else now
        with self._write() as conn:
            row = conn.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise JobNotFoundError(f"There is no job {job_id}.")
            state = JobState(row[0])
            if state is JobState.QUEUED:
                self._finish_cancelled(conn, job_id, now)
            elif state is JobState.RUNNING:
                conn.execute(
                    "UPDATE jobs SET cancel_requested = 1, updated_at = ? WHERE id = ?",
                    (now, job_id),
                )
            else:
                raise InvalidJobStateError(f"Job {job_id} is already {state.value}.")
        return self.get(job_id)

    def is_cancel_requested(self, job_id: int) -> bool:
        row = self.conn.execute(
            "SELECT cancel_requested FROM jobs WHERE id = ?", (job_id,)
        ).fetchone()
        return bool(row and row[0])

    def cancel_running(self, job_id: int, owner: str, attempt: int) -> bool:
        """The worker saw a cancel request for the job it holds."""
        with self._write() as conn:
            if self._held(conn, job_id, owner, attempt) is None:
                return False
            self._finish_cancelled(conn, job_id, now_ms())
        return True

    # --- workers and heartbeats ----------------------------------------------------------------
    def register_worker(
        self,
        worker_id: str,
        pid: int,
        hostname: str,
        *,
        slot: int = 0,
        device: str | None = None,
        threads: int | None = None,
        now: int | None = None,
    ) -> None:
        """A worker process starting: its row, with the slot of SEACO_WORKERS it runs (0, 1,
        ...), the device it was given and its torch thread count."""
        now = now_ms() if now is None else now
        with self._write() as conn:
            conn.execute(
                """INSERT OR REPLACE INTO workers (id, pid, hostname, started_at, heartbeat_at,
                       state, slot, device, threads)
                   VALUES (?, ?, ?, ?, ?, 'starting', ?, ?, ?)""",
                (worker_id, pid, hostname, now, now, slot, device, threads),
            )

    def heartbeat(
        self,
        worker_id: str,
        *,
        state: str,
        lease_s: int,
        model_loaded: bool,
        model_error: str | None = None,
        current_job_id: int | None = None,
        info: dict[str, Any] | None = None,
        jobs_done: int | None = None,
        jobs_failed: int | None = None,
        now: int | None = None,
    ) -> None:
        """Record that the worker is alive and extend the lease of the job it holds."""
        now = now_ms() if now is None else now
        with self._write() as conn:
            conn.execute(
                """UPDATE workers SET heartbeat_at = ?, state = ?, model_loaded = ?,
                       model_error = ?, current_job_id = ?, info = coalesce(?, info),
                       jobs_done = coalesce(?, jobs_done), jobs_failed = coalesce(?, jobs_failed)
                   WHERE id = ?""",
                (
                    now,
                    state,
                    int(model_loaded),
                    model_error,
                    current_job_id,
                    json.dumps(info, ensure_ascii=False) if info is not None else None,
                    jobs_done,
                    jobs_failed,
                    worker_id,
                ),
            )
            if current_job_id is not None:
                conn.execute(
                    "UPDATE jobs SET lease_expires_at = ?"
                    " WHERE id = ? AND state = 'running' AND lease_owner = ?",
                    (now + lease_s * 1000, current_job_id, worker_id),
                )

    def workers(self) -> list[dict[str, Any]]:
        """Every worker row (one per process start, kept a week), the latest heartbeat
        first; `info` decoded from its JSON."""
        rows = self._rows("SELECT * FROM workers ORDER BY heartbeat_at DESC")
        for row in rows:
            row["info"] = json.loads(row["info"]) if row["info"] else {}
        return rows

    def latest_worker(self) -> dict[str, Any] | None:
        rows = self.workers()
        return rows[0] if rows else None

    def prune_workers(self, older_than_ms: int, now: int | None = None) -> int:
        """Forget stopped workers' rows after a while so the table stays small."""
        now = now_ms() if now is None else now
        with self._write() as conn:
            cursor = conn.execute(
                "DELETE FROM workers WHERE heartbeat_at < ?", (now - older_than_ms,)
            )
        return cursor.rowcount
