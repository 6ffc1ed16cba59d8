"""Plain functions that turn store data into what the pages show (no Streamlit here, so
tests can call them directly and pages stay thin)."""

from __future__ import annotations

import re
from typing import Any

from engine.config import PROD_ASR_MODEL, Settings
from engine.export import format_ms
from engine.hotwords import DEFAULT_HOTWORDS_KEY, parse_hotwords
from engine.jobs import Job, JobState
from engine.store import Store


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
            "job": job_link(j.id),
            "file": j.original_name,
            "state": f"{STATE_ICON[j.state.value]} {j.state.value}",
            "progress": job_progress(j),
            "audio": audio_length(j),
            "processing": format_ms(j.total_ms),
            "result": (j.error or "") if j.state is JobState.FAILED else (j.text or "")[:80],
        }
        for j in sorted(jobs, key=lambda j: j.id)
    ]


def batch_unfinished(counts: dict[str, int]) -> bool:
    """Whether a batch (its counts by state) still has queued or running jobs."""
    return bool(counts.get("queued") or counts.get("running"))


def batch_summary(counts: dict[str, int]) -> tuple[float, str]:
    """(fraction finished, a sentence) from the batch's counts by state."""
    total = sum(counts.values())
    final = counts["done"] + counts["failed"] + counts["cancelled"]
    parts = [f"{n} {state}" for state, n in counts.items() if n]
    fraction = final / total if total else 0.0
    return fraction, f"{final} of {total} finished" + (f" ({', '.join(parts)})" if parts else "")


def job_link(job_id: int) -> str:
    """The job page's address relative to the dashboard's (so it also works behind a proxy
    that serves the dashboard under a path): 'jobs?job=12'."""
    return f"jobs?job={int(job_id)}"


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def escape_markdown(text: str) -> str:
    """Transcripts and file names are user data: nothing in them may become Markdown, HTML
    or LaTeX on the page."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def job_heading(job: Job) -> str:
    """Markdown for a job's heading that links to its page on the Jobs page (the file name
    is user data, so escaped): '[Job 12: a\\.wav](jobs?job=12)'."""
    return f"[Job {job.id}: {escape_markdown(job.original_name)}]({job_link(job.id)})"


# Hotword entries are split where people write lists (commas, 、, semicolons, new lines);
# within an entry a space also separates words, because the model takes hotwords as one
# space-separated string and cannot be given a phrase with a space in it.
_ENTRY_SEPARATORS = re.compile(r"[,，、;；\r\n]+")
_CJK = re.compile(r"^[\u3400-\u9fff\uf900-\ufaff]+$")


def hotword_split_notes(text: str | None) -> list[str]:
    """What typing `text` as hotwords did that the typist may not have meant: an entry with
    a space in it (between commas or lines) became several hotwords. Said when one of the
    pieces is a single character ('开 会' -> 开, 会: a phrase torn apart, and one-character
    hotwords rarely help) or when the text also separates entries with commas or lines
    (so the space was evidently not meant as a separator). The words are kept as split,
    and each note names the pieces and how to keep a Chinese phrase whole."""
    if not text:
        return []
    entries = [e.strip() for e in _ENTRY_SEPARATORS.split(text) if e.strip()]
    listed = len(entries) > 1
    notes = []
    for entry in entries:
        pieces = parse_hotwords(entry)
        if len(pieces) < 2 or not (listed or any(len(p) == 1 for p in pieces)):
            continue
        head = f"“{entry}” became {len(pieces)} hotwords: {', '.join(pieces)}. "
        if all(_CJK.match(p) for p in pieces):
            notes.append(
                head + f"A space separates hotwords; write {''.join(pieces)} to keep it one."
            )
        else:
            notes.append(head + "A space separates hotwords: the model cannot take a phrase.")
    return notes


def hotwords_source_line(store: Store, settings: Settings) -> str:
    """Where the default hotword list in force comes from: the Hotwords page once anyone
    has saved it there (kept in jobs.db), else SEACO_HOTWORDS."""
    if store.get_setting(DEFAULT_HOTWORDS_KEY) is not None:
        return (
            "Edited here (kept in jobs.db; SEACO_HOTWORDS no longer applies); the next job uses it."
        )
    return f"From SEACO_HOTWORDS ({settings.hotwords or 'empty'}) until edited here."
