"""The job as the rest of the service sees it: its states and a typed row."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class JobState(str, Enum):
    """Stored as TEXT with a CHECK constraint (schema/001_initial.sql)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


PRIORITY_BATCH = 0
PRIORITY_NORMAL = 10
PRIORITY_LIVE = 20


@dataclass(frozen=True)
class Word:
    """One timed unit of a sentence: a Chinese character or a Latin word (never punctuation),
    with the [start_ms, end_ms] funasr's CIF predictor gave it, in ms from the audio's start."""

    text: str
    start_ms: int
    end_ms: int

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "start_ms": self.start_ms, "end_ms": self.end_ms}


@dataclass(frozen=True)
class Sentence:
    """A punctuated sentence and its times (ms from the audio's start). `words` are its timed
    units in order (engine/recognition/sentences.py); empty for jobs finished before word
    timestamps were stored (schema 9), and when funasr's timestamps did not pair with the
    text."""

    text: str
    start_ms: int
    end_ms: int
    words: tuple[Word, ...] = ()

    def to_dict(self, *, words: bool = True) -> dict[str, Any]:
        """`{"text", "start_ms", "end_ms", "words": [{"text", "start_ms", "end_ms"}, ...]}`;
        without the `words` key when `words` is False."""
        out: dict[str, Any] = {"text": self.text, "start_ms": self.start_ms, "end_ms": self.end_ms}
        if words:
            out["words"] = [w.to_dict() for w in self.words]
        return out


@dataclass(frozen=True)
class Job:
    id: int
    state: JobState
    priority: int
    batch_id: str | None
    source: str
    submitted_at: int
    started_at: int | None
    finished_at: int | None
    updated_at: int
    stage: str | None
    cancel_requested: bool
    lease_owner: str | None
    lease_expires_at: int | None
    attempts: int
    max_attempts: int
    queue_wait_ms: int | None
    decode_ms: int | None
    inference_ms: int | None
    total_ms: int | None
    rtf: float | None
    audio_sha256: str
    audio_path: str
    audio_bytes: int
    original_name: str
    container: str | None
    codec: str | None
    duration_ms: int | None
    sample_rate: int | None
    channels: int | None
    hotwords: list[str]
    effective_hotwords: list[str] | None
    text: str | None
    raw_text: str | None
    confidence: float | None
    sentence_count: int | None
    model_info: dict[str, Any] | None
    error: str | None
    error_class: str | None
    sentences: list[Sentence] = field(default_factory=list)
    # schema 3: False for a "compare without hotwords" re-run (no operator defaults either);
    # compare_of is the job it re-runs
    use_default_hotwords: bool = True
    compare_of: int | None = None
    # schema 6: wall ms inside VAD, ASR and punctuation (done jobs only)
    vad_ms: int | None = None
    asr_ms: int | None = None
    punc_ms: int | None = None
    # schema 8: duration_ms is the container's bitrate guess until the worker has decoded the
    # audio; hotword_warnings names the hotwords the model was not given, and why
    duration_estimated: bool = False
    hotword_warnings: list[str] | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any], sentences: list[Sentence] | None = None) -> Job:
        # Only known columns: a newer schema may carry columns this code does not use yet.
        values = {k: v for k, v in row.items() if k in cls.__dataclass_fields__}
        values["state"] = JobState(values["state"])
        values["cancel_requested"] = bool(values["cancel_requested"])
        values["use_default_hotwords"] = bool(values.get("use_default_hotwords", 1))
        values["duration_estimated"] = bool(values.get("duration_estimated", 0))
        values["hotwords"] = json.loads(values["hotwords"] or "[]")
        for key in ("effective_hotwords", "model_info", "hotword_warnings"):
            if key in values:
                values[key] = json.loads(values[key]) if values[key] else None
        return cls(**values, sentences=sentences or [])

    @property
    def audio_seconds(self) -> float | None:
        return None if self.duration_ms is None else self.duration_ms / 1000

    def to_dict(self, *, words: bool = True) -> dict[str, Any]:
        """JSON-ready form (the API and exports use it); each sentence with its `words` unless
        `words` is False (`Sentence.to_dict`)."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "sentences"}
        out["state"] = self.state.value
        out["sentences"] = [s.to_dict(words=words) for s in self.sentences]
        return out


# How far a running job is, by its stage, for the API's `progress` (final jobs: 1.0).
STAGE_PROGRESS = {"decoding": 0.1, "recognising": 0.5, "saving": 0.95}
_INTERNAL_FIELDS = ("lease_owner", "lease_expires_at", "audio_path", "model_info")


def job_document(
    job: Job, queue_position: int | None = None, *, full: bool = True, words: bool = False
) -> dict:
    """A job as the API shows it (GET /api/v1/jobs/{id}, and the body of its callback): the
    stored fields without the internal ones, plus queue position, progress and links.

    `full=False` leaves out `sentences` and `raw_text` (lists); `words=True` adds each
    sentence's `words` (`[{"text", "start_ms", "end_ms"}]`, empty for jobs done before word
    timestamps were stored)."""
    data = job.to_dict(words=full and words)
    for internal in _INTERNAL_FIELDS:
        data.pop(internal)
    if not full:
        for heavy in ("sentences", "raw_text"):
            data.pop(heavy)
    data["queue_position"] = queue_position if job.state is JobState.QUEUED else None
    data["progress"] = 1.0 if job.state.is_final else STAGE_PROGRESS.get(job.stage or "", 0.0)
    data["links"] = {
        "self": f"/api/v1/jobs/{job.id}",
        "transcript": f"/api/v1/jobs/{job.id}/transcript?format=txt",
    }
    return data
