-- jobs.db, version 1. Times are epoch milliseconds (UTC); durations are milliseconds.
-- Applied by engine/store/database.py (Database.migrate) in one transaction together with its
-- schema_migrations row.

CREATE TABLE jobs (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, even after delete
    state               TEXT    NOT NULL DEFAULT 'queued'
                        CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    priority            INTEGER NOT NULL DEFAULT 0,          -- higher runs first
    batch_id            TEXT,
    source              TEXT    NOT NULL DEFAULT 'web',      -- web | api | cli | live
    -- lifecycle
    submitted_at        INTEGER NOT NULL,
    started_at          INTEGER,
    finished_at         INTEGER,
    updated_at          INTEGER NOT NULL,
    stage               TEXT,                                -- decoding | recognising | saving
    cancel_requested    INTEGER NOT NULL DEFAULT 0,
    -- lease: who holds a running job, until when, and how often it was claimed
    lease_owner         TEXT,
    lease_expires_at    INTEGER,
    attempts            INTEGER NOT NULL DEFAULT 0,
    max_attempts        INTEGER NOT NULL DEFAULT 3,
    -- timings (ms)
    queue_wait_ms       INTEGER,
    decode_ms           INTEGER,
    inference_ms        INTEGER,
    total_ms            INTEGER,
    rtf                 REAL,                                -- processing time / audio duration
    -- audio (the file lives at audio_path, relative to the data dir, named by its sha256)
    audio_sha256        TEXT    NOT NULL,
    audio_path          TEXT    NOT NULL,
    audio_bytes         INTEGER NOT NULL,
    original_name       TEXT    NOT NULL,
    container           TEXT,
    codec               TEXT,
    duration_ms         INTEGER,
    sample_rate         INTEGER,
    channels            INTEGER,
    -- hotwords: the job's own list, and the list actually used (job + defaults), JSON arrays
    hotwords            TEXT    NOT NULL DEFAULT '[]',
    effective_hotwords  TEXT,
    -- result
    text                TEXT,
    raw_text            TEXT,
    confidence          REAL CHECK (confidence IS NULL OR (confidence >= 0 AND confidence <= 1)),
    sentence_count      INTEGER,
    model_info          TEXT,                                -- JSON: which models produced it
    error               TEXT,                                -- a sentence for the user
    error_class         TEXT                                 -- the exception class, for grouping
);

-- claim order: highest priority first, then oldest
CREATE INDEX jobs_claim ON jobs (state, priority DESC, id);
CREATE INDEX jobs_submitted ON jobs (submitted_at);
CREATE INDEX jobs_batch ON jobs (batch_id) WHERE batch_id IS NOT NULL;
CREATE INDEX jobs_sha ON jobs (audio_sha256);
CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE state = 'running';

CREATE TABLE sentences (
    job_id      INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    idx         INTEGER NOT NULL,
    start_ms    INTEGER NOT NULL,
    end_ms      INTEGER NOT NULL,
    text        TEXT    NOT NULL,
    PRIMARY KEY (job_id, idx)
) WITHOUT ROWID;

-- Full-text index, one row per sentence so a hit knows its time. Chinese has no spaces,
-- so `body` holds the sentence with a space between CJK characters (see store._fts_body);
-- queries are rewritten the same way and matched as phrases.
CREATE VIRTUAL TABLE transcript_fts USING fts5 (
    body,
    job_id UNINDEXED,
    idx UNINDEXED,
    start_ms UNINDEXED,
    tokenize = 'unicode61'
);

CREATE TABLE workers (
    id              TEXT PRIMARY KEY,
    pid             INTEGER NOT NULL,
    hostname        TEXT    NOT NULL,
    started_at      INTEGER NOT NULL,
    heartbeat_at    INTEGER NOT NULL,
    state           TEXT    NOT NULL
                    CHECK (state IN ('starting', 'loading', 'ready', 'busy', 'model_error',
                                     'stopping', 'stopped')),
    model_loaded    INTEGER NOT NULL DEFAULT 0,
    model_error     TEXT,
    current_job_id  INTEGER,
    jobs_done       INTEGER NOT NULL DEFAULT 0,
    jobs_failed     INTEGER NOT NULL DEFAULT 0,
    info            TEXT                                  -- JSON: device, models, versions
);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    level       TEXT    NOT NULL CHECK (level IN ('info', 'warning', 'error')),
    kind        TEXT    NOT NULL,                         -- e.g. worker.start, job.poison
    message     TEXT    NOT NULL,
    job_id      INTEGER,
    data        TEXT
);
CREATE INDEX events_at ON events (at);
