"""The job store: the only package that speaks SQL.

Split by concern (every public name is importable from `engine.store`):

- `database`: connections, write transactions, migrations, reading one job (`Database`,
  `connect`, `storage_error`, `now_ms`);
- `job_queue`: the worker's side: claim, lease, finish, recover, cancel, workers' heartbeats
  (`QueueSide`, `JobResult`, `Recovery`);
- `operations`: events, telemetry, probes, history windows, retention, size and vacuum
  (`OperationsSide`);
- `search_index`: the full-text search rows and queries (`fts_body`, `fts_query`);
- `callback_deliveries`: job-completion callbacks due and their attempts (`CallbackSide`);
- `jobstore`: submitting and reading jobs, filters, search, settings, and `Store`, which
  combines them all.
"""

from engine.store.callback_deliveries import CallbackSide, DueCallback
from engine.store.database import (
    BUSY_TIMEOUT_MS,
    SCHEMA_DIR,
    Database,
    connect,
    now_ms,
    storage_error,
)
from engine.store.job_queue import JobResult, QueueSide, Recovery
from engine.store.jobstore import JobFilter, NewJob, SearchHit, Store, open_store
from engine.store.operations import OperationsSide
from engine.store.search_index import FTS_ROWS_PER_JOB, fts_body, fts_query

__all__ = [
    "BUSY_TIMEOUT_MS",
    "FTS_ROWS_PER_JOB",
    "SCHEMA_DIR",
    "CallbackSide",
    "Database",
    "DueCallback",
    "JobFilter",
    "JobResult",
    "NewJob",
    "OperationsSide",
    "QueueSide",
    "Recovery",
    "SearchHit",
    "Store",
    "connect",
    "fts_body",
    "fts_query",
    "now_ms",
    "open_store",
    "storage_error",
]
