"""Submitting and reading jobs, filters, search, settings, and `Store`, the one handle that
combines every part of the store (see the package's docstring for the parts).

Web and worker processes open the same file at the same time: every connection runs in WAL
mode with a long busy timeout, and every write that reads before it writes (submit with
admission control, claim, complete) is one `BEGIN IMMEDIATE` transaction, so two writers
queue up instead of failing with "database is locked" and no job is ever claimed twice.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.errors import InvalidJobStateError, JobNotFoundError, QueueFullError
from engine.jobs import Job, JobState
from engine.store.callback_deliveries import CallbackSide
from engine.store.database import (
    BUSY_TIMEOUT_MS,
    now_ms,
)
from engine.store.job_queue import QueueSide
from engine.store.operations import OperationsSide
from engine.store.search_index import (
    _CJK_GAP,
    _FTS_DELETE_JOB,
    _fts_rowid_range,
    fts_query,
)


@dataclass(frozen=True)
class NewJob:
    """What a submitter knows about a job before it is queued."""

    audio_sha256: str
    audio_path: str
    audio_bytes: int
    original_name: str
    container: str | None = None
    codec: str | None = None
    duration_ms: int | None = None
    duration_estimated: bool = False  # duration_ms is a bitrate guess (audio.AudioInfo)
    sample_rate: int | None = None
    channels: int | None = None
    hotwords: tuple[str, ...] = ()
    priority: int = 0
    batch_id: str | None = None
    source: str = "web"
    use_default_hotwords: bool = True  # False: the operator's default hotwords do not apply
    compare_of: int | None = None  # the job this one re-runs for comparison
    callback_url: str | None = None  # POSTed the job's JSON when it ends (engine/callbacks.py)
    # what the worker will leave out of the job's own hotwords, and why (shown at once; the
    # worker records the final word with the operator's defaults merged in)
    hotword_warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class SearchHit:
    job_id: int
    sentence_idx: int
    start_ms: int
    snippet: str  # matched words wrapped in 【 】
    original_name: str


@dataclass(frozen=True)
class JobFilter:
    """What the Jobs page and the API can filter on; None means any."""

    state: JobState | str | None = None
    batch_id: str | None = None
    submitted_from: int | None = None  # epoch ms, inclusive
    submitted_to: int | None = None  # epoch ms, exclusive
    name_contains: str | None = None


def _refuse_when_full(conn: sqlite3.Connection, queue_max: int) -> None:
    """Inside a write transaction, so the count cannot change before the caller inserts."""
    depth = conn.execute("SELECT count(*) FROM jobs WHERE state = 'queued'").fetchone()[0]
    if depth >= queue_max:
        raise QueueFullError(
            f"The queue is full ({depth} jobs waiting, limit {queue_max}). "
            "Try again in a little while."
        )


def _inserted_id(cursor: sqlite3.Cursor) -> int:
    """The rowid of the row an INSERT just wrote (`lastrowid` is None only on a cursor that
    has not inserted anything)."""
    if cursor.lastrowid is None:
        raise RuntimeError("the INSERT reported no row id")
    return cursor.lastrowid


class Store(QueueSide, OperationsSide, CallbackSide):
    """A handle on jobs.db, safe to share between threads (one connection per thread)."""

    # --- submit and read -------------------------------------------------------------------
    def submit(
        self, new: NewJob, *, queue_max: int, max_attempts: int, now: int | None = None
    ) -> Job:
        """Queue a job, or raise QueueFullError when `queue_max` jobs already wait. The row is
        synced to disk before this returns: an accepted job survives a power cut."""
        now = now_ms() if now is None else now
        with self._write(durable=True) as conn:
            _refuse_when_full(conn, queue_max)
            cursor = conn.execute(
                """INSERT INTO jobs (state, priority, batch_id, source, submitted_at, updated_at,
                       max_attempts, audio_sha256, audio_path, audio_bytes, original_name,
                       container, codec, duration_ms, sample_rate, channels, hotwords,
                       use_default_hotwords, compare_of, duration_estimated, hotword_warnings)
                   VALUES ('queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
                           ?)""",
                (
                    new.priority,
                    new.batch_id,
                    new.source,
                    now,
                    now,
                    max_attempts,
                    new.audio_sha256,
                    new.audio_path,
                    new.audio_bytes,
                    new.original_name,
                    new.container,
                    new.codec,
                    new.duration_ms,
                    new.sample_rate,
                    new.channels,
                    json.dumps(list(new.hotwords), ensure_ascii=False),
                    int(new.use_default_hotwords),
                    new.compare_of,
                    int(new.duration_estimated),
                    json.dumps(list(new.hotword_warnings), ensure_ascii=False)
                    if new.hotword_warnings
                    else None,
                ),
            )
            job_id = _inserted_id(cursor)
            if new.callback_url:
                conn.execute(
                    "INSERT INTO callbacks (job_id, url) VALUES (?, ?)", (job_id, new.callback_url)
                )
        return self.get(job_id)

    def submit_comparison(
        self,
        job_id: int,
        *,
        queue_max: int,
        max_attempts: int,
        priority: int,
        source: str = "web",
        now: int | None = None,
    ) -> Job:
        """Queue a re-run of a done job on the same audio with no hotwords at all (neither
        its own nor the operator's defaults), marked as a comparison for it.

        A comparison that is queued, running or done already is returned instead of queuing
        another: a double click, or two people looking at the same job, cost one run.
        """
        now = now_ms() if now is None else now
        with self._write() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise JobNotFoundError(f"There is no job {job_id}.")
            if row["state"] != JobState.DONE.value:
                raise InvalidJobStateError(
                    f"Job {job_id} is {row['state']}; only a finished (done) job can be "
                    "compared with a run without hotwords."
                )
            existing = conn.execute(
                "SELECT id FROM jobs WHERE compare_of = ? AND state IN ('queued', 'running',"
                " 'done') ORDER BY id DESC LIMIT 1",
                (job_id,),
            ).fetchone()
            if existing is None:
                _refuse_when_full(conn, queue_max)
                cursor = conn.execute(
                    """INSERT INTO jobs (state, priority, source, submitted_at, updated_at,
                           max_attempts, audio_sha256, audio_path, audio_bytes, original_name,
                           container, codec, duration_ms, sample_rate, channels, hotwords,
                           use_default_hotwords, compare_of, duration_estimated)
                       SELECT 'queued', ?, ?, ?, ?, ?, audio_sha256, audio_path, audio_bytes,
                           original_name, container, codec, duration_ms, sample_rate,
                           channels, '[]', 0, id, duration_estimated
                       FROM jobs WHERE id = ?""",
                    (priority, source, now, now, max_attempts, job_id),
                )
                new_id = _inserted_id(cursor)
            else:
                new_id = existing[0]
        return self.get(new_id)

    def comparison_for(self, job_id: int) -> Job | None:
        """The newest "without hotwords" re-run of a job, in any state; None if there is none."""
        row = self.conn.execute(
            "SELECT id FROM jobs WHERE compare_of = ? ORDER BY id DESC LIMIT 1", (job_id,)
        ).fetchone()
        return None if row is None else self.get(row[0])

    @staticmethod
    def _job_filter(f: JobFilter) -> tuple[str, list[str | int]]:
        clauses: list[str] = []
        params: list[str | int] = []
        if f.state is not None:
            clauses.append("state = ?")
            params.append(JobState(f.state).value)
        if f.batch_id is not None:
            clauses.append("batch_id = ?")
            params.append(f.batch_id)
        if f.submitted_from is not None:
            clauses.append("submitted_at >= ?")
            params.append(int(f.submitted_from))
        if f.submitted_to is not None:
            clauses.append("submitted_at < ?")
            params.append(int(f.submitted_to))
        if f.name_contains:
            escaped = f.name_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            clauses.append("original_name LIKE ? ESCAPE '\\'")
            params.append(f"%{escaped}%")
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def list_jobs(
        self,
        *,
        state: JobState | str | None = None,
        batch_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
        where: JobFilter | None = None,
    ) -> list[Job]:
        """Newest first. Limits are clamped, not trusted: 0..1000 rows from offset >= 0.
        `state`/`batch_id` are shorthands for the same fields of `where`."""
        f = where or JobFilter(state=state, batch_id=batch_id)
        clause, params = self._job_filter(f)
        limit, offset = max(0, min(limit, 1000)), max(0, min(offset, 2**62))
        rows = self._rows(
            f"SELECT * FROM jobs{clause} ORDER BY id DESC LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return [Job.from_row(r) for r in rows]

    def count_jobs(
        self,
        *,
        state: JobState | str | None = None,
        batch_id: str | None = None,
        where: JobFilter | None = None,
    ) -> int:
        clause, params = self._job_filter(where or JobFilter(state=state, batch_id=batch_id))
        return self.conn.execute(f"SELECT count(*) FROM jobs{clause}", params).fetchone()[0]

    def retry(self, job_id: int, *, queue_max: int, now: int | None = None) -> Job:
        """Queue a failed or cancelled job again, as if new (attempts and error cleared)."""
        now = now_ms() if now is None else now
        with self._write() as conn:
            row = conn.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise JobNotFoundError(f"There is no job {job_id}.")
            if row[0] not in (JobState.FAILED.value, JobState.CANCELLED.value):
                raise InvalidJobStateError(
                    f"Job {job_id} is {row[0]}; only failed or cancelled jobs can be retried."
                )
            _refuse_when_full(conn, queue_max)
            conn.execute(
                """UPDATE jobs SET state = 'queued', attempts = 0, cancel_requested = 0,
                       error = NULL, error_class = NULL, started_at = NULL, finished_at = NULL,
                       stage = NULL, queue_wait_ms = NULL, decode_ms = NULL,
                       inference_ms = NULL, total_ms = NULL, rtf = NULL,
                       submitted_at = ?, updated_at = ? WHERE id = ?""",
                (now, now, job_id),
            )
            # its next end is announced again, however the last one's delivery went
            conn.execute(
                """UPDATE callbacks SET attempts = 0, next_at = NULL, delivered_at = NULL,
                       gave_up_at = NULL, last_status = NULL, last_error = NULL
                   WHERE job_id = ?""",
                (job_id,),
            )
        return self.get(job_id)

    def batch_counts(self, batch_id: str) -> dict[str, int]:
        counts = {s.value: 0 for s in JobState}
        for row in self.conn.execute(
            "SELECT state, count(*) FROM jobs WHERE batch_id = ? GROUP BY state", (batch_id,)
        ):
            counts[row[0]] = row[1]
        return counts

    # --- operator settings ---------------------------------------------------------------
    def get_setting(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM settings_kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_setting(self, key: str, value: str) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO settings_kv (key, value, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                " updated_at = excluded.updated_at",
                (key, value, now_ms()),
            )

    def delete_job(self, job_id: int) -> str | None:
        """Delete a job that is not running, with its sentences and index rows. Returns the
        audio path (relative to the data dir) when no other job uses that file any more, so
        the caller can remove it; None otherwise."""
        with self._write() as conn:
            row = conn.execute(
                "SELECT state, audio_sha256, audio_path FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
            if row is None:
                raise JobNotFoundError(f"There is no job {job_id}.")
            if row[0] == JobState.RUNNING.value:
                raise InvalidJobStateError(
                    f"Job {job_id} is running; cancel it first, then delete it."
                )
            conn.execute(_FTS_DELETE_JOB, _fts_rowid_range(job_id))
            conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))  # sentences cascade
            others = conn.execute(
                "SELECT count(*) FROM jobs WHERE audio_sha256 = ?", (row[1],)
            ).fetchone()[0]
        return None if others else row[2]

    def queue_depth(self) -> int:
        return self.conn.execute("SELECT count(*) FROM jobs WHERE state = 'queued'").fetchone()[0]

    def queue_position(self, job_id: int) -> int | None:
        """1 = next to run; None when the job is not queued."""
        job = self.get(job_id)
        if job.state is not JobState.QUEUED:
            return None
        ahead = self.conn.execute(
            "SELECT count(*) FROM jobs WHERE state = 'queued'"
            " AND (priority > ? OR (priority = ? AND id < ?))",
            (job.priority, job.priority, job.id),
        ).fetchone()[0]
        return ahead + 1

    def audio_references(self, sha256: str) -> int:
        """How many jobs use this audio file (files are shared by content hash)."""
        return self.conn.execute(
            "SELECT count(*) FROM jobs WHERE audio_sha256 = ?", (sha256,)
        ).fetchone()[0]

    def remove_unused_audio(self, sha256: str, remove: Callable[[], None]) -> bool:
        """Call `remove` (which deletes the audio file) if no job uses this audio, under the
        write lock, so that no upload of the same content can queue a job on the file
        between the check and the delete. False when the file is in use."""
        with self._write() as conn:
            used = conn.execute(
                "SELECT count(*) FROM jobs WHERE audio_sha256 = ?", (sha256,)
            ).fetchone()[0]
            if used:
                return False
            remove()
        return True

    def counts_by_state(self) -> dict[str, int]:
        counts = {s.value: 0 for s in JobState}
        for row in self.conn.execute("SELECT state, count(*) FROM jobs GROUP BY state"):
            counts[row[0]] = row[1]
        return counts

    def mean_processing_s(self, last_n: int = 20) -> float | None:
        """Mean start-to-finish time of the last finished jobs (None before the first)."""
        row = self.conn.execute(
            "SELECT avg(total_ms) FROM (SELECT total_ms FROM jobs WHERE state = 'done'"
            " AND total_ms IS NOT NULL ORDER BY finished_at DESC LIMIT ?)",
            (last_n,),
        ).fetchone()
        return None if row[0] is None else row[0] / 1000

    def latency_buckets(self, column: str, bounds_ms: list[int]) -> tuple[list[int], int, int]:
        """For a Prometheus histogram over finished jobs: cumulative counts at each bound,
        the total count and the sum (ms), in one scan."""
        if column not in ("queue_wait_ms", "total_ms", "inference_ms", "decode_ms"):
            raise ValueError(f"not a latency column: {column}")
        cases = ", ".join(f"sum({column} <= {int(b)})" for b in bounds_ms)
        row = self.conn.execute(
            f"SELECT {cases}, count({column}), coalesce(sum({column}), 0) FROM jobs"
            f" WHERE state = 'done' AND {column} IS NOT NULL"
        ).fetchone()
        values = [v or 0 for v in row]
        return values[:-2], values[-2], values[-1]

    def processed_totals(self) -> dict[str, float]:
        """Audio seconds and processing seconds over all done jobs (for RTF and throughput)."""
        row = self.conn.execute(
            "SELECT coalesce(sum(duration_ms), 0), coalesce(sum(total_ms), 0) FROM jobs"
            " WHERE state = 'done'"
        ).fetchone()
        return {"audio_s": row[0] / 1000, "processing_s": row[1] / 1000}

    # --- search --------------------------------------------------------------------------------
    def search(self, query: str, *, limit: int = 50, offset: int = 0) -> list[SearchHit]:
        """Sentences containing every term, newest job first. Not ranked by BM25:
        FTS5 must score every match before it can sort by rank, which for a common character
        over 100 000 jobs takes seconds (bench/jobs_page.py); rowid order stops after `limit`."""
        match = fts_query(query)
        if match is None:
            return []
        rows = self._rows(
            """SELECT f.job_id, f.idx, f.start_ms, j.original_name,
                      snippet(transcript_fts, 0, '【', '】', '…', 24) AS snippet
               FROM transcript_fts f JOIN jobs j ON j.id = f.job_id
               WHERE transcript_fts MATCH ? ORDER BY f.rowid DESC LIMIT ? OFFSET ?""",
            (match, max(0, min(limit, 500)), max(0, offset)),
        )
        return [
            SearchHit(
                job_id=int(r["job_id"]),
                sentence_idx=int(r["idx"]),
                start_ms=int(r["start_ms"]),
                snippet=_CJK_GAP.sub("", r["snippet"]),
                original_name=r["original_name"],
            )
            for r in rows
        ]


def open_store(db_path: str | Path, *, busy_timeout_s: float = BUSY_TIMEOUT_MS / 1000) -> Store:
    """Open jobs.db, creating and migrating it as needed."""
    store = Store(db_path, busy_timeout_s=busy_timeout_s)
    store.migrate()
    return store
