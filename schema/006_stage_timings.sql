-- Per-stage recognition times of a done job (ms): wall time inside FSMN-VAD, SeACo-Paraformer
-- and CT-Transformer punctuation (engine/recognition/model_hooks.py times each model's `inference`). Together
-- they are most of inference_ms; the rest is funasr's glue (slicing, timestamp merging).
-- NULL for jobs finished before this migration and for failed jobs.
ALTER TABLE jobs ADD COLUMN vad_ms INTEGER;
ALTER TABLE jobs ADD COLUMN asr_ms INTEGER;
ALTER TABLE jobs ADD COLUMN punc_ms INTEGER;
