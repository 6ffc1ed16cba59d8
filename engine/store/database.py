"""The store's connection layer: how jobs.db is opened, written and migrated.

Every other part of the store (engine/store/job_queue.py, engine/store/operations.py,
engine/store/jobstore.py) builds on the `Database` base class here, so the rules that keep web and
worker processes safe on one file live in one place: every connection runs in WAL mode with a long
busy timeout, and every write is one `BEGIN IMMEDIATE` transaction whose machine-made failures (lock
held too long, disk full) come out as SeacoErrors. Any other `sqlite3.Error` that leaves a public
method of the store (a failed read, a damaged or unreadable file, a broken migration) comes out as
`DatabaseUnusableError`, with SQLite's own error as its cause, so no caller outside the store ever
has to know sqlite3.
"""

from __future__ import annotations

import functools
import inspect
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from engine.app_files import SCHEMA_DIR
from engine.errors import (
    DatabaseBusyError,
    DatabaseError,
    DatabaseUnusableError,
    JobNotFoundError,
    StorageFullError,
)
from engine.jobs import Job, Sentence, Word

BUSY_TIMEOUT_MS = 30_000


def now_ms() -> int:
    return int(time.time() * 1000)


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


def _sqlite_errors_as_ours(method: Callable) -> Callable:
    """`method`, with any sqlite3.Error it lets out raised as DatabaseUnusableError."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except sqlite3.Error as exc:
            raise DatabaseUnusableError(f"The job database could not be used: {exc}.") from exc

    return wrapper


def _translate_sqlite_errors(cls: type) -> None:
    for name, attr in list(vars(cls).items()):
        if not name.startswith("_") and inspect.isfunction(attr):
            setattr(cls, name, _sqlite_errors_as_ours(attr))


class Database:
    """A handle on jobs.db: one connection per thread, write transactions, migrations.

    Every public method of it and its subclasses raises SeacoErrors, never sqlite3's (see
    the module docstring)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _translate_sqlite_errors(cls)

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

    # --- read one job (the queue side returns the job it claimed or cancelled) -------------
    def get(self, job_id: int) -> Job:
        rows = self._rows("SELECT * FROM jobs WHERE id = ?", (job_id,))
        if not rows:
            raise JobNotFoundError(f"There is no job {job_id}.")
        sentences = [
            Sentence(
                text=r["text"],
                start_ms=r["start_ms"],
                end_ms=r["end_ms"],
                words=words_from_json(r.get("words")),  # no column before schema 9
            )
            for r in self._rows("SELECT * FROM sentences WHERE job_id = ? ORDER BY idx", (job_id,))
        ]
        return Job.from_row(rows[0], sentences)


def words_to_json(words: tuple[Word, ...]) -> str | None:
    """A sentence's words as stored in `sentences.words` (schema 9): a compact JSON array of
    [text, start_ms, end_ms] triples; None (SQL NULL) for a sentence without words."""
    if not words:
        return None
    triples = [[w.text, w.start_ms, w.end_ms] for w in words]
    return json.dumps(triples, ensure_ascii=False, separators=(",", ":"))


def words_from_json(stored: str | None) -> tuple[Word, ...]:
    """The words of `sentences.words`; () for NULL (a sentence stored before schema 9)."""
    if not stored:
        return ()
    return tuple(Word(str(text), int(start), int(end)) for text, start, end in json.loads(stored))


_translate_sqlite_errors(Database)
