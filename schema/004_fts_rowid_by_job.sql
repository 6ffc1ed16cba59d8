-- Give every transcript_fts row the rowid job_id * 2^20 + sentence index.
-- job_id is an UNINDEXED column of the FTS table, so "DELETE ... WHERE job_id = ?" (run on
-- every completion and every delete) scanned the whole index: quadratic as jobs accumulate.
-- A rowid range per job makes that a range delete, and rowid order is newest job first,
-- which is the order search returns. 2^20 sentences per job is ~1 month of speech.
CREATE VIRTUAL TABLE transcript_fts_by_job USING fts5 (
    body,
    job_id UNINDEXED,
    idx UNINDEXED,
    start_ms UNINDEXED,
    tokenize = 'unicode61'
);
INSERT INTO transcript_fts_by_job (rowid, body, job_id, idx, start_ms)
    SELECT job_id * 1048576 + idx, body, job_id, idx, start_ms FROM transcript_fts;
DROP TABLE transcript_fts;
ALTER TABLE transcript_fts_by_job RENAME TO transcript_fts;
