"""A finished job's transcript as a downloadable file: txt, srt, vtt, json, csv or docx.

Everything here is a pure function of the `Job` (no clock, no randomness, fixed zip dates),
so the same job always gives the same bytes: downloads can be cached, compared and tested.
Subtitle files are made valid even when the stored sentences are not (empty text, zero-length
or reversed times, overlaps), because players and editors reject or garble invalid files
rather than skipping the bad cue.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import io
import json
import unicodedata
import zipfile
from collections.abc import Iterable
from typing import NamedTuple

from engine.errors import NotExportableError, UnknownFormatError
from engine.jobs import Job, JobState

# format -> (media type for Content-Type, file extension)
FORMATS: dict[str, tuple[str, str]] = {
    "txt": ("text/plain; charset=utf-8", "txt"),
    "srt": ("application/x-subrip; charset=utf-8", "srt"),
    "vtt": ("text/vtt; charset=utf-8", "vtt"),
    "json": ("application/json", "json"),
    "csv": ("text/csv; charset=utf-8", "csv"),
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"),
}

# A cue whose stored end is not after its start is shown this long (or until the next cue
# starts): a 1 ms cue would be valid but never visible.
MIN_CUE_MS = 1000
# Every zip entry (the export_many archive and the parts inside a docx) gets this date, so
# the bytes do not depend on when the export ran. 1980-01-01 is the earliest a zip can hold.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
# Longest file-name stem in UTF-8 bytes: file systems allow 255, the zip adds a job-id prefix.
_MAX_STEM_BYTES = 150
# Names Windows refuses for a file whatever the extension ('nul.srt').
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul"} | {
    f"{port}{n}" for port in ("com", "lpt") for n in range(1, 10)
}


def format_ms(ms: int | None) -> str:
    """1234 -> '1.23 s'; 75_000 -> '1 min 15 s'."""
    if ms is None:
        return "–"
    if ms < 60_000:
        return f"{ms / 1000:.2f} s"
    minutes, seconds = divmod(round(ms / 1000), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min {seconds} s" if hours else f"{minutes} min {seconds} s"


class _Cue(NamedTuple):
    start_ms: int
    end_ms: int
    text: str


# --- public API ----------------------------------------------------------------------------
def srt_time(ms: int) -> str:
    """Milliseconds -> SRT's 'HH:MM:SS,mmm' (hours keep counting past 99; negative -> 0)."""
    return _clock(ms, ",")


def vtt_time(ms: int) -> str:
    """Milliseconds -> WebVTT's 'HH:MM:SS.mmm' (always with hours, which VTT allows)."""
    return _clock(ms, ".")


def export_job(job: Job, fmt: str) -> bytes:
    """The transcript of a done job in `fmt` (a key of FORMATS), as the file's bytes.

    Raises UnknownFormatError (naming the valid formats) or NotExportableError (saying why
    the job has no transcript) so the HTTP and CLI edges can show the message as is.
    """
    fmt = _check_format(fmt)
    _check_done(job)
    return _WRITERS[fmt](job)


def export_filename(job: Job, fmt: str) -> str:
    """A download name from the uploaded file's name: '会议录音.wav' -> '会议录音.srt'.

    The original name comes from the uploader, so directories, control and bidi characters,
    quotes and characters Windows forbids are removed (it ends up in a Content-Disposition
    header and on the user's disk); Chinese and other letters are kept. Falls back to
    'job-<id>.<ext>' when nothing usable is left.
    """
    ext = FORMATS[_check_format(fmt)][1]
    stem = _safe_stem(job.original_name or "")
    return f"{stem or f'job-{job.id}'}.{ext}"


def export_many(jobs: Iterable[Job], fmt: str) -> bytes:
    """A zip with one `fmt` file per done job, named '<id>-<export_filename>' (unique even
    when two uploads had the same name).

    Jobs that are not done are skipped rather than failing the whole download; README.txt
    in the zip then names each skipped job and why, so a missing file is never a mystery.
    """
    fmt = _check_format(fmt)
    entries: list[tuple[str, bytes]] = []
    skipped: list[str] = []
    seen: set[int] = set()
    for job in jobs:
        label = f"job {job.id} ({_one_line(job.original_name or '') or 'unnamed'})"
        if job.id in seen:
            skipped.append(f"{label}: listed more than once, exported once")
            continue
        seen.add(job.id)
        try:
            _check_done(job)
        except NotExportableError as exc:
            skipped.append(f"{label}: {exc}")
            continue
        entries.append((f"{job.id}-{export_filename(job, fmt)}", _WRITERS[fmt](job)))
    if skipped or not entries:
        lines = [f"seaco-asr export as {fmt}: {len(entries)} transcript(s)."]
        if skipped:
            lines += ["", f"Skipped {len(skipped)} job(s):"] + [f"- {s}" for s in skipped]
        entries.append(("README.txt", ("\n".join(lines) + "\n").encode("utf-8")))
    return _zip(entries)


# --- checks ----------------------------------------------------------------------------------
def _check_format(fmt: str) -> str:
    key = fmt.strip().lower() if isinstance(fmt, str) else ""
    if key not in FORMATS:
        raise UnknownFormatError(
            f"Unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}."
        )
    return key


def _check_done(job: Job) -> None:
    if job.state is JobState.DONE:
        return
    if job.state is JobState.FAILED:
        reason = _one_line(job.error or "")[:300] or "no reason recorded"
        raise NotExportableError(f"Job {job.id} failed ({reason}); it has no transcript.")
    if job.state is JobState.CANCELLED:
        raise NotExportableError(f"Job {job.id} was cancelled; it has no transcript.")
    raise NotExportableError(
        f"Job {job.id} is {job.state.value}; only finished jobs have a transcript."
    )


# --- writers -----------------------------------------------------------------------------------
def _txt(job: Job) -> bytes:
    text = _clean(job.text or "").strip()
    return (text + "\n").encode("utf-8") if text else b""


def _srt(job: Job) -> bytes:
    blocks = []
    for index, cue in enumerate(_cues(job), start=1):
        # A text line holding '-->' can be taken for a timing line by lax parsers.
        text = _replace_all(cue.text, "-->", "->")
        blocks.append(f"{index}\n{srt_time(cue.start_ms)} --> {srt_time(cue.end_ms)}\n{text}\n")
    return "\n".join(blocks).encode("utf-8")


def _vtt(job: Job) -> bytes:
    blocks = []
    for cue in _cues(job):
        # '&' and '<' start entities and tags in cue text; escaping '>' too means no cue
        # text can contain '-->', which the spec forbids. Players show the original text.
        text = cue.text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        blocks.append(f"{vtt_time(cue.start_ms)} --> {vtt_time(cue.end_ms)}\n{text}\n")
    return ("WEBVTT\n\n" + "\n".join(blocks)).encode("utf-8")


def _json(job: Job) -> bytes:
    """`Job.to_dict()`, indented: every stored field, and each sentence with its `words`
    (`[{"text", "start_ms", "end_ms"}]`, empty for jobs done before word timestamps)."""
    out = json.dumps(job.to_dict(), ensure_ascii=False, indent=2) + "\n"
    # A lone surrogate cannot be UTF-8; backslashreplace writes it as the JSON escape
    # '\udc80' (it can only occur inside a string), so the file stays valid JSON.
    return out.encode("utf-8", "backslashreplace")


def _csv(job: Job) -> bytes:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)  # excel dialect: RFC 4180 quoting, CRLF rows
    writer.writerow(["index", "start_ms", "end_ms", "start", "end", "text"])
    rows = [(s.text, s.start_ms, s.end_ms) for s in job.sentences]
    if not rows and _has_words(job.text or ""):
        rows = [(job.text or "", 0, job.duration_ms or 0)]
    for index, (text, start, end) in enumerate(rows, start=1):
        writer.writerow([index, start, end, vtt_time(start), vtt_time(end), _clean(text)])
    # utf-8-sig writes a BOM: without it Excel reads the file as the local ANSI code page
    # and shows Chinese as mojibake. Other readers skip it (Python: encoding="utf-8-sig").
    return buf.getvalue().encode("utf-8-sig")


def _docx(job: Job) -> bytes:
    import docx  # python-docx; imported here so the other formats work without it

    title = _clean(job.original_name or "") or f"Job {job.id}"
    document = docx.Document()
    props = document.core_properties
    props.title = title
    props.author = "seaco-asr"
    props.comments = f"Transcript of job {job.id}"
    props.last_modified_by = "seaco-asr"
    when = _utc(job.finished_at or job.submitted_at)
    props.created = props.modified = when.replace(tzinfo=None)

    document.add_heading(title, level=0)
    hotwords = job.effective_hotwords if job.effective_hotwords is not None else job.hotwords
    processing = format_ms(job.total_ms)
    if job.rtf is not None:
        processing += f" (real-time factor {job.rtf:.3f})"
    rows = [
        ("Job", str(job.id)),
        ("Duration", format_ms(job.duration_ms)),
        ("Confidence", "–" if job.confidence is None else f"{job.confidence:.2f}"),
        ("Hotwords", ", ".join(_clean(h) for h in hotwords) if hotwords else "none"),
        ("Processing time", processing),
        ("Finished", when.strftime("%Y-%m-%d %H:%M:%S UTC")),
    ]
    table = document.add_table(rows=len(rows), cols=2)
    table.style = "Table Grid"
    for row, (label, value) in zip(table.rows, rows, strict=True):
        row.cells[0].text = label
        row.cells[1].text = value

    document.add_heading("Text", level=1)
    document.add_paragraph(_clean(job.text or "").strip())
    document.add_heading("Sentences", level=1)
    for sentence in sorted(job.sentences, key=lambda s: s.start_ms):
        if _has_words(sentence.text):  # as in subtitles: no lines of just '。'
            text = _one_line(sentence.text)
            document.add_paragraph(f"[{_clock(sentence.start_ms, None)}] {text}")

    buf = io.BytesIO()
    document.save(buf)
    # python-docx stamps every part with the current time; rewrite with the fixed date.
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as saved:
        return _zip([(info.filename, saved.read(info)) for info in saved.infolist()])


_WRITERS = {"txt": _txt, "srt": _srt, "vtt": _vtt, "json": _json, "csv": _csv, "docx": _docx}
assert _WRITERS.keys() == FORMATS.keys()


# --- cues ------------------------------------------------------------------------------------
def _cues(job: Job) -> list[_Cue]:
    """Subtitle cues that any player accepts: one line of text with a letter or digit in
    it, ordered by start, each ending at least 1 ms after it starts and no later than the
    next cue starts (or the audio ends)."""
    raw = [
        _Cue(max(0, s.start_ms), s.end_ms, _one_line(s.text))
        for s in job.sentences
        if _has_words(s.text)
    ]
    if not raw and _has_words(job.text or ""):
        # Text without sentence times (older jobs, funasr gave none): one cue for all of it.
        raw = [_Cue(0, job.duration_ms or 0, _one_line(job.text or ""))]
    raw.sort(key=lambda c: c.start_ms)  # stable: equal starts keep the stored order
    starts = [c.start_ms for c in raw]  # sorted, so bisect finds the next later start
    cues = []
    for cue in raw:
        end = cue.end_ms
        if end <= cue.start_ms:  # zero-length or reversed: show it for a while
            end = cue.start_ms + MIN_CUE_MS
        following = bisect.bisect_right(starts, cue.start_ms)
        if following < len(starts):
            end = min(end, starts[following])
        if job.duration_ms:
            end = min(end, job.duration_ms)
        cues.append(_Cue(cue.start_ms, max(end, cue.start_ms + 1), cue.text))
    return cues


def _has_words(text: str) -> bool:
    """False for text that is empty, whitespace or punctuation only (a cue of just '。')."""
    return any(
        not ch.isspace() and not unicodedata.category(ch).startswith("P") for ch in _clean(text)
    )


# --- small helpers ------------------------------------------------------------------------
def _clean(text: str) -> str:
    """Drop control characters (except tab and line breaks), lone surrogates and the two
    non-characters: they are invalid in XML (docx), cannot be UTF-8, or break parsers."""
    return "".join(
        ch
        for ch in text
        if ch in "\t\n\r"
        or (unicodedata.category(ch) not in ("Cc", "Cs") and ch not in "\ufffe\uffff")
    )


def _one_line(text: str) -> str:
    """All whitespace, line breaks included, collapsed to single spaces: no blank lines."""
    return " ".join(_clean(text).split())


def _replace_all(text: str, old: str, new: str) -> str:
    while old in text:  # one pass can create a new match ('--->' -> '-->')
        text = text.replace(old, new)
    return text


def _clock(ms: int, sep: str | None) -> str:
    """'HH:MM:SS' followed by `sep` and milliseconds, or without them when sep is None."""
    total = max(0, int(ms))
    hours, rest = divmod(total, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    clock = f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    return clock if sep is None else f"{clock}{sep}{millis:03d}"


def _utc(epoch_ms: int | None) -> dt.datetime:
    return dt.datetime.fromtimestamp((epoch_ms or 0) / 1000, tz=dt.timezone.utc)


def _safe_stem(name: str) -> str:
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(
        ch
        for ch in name
        if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn")
        and ch not in "\"'`<>:|?*\ufffe\uffff"
    )
    name = " ".join(name.split())
    head, dot, ext = name.rpartition(".")
    if dot and 0 < len(ext) <= 8 and ext.isascii() and ext.isalnum():
        name = head  # '.wav' alone is an extension without a name: the fallback is used
    name = name.strip(" .")
    while len(name.encode("utf-8")) > _MAX_STEM_BYTES:
        name = name[:-1]
    name = name.strip(" .")
    if name.split(".")[0].lower() in _WINDOWS_RESERVED:
        return ""
    return name


def _zip(entries: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix; the default depends on the exporting machine
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return buf.getvalue()
