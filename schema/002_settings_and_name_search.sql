-- Operator-editable settings (the default hotword list first), kept in the store so every
-- process sees the same value; the environment only gives the initial default.
CREATE TABLE settings_kv (
    key         TEXT PRIMARY KEY,
    value       TEXT    NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- The Jobs page filters by state and time and pages newest first.
CREATE INDEX jobs_state_id ON jobs (state, id DESC);
