-- Word timestamps: each sentence's timed units (a Chinese character or a Latin word, from
-- funasr's per-token CIF timestamps; engine/recognition/sentences.py), as a JSON array of
-- [text, start_ms, end_ms] triples in order, e.g. [["今",120,300],["天",300,480]]. Times are
-- ms from the audio's start. NULL for sentences stored before this migration (their jobs
-- answer an empty `words` list).
ALTER TABLE sentences ADD COLUMN words TEXT;
