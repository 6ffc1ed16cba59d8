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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from engine.errors import (
    DatabaseBusyError,
    DatabaseError,
    InvalidJobStateError,
    JobNotFoundError,
    QueueFullError,
    StorageFullError,
)
from engine.jobs import Job, JobState, Sentence

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schema"
BUSY_TIMEOUT_MS = 30_000


def now_ms() -> int:
    return int(time.time() * 1000)


# Columns a telemetry row may carry (what add_telemetry accepts; anything else is ignored).
_OPS_COLUMNS = {
    "telemetry": frozenset((
        "at", "resolution_s", "samples", "cpu_pct", "ram_used_bytes", "ram_total_bytes",
        "rss_bytes", "rss_peak_bytes", "queue_depth", "running_jobs", "vram_used_bytes",
        "vram_peak_bytes", "vram_total_bytes", "gpu_util_pct",
    )),
    "gpu_telemetry": frozenset((
        "at", "resolution_s", "samples", "gpu", "name", "memory_used_bytes",
        "memory_peak_bytes", "memory_total_bytes", "utilization_pct", "temperature_c", "power_w",
    )),
}  # fmt: skip


def _wmean(column: str) -> str:
    """SQL for a sample-weighted mean of `column` (a 1-minute row holds `samples` samples)."""
    return f"(sum({column} * samples) / sum(CASE WHEN {column} IS NOT NULL THEN samples END))"


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
    # wall ms per recognition stage, keys "vad", "asr", "punc" (Transcript.stage_ms)
    stage_ms: dict[str, int] = field(default_factory=dict)


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


def connect(db_path: str | Path, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> sqlite3.Connection:
    """One place sets the pragmas every connection needs (huey's _create_connection)."""
    conn = sqlite3.connect(
        str(db_path), timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
    )
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
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


# SQLite's primary result codes (sqlite3.h) for the failures that are about the machine, not
# the request: they become errors the API can answer with 503/507 instead of a 500.
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_IOERR, _SQLITE_FULL = 5, 6, 10, 13


def storage_error(exc: sqlite3.Error) -> Exception | None:
    """The SeacoError for a write that failed because of the machine: the lock was held too
    long, the disk is full, or the disk failed. None for anything else (a bug: SQL errors
    stay as they are). The transaction was rolled back, so nothing half-written remains."""
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    primary = code & 0xFF if code is not None else None
    text = str(exc).lower()
    if primary == _SQLITE_FULL or "disk is full" in text:
        return StorageFullError(
            "The disk holding the data directory is full, so nothing could be saved. "
            "Free some space (old audio, logs) and try again."
        )
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED) or "locked" in text or "busy" in text:
        return DatabaseBusyError(
            "The job database is busy (another process held its lock too long). "
            "Try again in a few seconds."
        )
    if primary == _SQLITE_IOERR or "disk i/o error" in text:
        return DatabaseError(f"The job database could not be written: {exc}.")
    return None


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


def _refuse_when_full(conn: sqlite3.Connection, queue_max: int) -> None:
    """Inside a write transaction, so the count cannot change before the caller inserts."""
    depth = conn.execute("SELECT count(*) FROM jobs WHERE state = 'queued'").fetchone()[0]
    if depth >= queue_max:
        raise QueueFullError(
            f"The queue is full ({depth} jobs waiting, limit {queue_max}). "
            "Try again in a little while."
        )


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

    def __init__(
        self,
        db_path: str | Path,
        schema_dir: Path = SCHEMA_DIR,
        *,
        busy_timeout_s: float = BUSY_TIMEOUT_MS / 1000,
    ):
        self.db_path = Path(db_path)
        self.schema_dir = schema_dir
        self.busy_timeout_ms = int(busy_timeout_s * 1000)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    # --- connections and transactions ----------------------------------------------------
    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.db_path, self.busy_timeout_ms)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @property
    def db(self) -> sqlite_utils.Database:
        return sqlite_utils.Database(self.conn)

    @contextmanager
    def _write(self, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE: take the write lock before reading, so read-then-write is atomic.

        `durable` syncs the WAL at this commit (synchronous=FULL), so the row survives a power
        cut, not only a process crash: for accepting a job, which a 202 promises to keep.
        A lock held too long or a full disk comes out as a SeacoError (DatabaseBusyError,
        StorageFullError), after the transaction was rolled back."""
        conn = self.conn
        try:
            if durable:
                conn.execute("PRAGMA synchronous = FULL")
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    self._rollback(conn)
                    raise
                try:
                    conn.execute("COMMIT")
                except BaseException:
                    self._rollback(conn)
                    raise
            finally:
                if durable:
                    conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.OperationalError as exc:
            error = storage_error(exc)
            if error is None:
                raise
            raise error from exc

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        if conn.in_transaction:  # SQLite may already have rolled back (e.g. on SQLITE_FULL)
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # the original error is what matters

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
        """Queue a job, or raise QueueFullError when `queue_max` jobs already wait. The row is
        synced to disk before this returns: an accepted job survives a power cut."""
        now = now_ms() if now is None else now
        with self._write(durable=True) as conn:
            _refuse_when_full(conn, queue_max)
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
                _refuse_when_full(conn, queue_max)
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
            _refuse_when_full(conn, queue_max)
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

    def claim_queued(
        self, job_id: int, owner: str, lease_s: int, now: int | None = None
    ) -> Job | None:
        """Take this queued job under a lease, as `claim` does for the next one (cross-job
        batching adds jobs to the one it claimed); None when it is no longer queued."""
        now = now_ms() if now is None else now
        with self._write() as conn:
            row = conn.execute(
                """UPDATE jobs SET state = 'running', stage = 'decoding', lease_owner = ?,
                       lease_expires_at = ?, attempts = attempts + 1, started_at = ?,
                       updated_at = ?, queue_wait_ms = ? - submitted_at
                   WHERE id = ? AND state = 'queued'
                   RETURNING id""",
                (owner, now + lease_s * 1000, now, now, now, job_id),
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
        the supervisor's hard time limit is computed from (a header may not say)."""
        with self._write() as conn:
            conn.execute(
                "UPDATE jobs SET stage = ?, updated_at = ?, duration_ms = coalesce(?, duration_ms)"
                " WHERE id = ? AND state = 'running' AND lease_owner = ?",
                (stage, now_ms(), duration_ms, job_id, owner),
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
                       duration_ms = ?, error = NULL, error_class = NULL,
                       vad_ms = ?, asr_ms = ?, punc_ms = ?
                   WHERE id = ?""",
                (
                    now, now, result.text, result.raw_text, result.confidence,
                    len(result.sentences),
                    json.dumps(result.effective_hotwords, ensure_ascii=False),
                    result.decode_ms, result.inference_ms, total_ms,
                    (total_ms / duration_ms) if duration_ms else None,
                    json.dumps(result.model_info, ensure_ascii=False), duration_ms,
                    result.stage_ms.get("vad"), result.stage_ms.get("asr"),
                    result.stage_ms.get("punc"), job_id,
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
                conn, [row], now, error_class="JobTimeout",
                error=f"The job ran past its hard time limit of {limit_s:.0f} s "
                f"(SEACO_JOB_TIMEOUT_S + SEACO_JOB_TIMEOUT_FACTOR x its audio length) and the "
                f"worker was stopped, on {attempts} attempt{'s' if attempts != 1 else ''}, so "
                "it was set aside. The file may be damaged or too demanding; check the "
                "service log.",
            )  # fmt: skip
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

    # --- operations: telemetry, probes, windows of history, maintenance -----------------------
    def add_telemetry(
        self, samples: list[dict[str, Any]], gpus: list[dict[str, Any]] | None = None
    ) -> None:
        """Store raw telemetry samples (columns of `telemetry`) and per-GPU readings (columns
        of `gpu_telemetry`) in one transaction; several at once for back-fills and tests."""
        with self._write() as conn:
            for table, rows in (("telemetry", samples), ("gpu_telemetry", gpus or [])):
                for row in rows:
                    columns = [c for c in row if c in _OPS_COLUMNS[table]]
                    conn.execute(
                        f"INSERT INTO {table} ({', '.join(columns)})"
                        f" VALUES ({', '.join('?' * len(columns))})",
                        [row[c] for c in columns],
                    )

    def add_probe(
        self,
        *,
        at: int,
        healthy: bool,
        http_status: int | None,
        status: str | None,
        latency_ms: float | None,
        error: str | None = None,
    ) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO probes (at, healthy, http_status, status, latency_ms, error)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (at, int(healthy), http_status, status, latency_ms, error),
            )

    def telemetry_series(self, start: int, end: int, bucket_ms: int) -> list[dict[str, Any]]:
        """Telemetry in [start, end) folded into buckets of `bucket_ms`: sample-weighted means,
        and the smallest and largest memory values, per bucket, oldest first. Raw samples and
        1-minute means are read alike (each minute row weighs as many samples as it holds)."""
        b = max(1, int(bucket_ms))
        return self._rows(
            f"""SELECT (at / {b}) * {b} AS at, sum(samples) AS samples,
                   {_wmean("cpu_pct")} AS cpu_pct,
                   {_wmean("ram_used_bytes")} AS ram_used_bytes,
                   min(ram_used_bytes) AS ram_min_bytes, max(ram_used_bytes) AS ram_max_bytes,
                   max(ram_total_bytes) AS ram_total_bytes,
                   {_wmean("rss_bytes")} AS rss_bytes, min(rss_bytes) AS rss_min_bytes,
                   max(coalesce(rss_peak_bytes, rss_bytes)) AS rss_peak_bytes,
                   {_wmean("queue_depth")} AS queue_depth, max(queue_depth) AS queue_max,
                   {_wmean("running_jobs")} AS running_jobs,
                   {_wmean("vram_used_bytes")} AS vram_used_bytes,
                   min(vram_used_bytes) AS vram_min_bytes,
                   max(coalesce(vram_peak_bytes, vram_used_bytes)) AS vram_peak_bytes,
                   max(vram_total_bytes) AS vram_total_bytes,
                   {_wmean("gpu_util_pct")} AS gpu_util_pct
               FROM telemetry WHERE at >= ? AND at < ?
               GROUP BY (at / {b}) ORDER BY 1""",
            (int(start), int(end)),
        )

    def gpu_series(self, start: int, end: int, bucket_ms: int) -> list[dict[str, Any]]:
        """Per-GPU telemetry in [start, end) in buckets, like telemetry_series."""
        b = max(1, int(bucket_ms))
        return self._rows(
            f"""SELECT (at / {b}) * {b} AS at, gpu, max(name) AS name,
                   {_wmean("memory_used_bytes")} AS memory_used_bytes,
                   max(coalesce(memory_peak_bytes, memory_used_bytes)) AS memory_peak_bytes,
                   max(memory_total_bytes) AS memory_total_bytes,
                   {_wmean("utilization_pct")} AS utilization_pct,
                   {_wmean("temperature_c")} AS temperature_c, {_wmean("power_w")} AS power_w
               FROM gpu_telemetry WHERE at >= ? AND at < ?
               GROUP BY (at / {b}), gpu ORDER BY 1, 2""",
            (int(start), int(end)),
        )

    def probes_between(self, start: int, end: int) -> list[dict[str, Any]]:
        return self._rows(
            "SELECT * FROM probes WHERE at >= ? AND at < ? ORDER BY at", (int(start), int(end))
        )

    def first_probe_at(self) -> int | None:
        return self.conn.execute("SELECT min(at) FROM probes").fetchone()[0]

    def finished_jobs_between(self, start: int, end: int) -> list[dict[str, Any]]:
        """Jobs that reached a final state in [start, end), oldest first, with what the
        operations pages need (no transcripts)."""
        return self._rows(
            """SELECT id, state, priority, source, original_name, attempts, submitted_at,
                   started_at, finished_at, queue_wait_ms, decode_ms, inference_ms, total_ms,
                   rtf, duration_ms, error, error_class
               FROM jobs WHERE finished_at >= ? AND finished_at < ? ORDER BY finished_at""",
            (int(start), int(end)),
        )

    def events_between(
        self, start: int, end: int, *, kinds: tuple[str, ...] = (), levels: tuple[str, ...] = ()
    ) -> list[dict[str, Any]]:
        """Events in [start, end), newest first; `kinds` are prefixes ("maintenance." matches
        every maintenance task), `levels` exact levels; empty means any."""
        clauses, params = ["at >= ?", "at < ?"], [int(start), int(end)]
        if kinds:
            clauses.append("(" + " OR ".join("kind LIKE ? ESCAPE '\\'" for _ in kinds) + ")")
            params += [k.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
                       for k in kinds]  # fmt: skip
        if levels:
            clauses.append(f"level IN ({', '.join('?' * len(levels))})")
            params += list(levels)
        rows = self._rows(
            f"SELECT * FROM events WHERE {' AND '.join(clauses)} ORDER BY at DESC, id DESC",
            tuple(params),
        )
        for row in rows:
            row["data"] = json.loads(row["data"]) if row["data"] else None
        return rows

    def downsample_telemetry(self, raw_before: int, drop_before: int) -> dict[str, int]:
        """Retention: rows and probes older than `drop_before` are deleted, then raw samples
        older than `raw_before` become one row per minute (the minute's means and peaks).
        `raw_before` is rounded down to a whole minute so no minute is ever folded in two
        parts. One transaction: a reader sees before or after."""
        raw_before = int(raw_before) - int(raw_before) % 60_000
        with self._write() as conn:
            dropped = 0
            for table in ("telemetry", "gpu_telemetry", "probes"):
                dropped += conn.execute(
                    f"DELETE FROM {table} WHERE at < ?", (int(drop_before),)
                ).rowcount
            folded = conn.execute(
                "SELECT count(*) FROM telemetry WHERE resolution_s = 0 AND at < ?", (raw_before,)
            ).fetchone()[0]
            conn.execute(
                """INSERT INTO telemetry (at, resolution_s, samples, cpu_pct, ram_used_bytes,
                       ram_total_bytes, rss_bytes, rss_peak_bytes, queue_depth, running_jobs,
                       vram_used_bytes, vram_peak_bytes, vram_total_bytes, gpu_util_pct)
                   SELECT (at / 60000) * 60000, 60, count(*), avg(cpu_pct),
                       avg(ram_used_bytes), max(ram_total_bytes), avg(rss_bytes),
                       max(coalesce(rss_peak_bytes, rss_bytes)), avg(queue_depth),
                       avg(running_jobs), avg(vram_used_bytes),
                       max(coalesce(vram_peak_bytes, vram_used_bytes)), max(vram_total_bytes),
                       avg(gpu_util_pct)
                   FROM telemetry WHERE resolution_s = 0 AND at < ?
                   GROUP BY at / 60000""",
                (raw_before,),
            )
            conn.execute(
                """INSERT INTO gpu_telemetry (at, resolution_s, samples, gpu, name,
                       memory_used_bytes, memory_peak_bytes, memory_total_bytes,
                       utilization_pct, temperature_c, power_w)
                   SELECT (at / 60000) * 60000, 60, count(*), gpu, max(name),
                       avg(memory_used_bytes), max(coalesce(memory_peak_bytes, memory_used_bytes)),
                       max(memory_total_bytes), avg(utilization_pct), avg(temperature_c),
                       avg(power_w)
                   FROM gpu_telemetry WHERE resolution_s = 0 AND at < ?
                   GROUP BY at / 60000, gpu""",
                (raw_before,),
            )
            for table in ("telemetry", "gpu_telemetry"):
                conn.execute(
                    f"DELETE FROM {table} WHERE resolution_s = 0 AND at < ?", (raw_before,)
                )
        return {"folded": folded, "dropped": dropped}

    def audio_to_purge(self, finished_before: int) -> list[dict[str, Any]]:
        """Audio files (by content hash) whose jobs have all finished before
        `finished_before` and that have not been purged yet: what the retention deletes."""
        return self._rows(
            """SELECT audio_sha256, max(audio_path) AS audio_path,
                   sum(audio_bytes) / count(*) AS audio_bytes
               FROM jobs GROUP BY audio_sha256
               HAVING sum(audio_purged_at IS NULL) > 0
                  AND sum(state IN ('queued', 'running')) = 0
                  AND max(coalesce(finished_at, submitted_at)) < ?""",
            (int(finished_before),),
        )

    def purge_audio(
        self, sha256: str, finished_before: int, remove: Callable[[], bool], now: int
    ) -> bool:
        """Under the write lock (no job can be queued on the file meanwhile), check that the
        file is still unused since `finished_before`, call `remove` (which deletes it and says
        whether it did) and mark its jobs' audio as purged. False when it is in use again."""
        with self._write() as conn:
            row = conn.execute(
                """SELECT sum(state IN ('queued', 'running')),
                       max(coalesce(finished_at, submitted_at))
                   FROM jobs WHERE audio_sha256 = ?""",
                (sha256,),
            ).fetchone()
            if row[0] is None or row[0] or row[1] >= finished_before:
                return False
            if not remove():
                return False
            conn.execute(
                "UPDATE jobs SET audio_purged_at = ? WHERE audio_sha256 = ?"
                " AND audio_purged_at IS NULL",
                (now, sha256),
            )
        return True

    def vacuum(self) -> dict[str, int]:
        """VACUUM (rebuild the file, returning free pages to the disk), ANALYZE (fresh
        statistics for the query planner), then truncate the WAL. Blocks writers meanwhile,
        which is why maintenance runs it only when no job is queued or running."""
        before = self.database_bytes()
        self.conn.execute("VACUUM")
        self.conn.execute("ANALYZE")
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return {"bytes_before": before, "bytes_after": self.database_bytes()}

    def check(self) -> None:
        """A cheap query that fails when the database is unusable (for /health)."""
        self.conn.execute("SELECT count(*) FROM schema_migrations").fetchone()


def open_store(db_path: str | Path, *, busy_timeout_s: float = BUSY_TIMEOUT_MS / 1000) -> Store:
    """Open jobs.db, creating and migrating it as needed."""
    store = Store(db_path, busy_timeout_s=busy_timeout_s)
    store.migrate()
    return store
