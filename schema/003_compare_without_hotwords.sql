-- "Compare without hotwords": a finished job can be run again on the same audio with no
-- hotwords at all. Such a re-run must not get the operator's default hotwords either, so a
-- job says whether the defaults apply (1 for every job before this migration, as before),
-- and remembers the job it is a comparison for (NULL once that job is deleted).
ALTER TABLE jobs ADD COLUMN use_default_hotwords INTEGER NOT NULL DEFAULT 1;
ALTER TABLE jobs ADD COLUMN compare_of INTEGER REFERENCES jobs (id) ON DELETE SET NULL;

CREATE INDEX jobs_compare_of ON jobs (compare_of) WHERE compare_of IS NOT NULL;
