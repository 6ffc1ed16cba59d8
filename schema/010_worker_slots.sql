-- Several workers on one machine (SEACO_WORKERS): every worker process belongs to a slot
-- (w0, w1, ...) of its host, with the torch device and thread count it runs with, and a job
-- remembers which worker (host and slot) claimed its latest attempt, for the per-worker
-- views and metrics. Rows written before have slot 0 (there was one worker) and no device.
ALTER TABLE workers ADD COLUMN slot INTEGER NOT NULL DEFAULT 0;
ALTER TABLE workers ADD COLUMN device TEXT;
ALTER TABLE workers ADD COLUMN threads INTEGER;
CREATE INDEX workers_slot ON workers (hostname, slot, started_at);

ALTER TABLE jobs ADD COLUMN worker_host TEXT;
ALTER TABLE jobs ADD COLUMN worker_slot INTEGER;
