"""What the Jobs page needs from the store, as plain functions: filters from widget values,
table rows, search results as safe Markdown, the job a link points at, and the actions
(delete takes the audio file with it). No Streamlit here, so tests call these directly."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine import accuracy
from engine.callbacks import callback_view
from engine.config import Settings
from engine.dashboard import formatting
from engine.errors import JobNotFoundError
from engine.jobs import Job, JobState
from engine.store import JobFilter, SearchHit, Store

PAGE_SIZES = (25, 50, 100, 200)
ANY_STATE = "any"
STATE_CHOICES = (ANY_STATE, *(s.value for s in JobState))
SEARCH_LIMIT = 50

# Containers a browser's <audio> element plays; anything else (AMR above all) is decoded to
# a 16 kHz WAV for the player instead.
PLAYABLE_MIME = {  # keyed by audio.probe's container name
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
    "flac": "audio/flac",
    "mp4": "audio/mp4",
    "aac": "audio/aac",
    "matroska": "audio/webm",
}
PLAYER_MAX_BYTES = 200 * 1024 * 1024  # larger files are offered as a download instead


# --- time -----------------------------------------------------------------------------------
def zone(name: str | None) -> dt.tzinfo:
    """The viewer's time zone (Streamlit reports the browser's), else the server's."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return dt.datetime.now().astimezone().tzinfo or dt.timezone.utc


def format_time(epoch_ms: int | None, tz: dt.tzinfo) -> str:
    if epoch_ms is None:
        return "–"
    return dt.datetime.fromtimestamp(epoch_ms / 1000, tz).strftime("%Y-%m-%d %H:%M:%S")


def day_range_ms(
    days: tuple[dt.date, ...] | list[dt.date], tz: dt.tzinfo
) -> tuple[int | None, int | None]:
    """A date_input range (0, 1 or 2 days, both inclusive) as [from, to) epoch ms."""
    if not days:
        return None, None
    first, last = days[0], days[-1]
    if last < first:
        first, last = last, first
    start = dt.datetime.combine(first, dt.time(), tz)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tz)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


# --- browsing -------------------------------------------------------------------------------
def job_filter(
    *,
    state: str = ANY_STATE,
    days: tuple[dt.date, ...] | list[dt.date] = (),
    batch_id: str = "",
    name: str = "",
    tz: dt.tzinfo = dt.timezone.utc,
) -> JobFilter:
    """The filter widgets' values as a store filter; blank means any."""
    submitted_from, submitted_to = day_range_ms(days, tz)
    return JobFilter(
        state=None if state == ANY_STATE else JobState(state),
        batch_id=batch_id.strip() or None,
        submitted_from=submitted_from,
        submitted_to=submitted_to,
        name_contains=name.strip() or None,
    )


def page_count(total: int, per_page: int) -> int:
    return max(1, math.ceil(total / max(1, per_page)))


MISSING = "–"  # how the pages show a value that does not exist (never "None")
ROW_HEIGHT_PX = 35  # st.dataframe's default row height


def has_unfinished(store: Store) -> bool:
    """Whether any job is queued or running, i.e. whether a list of jobs can still change
    by itself (the Jobs page then refreshes it)."""
    counts = store.counts_by_state()
    return bool(counts.get(JobState.QUEUED.value) or counts.get(JobState.RUNNING.value))


def clicked_job(jobs: list[Job], cells: list[Any]) -> int | None:
    """The job whose row holds the clicked cell (st.dataframe's selection.cells: (row,
    column) pairs, row positions in `jobs` as given to the table), or None."""
    for cell in cells:
        row = cell[0] if isinstance(cell, (tuple, list)) else cell.get("row")
        if isinstance(row, int) and 0 <= row < len(jobs):
            return jobs[row].id
    return None


def job_rows(jobs: list[Job], tz: dt.tzinfo) -> list[dict[str, Any]]:
    """One row per job for the table, newest first as the store returns them. A value the
    job does not have (confidence before it is done, batch) is None, which the table shows
    as MISSING."""
    return [
        {
            "job": j.id,
            "submitted": format_time(j.submitted_at, tz),
            "file": j.original_name,
            "state": f"{formatting.STATE_ICON[j.state.value]} {j.state.value}",
            "audio": formatting.audio_length(j),
            "processing": formatting.format_ms(j.total_ms),
            "confidence": j.confidence,
            "batch": j.batch_id,
            "transcript": _preview(j),
        }
        for j in jobs
    ]


def _preview(job: Job) -> str:
    if job.state is JobState.FAILED:
        return job.error or ""
    return (job.text or "")[:120]


# --- links ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class JobLink:
    """What `?job=12&t=3400` in the address asks for."""

    job_id: int | None = None
    t_ms: int = 0
    problem: str | None = None  # a message when the address was not understood


def read_link(params: Mapping[str, str]) -> JobLink:
    """Parse the page's query parameters; a hand-edited address gets a message, not a crash."""
    raw_job, raw_t = params.get("job"), params.get("t")
    if raw_job is None:
        return JobLink()
    if not re.fullmatch(r"\d{1,18}", str(raw_job).strip()):
        return JobLink(problem=f"“{str(raw_job)[:40]}” is not a job number.")
    t_ms = 0
    if raw_t is not None:
        if not re.fullmatch(r"\d{1,12}", str(raw_t).strip()):
            return JobLink(job_id=int(raw_job), problem="The time in the address was ignored.")
        t_ms = int(raw_t)
    return JobLink(job_id=int(raw_job), t_ms=t_ms)


def link_params(job_id: int, t_ms: int | None = None) -> dict[str, str]:
    return {"job": str(job_id)} if t_ms is None else {"job": str(job_id), "t": str(t_ms)}


@dataclass(frozen=True)
class BatchLink:
    """What `?batch=3f2a...` in the Batch page's address asks for."""

    batch_id: str | None = None
    problem: str | None = None


_BATCH_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")


def read_batch_link(params: Mapping[str, str]) -> BatchLink:
    """The batch named in the address; a hand-edited one gets a message, not a crash."""
    raw = params.get("batch")
    if raw is None:
        return BatchLink()
    if not _BATCH_ID.fullmatch(str(raw).strip()):
        return BatchLink(problem=f"“{str(raw)[:40]}” is not a batch id.")
    return BatchLink(batch_id=str(raw).strip())


# --- search ---------------------------------------------------------------------------------
escape_markdown = formatting.escape_markdown


def snippet_markdown(snippet: str) -> str:
    """The store marks matches with 【 】; show them bold, everything else escaped."""
    parts = re.split(r"【(.*?)】", snippet)
    return "".join(
        f"**{escape_markdown(p)}**" if i % 2 and p else escape_markdown(p)
        for i, p in enumerate(parts)
    )


@dataclass(frozen=True)
class SearchOutcome:
    hits: list[SearchHit]
    message: str | None  # shown instead of (or above) the hits


def search(store: Store, query: str, limit: int = SEARCH_LIMIT) -> SearchOutcome:
    """Run what the user typed. Any text is a valid query (the store quotes every term), so
    the only messages are about empty queries and no matches."""
    query = query.strip()
    if not query:
        return SearchOutcome([], None)
    hits = store.search(query, limit=limit)
    if hits:
        more = f" (showing the first {limit})" if len(hits) == limit else ""
        return SearchOutcome(hits, f"{len(hits)} matching sentences{more}.")
    if not re.search(r"\w", query):
        return SearchOutcome([], "Type a word to search for: punctuation alone matches nothing.")
    return SearchOutcome([], f"No transcript contains “{query[:80]}”.")


# --- one job --------------------------------------------------------------------------------
def current_sentence(job: Job, t_ms: int) -> int | None:
    """Index of the sentence being spoken at t_ms (or the next one), for highlighting."""
    for i, s in enumerate(job.sentences):
        if t_ms < s.end_ms:
            return i
    return None


def sentence_table(job: Job) -> list[dict[str, Any]]:
    return [
        {
            "#": i + 1,
            "start": formatting.timestamp(s.start_ms),
            "end": formatting.timestamp(s.end_ms),
            "text": s.text,
        }
        for i, s in enumerate(job.sentences)
    ]


def timing_rows(job: Job, tz: dt.tzinfo) -> list[dict[str, str]]:
    rows = [
        ("Submitted", format_time(job.submitted_at, tz)),
        ("Started", format_time(job.started_at, tz)),
        ("Finished", format_time(job.finished_at, tz)),
        ("Queue wait", formatting.format_ms(job.queue_wait_ms)),
        ("Decoding", formatting.format_ms(job.decode_ms)),
        ("Recognition", formatting.format_ms(job.inference_ms)),
        ("Total processing", formatting.format_ms(job.total_ms)),
        ("Real-time factor", "–" if job.rtf is None else f"{job.rtf:.3f}"),
        ("Attempts", f"{job.attempts} of {job.max_attempts}"),
    ]
    return [{"timing": k, "value": v} for k, v in rows]


def audio_facts(job: Job) -> str:
    """'mp4 · aac · 3.00 s · 16000 Hz · 1 ch · 0.1 MB'; a codec named like its container
    (mp3 in mp3, flac in flac) is named once."""
    codec = None if job.codec and job.codec == job.container else (job.codec or "?")
    parts = [
        job.container or "?",
        codec,
        formatting.audio_length(job),
        f"{job.sample_rate} Hz" if job.sample_rate else None,
        f"{job.channels} ch" if job.channels else None,
        f"{job.audio_bytes / 1e6:.1f} MB",
    ]
    return " · ".join(p for p in parts if p)


def callback_line(store: Store, job: Job, tz: dt.tzinfo) -> str | None:
    """How the job's completion callback went, for the job page; None without one."""
    cb = callback_view(store.callback_for(job.id))
    if cb is None:
        return None
    head = f"Callback to {cb['url']}: "
    if cb["state"] == "delivered":
        return head + f"delivered {format_time(cb['delivered_at'], tz)} (HTTP {cb['last_status']})."
    if cb["state"] == "failed":
        return head + f"gave up after {cb['attempts']} attempts; last: {cb['last_error']}."
    if cb["attempts"] == 0:
        return head + ("sent when the job ends." if not job.state.is_final else "sending now.")
    return head + (
        f"attempt {cb['attempts']} failed ({cb['last_error']}); next try "
        f"{format_time(cb['next_attempt_at'], tz)}."
    )


@dataclass(frozen=True)
class Playable:
    data: bytes | None  # None: nothing to play, see `reason`
    mime: str
    reason: str | None = None


def playable_audio(settings: Settings, job: Job) -> Playable:
    """The job's audio for the browser's player: the stored file when browsers play its
    container, else a 16 kHz WAV decoded from it."""
    path = settings.data_dir / job.audio_path
    if not path.exists():
        return Playable(None, "", "The audio file is no longer stored (deleted or expired).")
    if job.audio_bytes > PLAYER_MAX_BYTES:
        return Playable(None, "", "The file is too large to play in the browser.")
    mime = PLAYABLE_MIME.get(job.container or "")
    if mime:
        return Playable(path.read_bytes(), mime)
    return Playable(_as_wav(path), "audio/wav")


def _as_wav(path: Path) -> bytes:
    import io
    import wave

    import numpy as np

    from engine import audio

    samples, _info = audio.decode(path)
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(audio.TARGET_RATE)
        w.writeframes(pcm)
    return out.getvalue()


@dataclass(frozen=True)
class HotwordPresence:
    used: list[str]
    present: list[str]  # used and found in the transcript
    absent: list[str]  # used but not found: biasing did not produce them (or they were not said)


@dataclass(frozen=True)
class HotwordsView:
    """What the job page says about a job's hotwords."""

    summary: str | None  # a sentence in place of the lists (None: show `presence`)
    asked: list[str]  # the hotwords submitted with the job
    presence: HotwordPresence | None  # for a done job that was given hotwords


def hotwords_view(job: Job) -> HotwordsView:
    """The model's hotwords are recorded when a job's transcript is saved, so only a done
    job has them; any other says what it was asked for and why nothing more is known (a
    job cancelled before it ran never ran "without hotwords")."""
    asked = list(job.hotwords or [])
    if job.state is JobState.DONE:
        used = hotword_presence(job)
        if not used.used:
            return HotwordsView("None: the job ran without hotwords.", asked, None)
        return HotwordsView(None, asked, used)
    if not job.state.is_final:
        note = "Given to the model when the job runs, with the default hotwords."
    elif job.started_at is None:
        note = f"None: the job was {job.state.value} before it ran."
    else:
        note = f"Not recorded: the job {job.state.value} before its transcript was saved."
    return HotwordsView(note, asked, None)


def hotword_presence(job: Job) -> HotwordPresence:
    used = job.effective_hotwords or []
    present = accuracy.hotwords_present(job.text, used) if job.text else []
    return HotwordPresence(used, present, [w for w in used if w not in present])


@dataclass(frozen=True)
class Comparison:
    """A done job next to its re-run without hotwords."""

    diff_html: str  # without -> with: what the hotwords changed, text escaped
    gained: list[str]
    lost: list[str]
    identical: bool


def compare(job: Job, without: Job) -> Comparison:
    segments = accuracy.char_diff(without.text, job.text)
    change = accuracy.hotword_change(job.text, without.text, job.effective_hotwords or [])
    return Comparison(
        diff_html=accuracy.diff_html(segments),
        gained=change.gained,
        lost=change.lost,
        identical=all(s.op == "equal" for s in segments),
    )


ACTIONS = ("cancel", "retry", "delete")  # always in this order, in these columns


def action_states(job: Job) -> dict[str, str | None]:
    """For each of ACTIONS: None when it can be done now, else why not (the page shows every
    action in the same place whatever the state, disabled with this as its help)."""
    allowed = allowed_actions(job)
    state = job.state.value
    why = {
        "cancel": "Already cancelling." if job.cancel_requested else f"The job is {state}.",
        "retry": f"Only failed or cancelled jobs can be retried; this one is {state}.",
        "delete": "A running job must be cancelled first.",
    }
    return {a: None if a in allowed else why[a] for a in ACTIONS}


def allowed_actions(job: Job) -> set[str]:
    """Cancel what has not finished, retry what did not succeed, delete what is not running
    (a running job is cancelled first, so the worker never writes into a deleted row)."""
    actions = set()
    if job.state in (JobState.QUEUED, JobState.RUNNING) and not job.cancel_requested:
        actions.add("cancel")
    if job.state in (JobState.FAILED, JobState.CANCELLED):
        actions.add("retry")
    if job.state is not JobState.RUNNING:
        actions.add("delete")
    return actions


def jobs_with_sentences(store: Store, job_ids: list[int]) -> list[Job]:
    """Full jobs (sentences included, which list_jobs leaves out) for exports; ids deleted
    meanwhile are skipped."""
    jobs = []
    for job_id in job_ids:
        try:
            jobs.append(store.get(job_id))
        except JobNotFoundError:  # deleted since the table was drawn
            continue
    return jobs
