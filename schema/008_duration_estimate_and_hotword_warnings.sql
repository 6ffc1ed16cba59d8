-- duration_estimated: 1 while duration_ms is only the container's guess (an MP3 without a
-- Xing/VBRI frame, raw AAC, AMR: FFmpeg estimates them from the bitrate); the worker replaces
-- it with the decoded length and clears the flag. Such a guess is never a reason to refuse.
ALTER TABLE jobs ADD COLUMN duration_estimated INTEGER NOT NULL DEFAULT 0
    CHECK (duration_estimated IN (0, 1));
-- hotword_warnings: JSON list of sentences naming the hotwords the model was not given (or
-- cannot all attend to), set by the worker with effective_hotwords.
ALTER TABLE jobs ADD COLUMN hotword_warnings TEXT;
