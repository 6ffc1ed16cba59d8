-- Operations data: the worker's telemetry samples, its /health self-probes, and the audio
-- retention mark. Times are epoch ms (UTC). Written by engine/ops/telemetry.py and
-- engine/ops/maintenance.py through the store (engine/store/operations.py).

-- One row per sample (resolution_s = 0, every SEACO_TELEMETRY_S seconds), or, after
-- SEACO_TELEMETRY_RAW_DAYS, one row per minute holding the means of that minute's samples
-- (resolution_s = 60, `at` = the minute's start, `samples` = how many were folded in).
-- The *_peak columns keep the largest value folded in, so a VRAM peak survives downsampling.
CREATE TABLE telemetry (
    at                  INTEGER NOT NULL,
    resolution_s        INTEGER NOT NULL DEFAULT 0 CHECK (resolution_s IN (0, 60)),
    samples             INTEGER NOT NULL DEFAULT 1,
    cpu_pct             REAL,                     -- whole machine, all cores = 100
    ram_used_bytes      INTEGER,                  -- whole machine
    ram_total_bytes     INTEGER,
    rss_bytes           INTEGER,                  -- the worker process
    rss_peak_bytes      INTEGER,
    queue_depth         INTEGER,
    running_jobs        INTEGER,
    vram_used_bytes     INTEGER,                  -- all GPUs together; NULL in CPU mode
    vram_peak_bytes     INTEGER,
    vram_total_bytes    INTEGER,
    gpu_util_pct        REAL                      -- mean over GPUs
);
CREATE INDEX telemetry_at ON telemetry (resolution_s, at);

-- Per GPU, the same two resolutions.
CREATE TABLE gpu_telemetry (
    at                  INTEGER NOT NULL,
    resolution_s        INTEGER NOT NULL DEFAULT 0 CHECK (resolution_s IN (0, 60)),
    samples             INTEGER NOT NULL DEFAULT 1,
    gpu                 INTEGER NOT NULL,
    name                TEXT,
    memory_used_bytes   INTEGER,
    memory_peak_bytes   INTEGER,
    memory_total_bytes  INTEGER,
    utilization_pct     REAL,
    temperature_c       REAL,
    power_w             REAL
);
CREATE INDEX gpu_telemetry_at ON gpu_telemetry (resolution_s, at);

-- GET /health as a client sees it: healthy = HTTP 200 with status "ok".
CREATE TABLE probes (
    at                  INTEGER NOT NULL,
    healthy             INTEGER NOT NULL CHECK (healthy IN (0, 1)),
    http_status         INTEGER,                  -- NULL when nothing answered
    status              TEXT,                     -- ok | degraded | down, from the body
    latency_ms          REAL,
    error               TEXT                      -- why it failed (refused, timeout, reasons)
);
CREATE INDEX probes_at ON probes (at);

-- Audio retention (SEACO_AUDIO_RETENTION_DAYS) deletes a finished job's audio file and
-- keeps its transcript; this says when.
ALTER TABLE jobs ADD COLUMN audio_purged_at INTEGER;

-- The operations pages read finished jobs by time window.
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
