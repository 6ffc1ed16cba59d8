"""The SQLite job store: migrations, the job lifecycle, leases, workers, events, search.

This is the only module that speaks SQL. Web and worker processes open the same file at the
same time: every connection runs in WAL mode with a long busy timeout, and every write that
reads before it writes (submit with admission control, claim, complete) is one
`BEGIN IMMEDIATE` transaction, so two writers queue up instead of failing with
"database is locked" and no job is ever claimed twice.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from engine.errors import InvalidJobStateError, JobNotFoundError, QueueFullError
from engine.jobs import Job, JobState, Sentence

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schema"
BUSY_TIMEOUT_MS = 30_000


def now_ms() -> int:
    return int(time.time() * 1000)


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
    sample_rate: int | None = None
    channels: int | None = None
    hotwords: tuple[str, ...] = ()
    priority: int = 0
    batch_id: str | None = None
    source: str = "web"
    use_default_hotwords: bool = True  # False: the operator's default hotwords do not apply
    compare_of: int | None = None  # the job this one re-runs for comparison


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


@dataclass(frozen=True)
class Recovery:
    requeued: list[int]
    poisoned: list[int]


def connect(db_path: str | Path) -> sqlite3.Connection:
    """One place sets the pragmas every connection needs (huey's _create_connection)."""
    conn = sqlite3.connect(
        str(db_path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA synchronous = NORMAL")  # durable across process crashes in WAL mode
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _statements(script: str) -> Iterator[str]:
    """Split a migration into statements; executescript() would commit mid-transaction."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                yield buffer
            buffer = ""
    if buffer.strip() and not buffer.strip().startswith("--"):
        yield buffer


_CJK = re.compile(r"([\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f])")
_CJK_GAP = re.compile(
    r"(?<=[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff】【]) (?=[\u3400-\u9fff\uf900-\ufaff【】])"
)


# schema/004: a transcript_fts row's rowid is job_id * FTS_ROWS_PER_JOB + sentence index, so
# one job's rows are a rowid range (its job_id column is not indexed) and rowid order is
# newest job first.
FTS_ROWS_PER_JOB = 1 << 20
_FTS_INSERT = (
    "INSERT INTO transcript_fts (rowid, body, job_id, idx, start_ms) VALUES (?, ?, ?, ?, ?)"
)
_FTS_DELETE_JOB = "DELETE FROM transcript_fts WHERE rowid BETWEEN ? AND ?"


def _fts_rowid_range(job_id: int) -> tuple[int, int]:
    return job_id * FTS_ROWS_PER_JOB, (job_id + 1) * FTS_ROWS_PER_JOB - 1


def fts_body(text: str) -> str:
    """Chinese has no spaces: index every CJK character as its own token."""
    return re.sub(r"\s+", " ", _CJK.sub(r" \1 ", text)).strip()


def fts_query(query: str) -> str | None:
    """Turn what a user typed into a safe FTS5 query: every term a quoted phrase, ANDed.

    Quoting every term means no user input is ever parsed as FTS5 syntax, so a malformed
    query cannot raise; a term with no letters or digits is dropped.
    """
    # Control characters (NUL above all, which ends the query inside SQLite) are not words.
    query = "".join(ch for ch in query if unicodedata.category(ch)[0] != "C")
    phrases = []
    for term in query.split():
        body = fts_body(term)
        if not re.search(r"\w", body):
            continue
        phrases.append('"' + body.replace('"', '""') + '"')
    return " ".join(phrases) or None


class Store:
    """A handle on jobs.db, safe to share between threads (one connection per thread)."""

    def __init__(self, db_path: str | Path, schema_dir: Path = SCHEMA_DIR):
        self.db_path = Path(db_path)
        self.schema_dir = schema_dir
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    # --- connections and transactions ----------------------------------------------------
    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.db_path)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @property
    def db(self) -> sqlite_utils.Database:
        return sqlite_utils.Database(self.conn)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE: take the write lock before reading, so read-then-write is atomic."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _rows(self, sql: str, params: tuple | dict = ()) -> list[dict[str, Any]]:
        return list(self.db.query(sql, params))

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()

    # --- migrations --------------------------------------------------------------------------
    def migrate(self) -> list[int]:
        """Apply every schema/NNN_*.sql not yet applied, each with its bookkeeping row in one
        transaction (sqlite-utils' migrations). Safe to call from several processes at once."""
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
        )
        applied: list[int] = []
        for path in sorted(self.schema_dir.glob("[0-9][0-9][0-9]_*.sql")):
            version = int(path.name[:3])
            with self._write() as conn:
                done = conn.execute(
                    "SELECT 1 FROM schema_migrations WHERE version = ?", (version,)
                ).fetchone()
                if done:
                    continue
                for statement in _statements(path.read_text(encoding="utf-8")):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (version, path.stem, now_ms()),
                )
            applied.append(version)
        return applied

    def schema_version(self) -> int:
        row = self.conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
        return row[0] or 0

    # --- submit and read -------------------------------------------------------------------
    def submit(
        self, new: NewJob, *, queue_max: int, max_attempts: int, now: int | None = None
    ) -> Job:
        """Queue a job, or raise QueueFullError when `queue_max` jobs already wait."""
        now = now_ms() if now is None else now
        with self._write() as conn:
            depth = conn.execute("SELECT count(*) FROM jobs WHERE state = 'queued'").fetchone()[0]
            if depth >= queue_max:
                raise QueueFullError(
                    f"The queue is full ({depth} jobs waiting, limit {queue_max}). "
                    "Try again in a little while."
                )
            cursor = conn.execute(
                """INSERT INTO jobs (state, priority, batch_id, source, submitted_at, updated_at,
                       max_attempts, audio_sha256, audio_path, audio_bytes, original_name,
                       container, codec, duration_ms, sample_rate, channels, hotwords,
                       use_default_hotwords, compare_of)
                   VALUES ('queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    new.priority, new.batch_id, new.source, now, now, max_attempts,
                    new.audio_sha256, new.audio_path, new.audio_bytes, new.original_name,
                    new.container, new.codec, new.duration_ms, new.sample_rate, new.channels,
                    json.dumps(list(new.hotwords), ensure_ascii=False),
                    int(new.use_default_hotwords), new.compare_of,
                ),
            )  # fmt: skip
            job_id = cursor.lastrowid
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
                depth = self.queue_depth()  # same connection: inside this transaction
                if depth >= queue_max:
                    raise QueueFullError(
                        f"The queue is full ({depth} jobs waiting, limit {queue_max}). "
                        "Try again in a little while."
                    )
                cursor = conn.execute(
                    """INSERT INTO jobs (state, priority, source, submitted_at, updated_at,
                           max_attempts, audio_sha256, audio_path, audio_bytes, original_name,
                           container, codec, duration_ms, sample_rate, channels, hotwords,
                           use_default_hotwords, compare_of)
                       SELECT 'queued', ?, ?, ?, ?, ?, audio_sha256, audio_path, audio_bytes,
                           original_name, container, codec, duration_ms, sample_rate,
                           channels, '[]', 0, id
                       FROM jobs WHERE id = ?""",
                    (priority, source, now, now, max_attempts, job_id),
                )
                new_id = cursor.lastrowid
            else:
                new_id = existing[0]
        return self.get(new_id)

    def comparison_for(self, job_id: int) -> Job | None:
        """The newest "without hotwords" re-run of a job, in any state; None if there is none."""
        row = self.conn.execute(
            "SELECT id FROM jobs WHERE compare_of = ? ORDER BY id DESC LIMIT 1", (job_id,)
        ).fetchone()
        return None if row is None else self.get(row[0])

    def get(self, job_id: int) -> Job:
        rows = self._rows("SELECT * FROM jobs WHERE id = ?", (job_id,))
        if not rows:
            raise JobNotFoundError(f"There is no job {job_id}.")
        sentences = [
            Sentence(text=r["text"], start_ms=r["start_ms"], end_ms=r["end_ms"])
            for r in self._rows(
                "SELECT text, start_ms, end_ms FROM sentences WHERE job_id = ? ORDER BY idx",
                (job_id,),
            )
        ]
        return Job.from_row(rows[0], sentences)

    @staticmethod
    def _job_filter(f: JobFilter) -> tuple[str, list]:
        clauses, params = [], []
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
            depth = conn.execute("SELECT count(*) FROM jobs WHERE state = 'queued'").fetchone()[0]
            if depth >= queue_max:
                raise QueueFullError(
                    f"The queue is full ({depth} jobs waiting, limit {queue_max}). "
                    "Try again in a little while."
                )
            conn.execute(
                """UPDATE jobs SET state = 'queued', attempts = 0, cancel_requested = 0,
                       error = NULL, error_class = NULL, started_at = NULL, finished_at = NULL,
                       stage = NULL, queue_wait_ms = NULL, decode_ms = NULL,
                       inference_ms = NULL, total_ms = NULL, rtf = NULL,
                       submitted_at = ?, updated_at = ? WHERE id = ?""",
                (now, now, job_id),
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

    def database_bytes(self) -> int:
        """jobs.db with its WAL, for the System page."""
        return sum(
            p.stat().st_size
            for p in (self.db_path, self.db_path.with_name(self.db_path.name + "-wal"))
            if p.exists()
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

    # --- the worker's side: claim, lease, finish ---------------------------------------------
    def claim(self, owner: str, lease_s: int, now: int | None = None) -> Job | None:
        """Take the next queued job (highest priority, then oldest) under a lease."""
        now = now_ms() if now is None else now
        with self._write() as conn:
            row = conn.execute(
                """UPDATE jobs SET state = 'running', stage = 'decoding', lease_owner = ?,
                       lease_expires_at = ?, attempts = attempts + 1, started_at = ?,
                       updated_at = ?, queue_wait_ms = ? - submitted_at
                   WHERE id = (SELECT id FROM jobs WHERE state = 'queued'
                               ORDER BY priority DESC, id LIMIT 1)
                   RETURNING id""",
                (owner, now + lease_s * 1000, now, now, now),
            ).fetchone()
        return None if row is None else self.get(row[0])

    def renew_lease(self, job_id: int, owner: str, lease_s: int, now: int | None = None) -> bool:
        now = now_ms() if now is None else now
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE jobs SET lease_expires_at = ?"
                " WHERE id = ? AND state = 'running' AND lease_owner = ?",
                (now + lease_s * 1000, job_id, owner),
            )
        return cursor.rowcount == 1

    def set_stage(self, job_id: int, owner: str, stage: str) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE jobs SET stage = ?, updated_at = ?"
                " WHERE id = ? AND state = 'running' AND lease_owner = ?",
                (stage, now_ms(), job_id, owner),
            )

    def _held(self, conn: sqlite3.Connection, job_id: int, owner: str, attempt: int) -> dict:
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
                       decode_ms = ?, inference_ms = ?, total_ms = ?, rtf = ?, model_info = ?,
                       duration_ms = ?, error = NULL, error_class = NULL
                   WHERE id = ?""",
                (
                    now, now, result.text, result.raw_text, result.confidence,
                    len(result.sentences),
                    json.dumps(result.effective_hotwords, ensure_ascii=False),
                    result.decode_ms, result.inference_ms, total_ms,
                    (total_ms / duration_ms) if duration_ms else None,
                    json.dumps(result.model_info, ensure_ascii=False), duration_ms, job_id,
                ),
            )  # fmt: skip
            conn.execute("DELETE FROM sentences WHERE job_id = ?", (job_id,))
            conn.execute(_FTS_DELETE_JOB, _fts_rowid_range(job_id))
            first_rowid = _fts_rowid_range(job_id)[0]
            for idx, s in enumerate(result.sentences):
                conn.execute(
                    "INSERT INTO sentences (job_id, idx, start_ms, end_ms, text)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (job_id, idx, s.start_ms, s.end_ms, s.text),
                )
                if idx < FTS_ROWS_PER_JOB:  # beyond: the next job's range (a month of speech)
                    row = (first_rowid + idx, fts_body(s.text), job_id, idx, s.start_ms)
                    conn.execute(_FTS_INSERT, row)
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
            requeued, poisoned = [], []
            for job_id, attempts, max_attempts in rows:
                if attempts >= max_attempts:
                    conn.execute(
                        """UPDATE jobs SET state = 'failed', stage = NULL, finished_at = ?,
                               updated_at = ?, lease_owner = NULL, lease_expires_at = NULL,
                               error = ?, error_class = 'PoisonJob'
                           WHERE id = ?""",
                        (
                            now, now,
                            f"The worker stopped (crash, kill or hang) during this job "
                            f"{attempts} times, so it was set aside. The file may be damaged "
                            "or too demanding; check the service log.",
                            job_id,
                        ),
                    )  # fmt: skip
                    poisoned.append(job_id)
                else:
                    conn.execute(
                        """UPDATE jobs SET state = 'queued', stage = NULL, lease_owner = NULL,
                               lease_expires_at = NULL, updated_at = ? WHERE id = ?""",
                        (now, job_id),
                    )
                    requeued.append(job_id)
        return Recovery(requeued=requeued, poisoned=poisoned)

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

    # --- workers and events --------------------------------------------------------------------
    def register_worker(self, worker_id: str, pid: int, hostname: str) -> None:
        now = now_ms()
        with self._write() as conn:
            conn.execute(
                """INSERT OR REPLACE INTO workers (id, pid, hostname, started_at, heartbeat_at,
                       state) VALUES (?, ?, ?, ?, ?, 'starting')""",
                (worker_id, pid, hostname, now, now),
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
                    now, state, int(model_loaded), model_error, current_job_id,
                    json.dumps(info, ensure_ascii=False) if info is not None else None,
                    jobs_done, jobs_failed, worker_id,
                ),
            )  # fmt: skip
            if current_job_id is not None:
                conn.execute(
                    "UPDATE jobs SET lease_expires_at = ?"
                    " WHERE id = ? AND state = 'running' AND lease_owner = ?",
                    (now + lease_s * 1000, current_job_id, worker_id),
                )

    def workers(self) -> list[dict[str, Any]]:
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

    def add_event(
        self,
        kind: str,
        message: str,
        *,
        level: str = "info",
        job_id: int | None = None,
        data: dict[str, Any] | None = None,
        now: int | None = None,
    ) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO events (at, level, kind, message, job_id, data)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    now_ms() if now is None else now, level, kind, message, job_id,
                    json.dumps(data, ensure_ascii=False) if data is not None else None,
                ),
            )  # fmt: skip

    def events(self, limit: int = 50) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM events ORDER BY id DESC LIMIT ?", (max(0, limit),))

    def check(self) -> None:
        """A cheap query that fails when the database is unusable (for /health)."""
        self.conn.execute("SELECT count(*) FROM schema_migrations").fetchone()


def open_store(db_path: str | Path) -> Store:
    """Open jobs.db, creating and migrating it as needed."""
    store = Store(db_path)
    store.migrate()
    return store
