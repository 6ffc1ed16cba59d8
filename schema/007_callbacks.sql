-- Job-completion callbacks (engine/callbacks.py): a job submitted with a callback URL gets
-- one row here; when the job reaches a final state the worker POSTs the job's JSON to the
-- URL, retrying with growing delays, and records the outcome. Times are epoch ms (UTC).
CREATE TABLE callbacks (
    job_id        INTEGER PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    url           TEXT    NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_at       INTEGER,           -- no attempt before this (NULL: as soon as the job is final)
    delivered_at  INTEGER,           -- a 2xx answer was received
    gave_up_at    INTEGER,           -- every attempt failed
    last_status   INTEGER,           -- HTTP status of the last attempt (NULL: no answer)
    last_error    TEXT               -- why the last attempt failed
);
-- only undelivered callbacks are ever looked up by the worker's delivery run
CREATE INDEX callbacks_pending ON callbacks (next_at) WHERE delivered_at IS NULL
    AND gave_up_at IS NULL;
