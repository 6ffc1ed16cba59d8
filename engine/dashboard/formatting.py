"""Plain functions that turn store data into what the pages show (no Streamlit here, so
tests can call them directly and pages stay thin)."""

from __future__ import annotations

from typing import Any

from engine.config import PROD_ASR_MODEL
from engine.export import format_ms
from engine.jobs import Job, JobState


def audio_length(job: Job) -> str:
    """The job's audio length for display; a length the upload's header only guessed (see
    audio.AudioInfo.duration_estimated) is shown as such until the worker has decoded it:
    '≈ 43.67 s (estimate)'."""
    if job.duration_estimated and job.duration_ms is not None:
        return f"≈ {format_ms(job.duration_ms)} (estimate)"
    return format_ms(job.duration_ms)


MODEL_FIX_HINT = """\
The worker could not load the speech models. Either:

- give the machine network access to ModelScope once, so the default models
  (`{prod}` and friends) download on first start, or
- download the three models on a connected machine and point the settings at the directories:
  `SEACO_ASR_MODEL=/models/seaco-paraformer`, `SEACO_VAD_MODEL=/models/fsmn-vad`,
  `SEACO_PUNC_MODEL=/models/ct-punc` (in `.env`), then restart with `./run.sh`, or
- for a trial with **random weights** (garbage text, real compute):
  `seaco models build-test ./models` and point the settings at `./models/seaco-asr`,
  `./models/fsmn-vad` and `./models/ct-punc`.
"""


def model_fix_hint() -> str:
    return MODEL_FIX_HINT.format(prod=PROD_ASR_MODEL)


def timestamp(ms: int) -> str:
    """Milliseconds into the audio -> 'MM:SS.mmm' (or 'H:MM:SS.mmm')."""
    seconds, millis = divmod(max(0, ms), 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{seconds:02d}.{millis:03d}"
    return f"{minutes:02d}:{seconds:02d}.{millis:03d}"


def job_status_line(job: Job, position: int | None) -> str:
    if job.state is JobState.QUEUED:
        where = f"position {position} in the queue" if position else "in the queue"
        return f"Queued: {where}."
    if job.state is JobState.RUNNING:
        stage = {"decoding": "decoding audio", "recognising": "recognising speech"}.get(
            job.stage or "", job.stage or "working"
        )
        return f"Running: {stage} (attempt {job.attempts})."
    if job.state is JobState.DONE:
        return f"Done in {format_ms(job.total_ms)}."
    if job.state is JobState.FAILED:
        return f"Failed: {job.error}"
    return "Cancelled."


def sentence_rows(job: Job) -> list[dict[str, Any]]:
    return [
        {"start": timestamp(s.start_ms), "end": timestamp(s.end_ms), "text": s.text}
        for s in job.sentences
    ]


def job_metrics(job: Job) -> dict[str, str]:
    """The numbers shown under a finished transcript."""
    confidence = "–" if job.confidence is None else f"{job.confidence:.2f}"
    rtf = "–" if job.rtf is None else f"{job.rtf:.3f}"
    return {
        "Audio": audio_length(job),
        "Processing": format_ms(job.total_ms),
        "Real-time factor": rtf,
        "Confidence": confidence,
        "Queue wait": format_ms(job.queue_wait_ms),
    }


STATE_ICON = {"queued": "⏳", "running": "⚙️", "done": "✅", "failed": "❌", "cancelled": "🚫"}
PROGRESS = {"decoding": 0.1, "recognising": 0.5, "saving": 0.95}


def job_progress(job: Job) -> float:
    """0..1 for a progress column: by stage while running, 1 once final."""
    if job.state.is_final:
        return 1.0
    return PROGRESS.get(job.stage or "", 0.0) if job.state is JobState.RUNNING else 0.0


def batch_rows(jobs: list[Job]) -> list[dict[str, Any]]:
    """One row per file for the Batch page's live table (oldest first)."""
    return [
        {
            "job": j.id,
            "file": j.original_name,
            "state": f"{STATE_ICON[j.state.value]} {j.state.value}",
            "progress": job_progress(j),
            "audio": audio_length(j),
            "processing": format_ms(j.total_ms),
            "result": (j.error or "") if j.state is JobState.FAILED else (j.text or "")[:80],
        }
        for j in sorted(jobs, key=lambda j: j.id)
    ]


def batch_summary(counts: dict[str, int]) -> tuple[float, str]:
    """(fraction finished, a sentence) from the batch's counts by state."""
    total = sum(counts.values())
    final = counts["done"] + counts["failed"] + counts["cancelled"]
    parts = [f"{n} {state}" for state, n in counts.items() if n]
    fraction = final / total if total else 0.0
    return fraction, f"{final} of {total} finished" + (f" ({', '.join(parts)})" if parts else "")
