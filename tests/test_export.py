"""Transcript exports parsed back with strict readers: SRT and VTT against the formats' rules,
csv through csv.reader, json through json.loads, docx through python-docx, zips through
zipfile. No mocks: real Job objects in, bytes out."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from typing import Any

import docx
import pytest

from engine.errors import SeacoError
from engine.export import (
    FORMATS,
    NotExportableError,
    UnknownFormatError,
    export_filename,
    export_job,
    export_many,
    srt_time,
    vtt_time,
)
from engine.jobs import Job, JobState, Sentence

# --- helpers ---------------------------------------------------------------------------------


def make_job(**overrides: Any) -> Job:
    """A done job with two ordinary sentences; any field can be overridden."""
    values: dict[str, Any] = dict(
        id=12,
        state=JobState.DONE,
        priority=10,
        batch_id=None,
        source="upload",
        submitted_at=1_700_000_000_000,
        started_at=1_700_000_001_000,
        finished_at=1_700_000_009_000,
        updated_at=1_700_000_009_000,
        stage=None,
        cancel_requested=False,
        lease_owner=None,
        lease_expires_at=None,
        attempts=1,
        max_attempts=3,
        queue_wait_ms=1000,
        decode_ms=40,
        inference_ms=900,
        total_ms=8000,
        rtf=0.125,
        audio_sha256="ab" * 32,
        audio_path="audio/ab/abab",
        audio_bytes=64_000,
        original_name="会议录音.wav",
        container="wav",
        codec="pcm_s16le",
        duration_ms=4000,
        sample_rate=16000,
        channels=1,
        hotwords=["科哥"],
        effective_hotwords=["科哥"],
        text="今天天气很好。我们去公园吧！",
        raw_text="今天天气很好 我们去公园吧",
        confidence=0.87,
        sentence_count=2,
        model_info={"random_weights": True},
        error=None,
        error_class=None,
        sentences=[Sentence("今天天气很好。", 0, 1800), Sentence("我们去公园吧！", 1900, 3600)],
    )
    values.update(overrides)
    return Job(**values)


def tricky_job() -> Job:
    """Everything subtitle writers get wrong, in one job (deliberately out of order)."""
    sentences = [
        Sentence('第二句，带"引号"和逗号,\n还有换行\n\n😀。', 5000, 7000),
        Sentence("第一句 --> 箭头 <b>&amp;", 1000, 3000),
        Sentence("", 3000, 3500),  # empty
        Sentence("  \n\t ", 3500, 3600),  # whitespace only
        Sentence("。", 3600, 3700),  # punctuation only
        Sentence("零长度", 8000, 8000),  # zero length, next starts at 8500
        Sentence("倒序时间", 9000, 8700),  # end before start, nothing follows
        Sentence("重叠", 8500, 9500),  # overlaps the next cue (starts 9000)
        Sentence("超过一小时", 3_723_004, 3_724_000),
    ]
    return make_job(
        text="".join(s.text for s in sentences), sentences=sentences, duration_ms=3_730_000
    )


SRT_TIME = r"(\d{2,}):([0-5]\d):([0-5]\d),(\d{3})"
VTT_TIME = r"(\d{2,}):([0-5]\d):([0-5]\d)\.(\d{3})"


def _ms(h: str, m: str, s: str, ms: str) -> int:
    return ((int(h) * 60 + int(m)) * 60 + int(s)) * 1000 + int(ms)


def _check_cues(cues: list[tuple[int, int, str]]) -> None:
    starts = [c[0] for c in cues]
    assert starts == sorted(starts), "cues out of order"
    for start, end, text in cues:
        assert end >= start + 1, f"cue {text!r} ends at {end} <= start {start}"
        assert text.strip(), "empty cue"


def parse_srt(data: bytes) -> list[tuple[int, int, str]]:
    """Strict SRT: blocks of index (1, 2, ...), timing line, one non-empty text line,
    separated by exactly one blank line; UTF-8 without BOM."""
    text = data.decode("utf-8")
    assert not text.startswith("\ufeff")
    if not text:
        return []
    assert text.endswith("\n") and not text.endswith("\n\n")
    cues = []
    for expected, block in enumerate(text[:-1].split("\n\n"), start=1):
        m = re.fullmatch(rf"(\d+)\n{SRT_TIME} --> {SRT_TIME}\n([^\n]+)", block)
        assert m, f"malformed SRT block {block!r}"
        assert int(m.group(1)) == expected, "SRT indices must count up from 1"
        start, end = _ms(*m.group(2, 3, 4, 5)), _ms(*m.group(6, 7, 8, 9))
        assert "-->" not in m.group(10)
        cues.append((start, end, m.group(10)))
    _check_cues(cues)
    return cues


def parse_vtt(data: bytes) -> list[tuple[int, int, str]]:
    """Strict WebVTT: 'WEBVTT' and a blank line, then cues of timing line + one text line
    separated by blank lines; text has no '-->' and only escaped '&' and '<'. Returns the
    unescaped text."""
    text = data.decode("utf-8")
    assert text.startswith("WEBVTT\n\n")
    body = text[len("WEBVTT\n\n") :]
    if not body:
        return []
    assert body.endswith("\n") and not body.endswith("\n\n")
    cues = []
    for block in body[:-1].split("\n\n"):
        m = re.fullmatch(rf"{VTT_TIME} --> {VTT_TIME}\n([^\n]+)", block)
        assert m, f"malformed VTT cue {block!r}"
        raw = m.group(9)
        assert "-->" not in raw
        assert "<" not in raw
        assert not re.search(r"&(?!amp;|lt;|gt;)", raw), f"unescaped & in {raw!r}"
        unescaped = raw.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
        cues.append((_ms(*m.group(1, 2, 3, 4)), _ms(*m.group(5, 6, 7, 8)), unescaped))
    _check_cues(cues)
    return cues


def read_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "csv needs the UTF-8 BOM for Excel"
    return list(csv.reader(io.StringIO(data[3:].decode("utf-8"), newline="")))


# --- timestamps ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ms", "srt", "vtt"),
    [
        (0, "00:00:00,000", "00:00:00.000"),
        (999, "00:00:00,999", "00:00:00.999"),
        (61_001, "00:01:01,001", "00:01:01.001"),
        (3_723_004, "01:02:03,004", "01:02:03.004"),
        (359_999_999, "99:59:59,999", "99:59:59.999"),
        (360_000_000, "100:00:00,000", "100:00:00.000"),
        (-5, "00:00:00,000", "00:00:00.000"),
    ],
)
def test_timestamps(ms: int, srt: str, vtt: str) -> None:
    assert srt_time(ms) == srt
    assert vtt_time(ms) == vtt


def test_formats_table() -> None:
    assert set(FORMATS) == {"txt", "srt", "vtt", "json", "csv", "docx"}
    for fmt, (media_type, ext) in FORMATS.items():
        assert ext == fmt
        assert "/" in media_type
        if fmt in ("txt", "srt", "vtt", "csv"):
            assert media_type.endswith("; charset=utf-8")
    assert FORMATS["srt"][0] == "application/x-subrip; charset=utf-8"
    assert FORMATS["docx"][0] == (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )


# --- subtitles -------------------------------------------------------------------------------


def test_srt_of_an_ordinary_job() -> None:
    data = export_job(make_job(), "srt")
    assert data.decode("utf-8") == (
        "1\n00:00:00,000 --> 00:00:01,800\n今天天气很好。\n\n"
        "2\n00:00:01,900 --> 00:00:03,600\n我们去公园吧！\n"
    )
    assert parse_srt(data) == [(0, 1800, "今天天气很好。"), (1900, 3600, "我们去公园吧！")]


def test_vtt_of_an_ordinary_job() -> None:
    data = export_job(make_job(), "vtt")
    assert data.decode("utf-8").startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.800\n")
    assert parse_vtt(data) == [(0, 1800, "今天天气很好。"), (1900, 3600, "我们去公园吧！")]


TRICKY_CUES = [
    (1000, 3000, "第一句 --> 箭头 <b>&amp;"),
    (5000, 7000, '第二句，带"引号"和逗号, 还有换行 😀。'),
    (8000, 8500, "零长度"),  # zero length: shown until the next cue starts
    (8500, 9000, "重叠"),  # clamped to the next cue's start
    (9000, 10000, "倒序时间"),  # reversed: shown for MIN_CUE_MS
    (3_723_004, 3_724_000, "超过一小时"),
]


def test_srt_of_tricky_sentences_is_valid() -> None:
    cues = parse_srt(export_job(tricky_job(), "srt"))
    expected = [(s, e, t.replace("-->", "->")) for s, e, t in TRICKY_CUES]
    assert cues == expected
    assert srt_time(cues[-1][0]) == "01:02:03,004"


def test_vtt_of_tricky_sentences_is_valid_and_keeps_the_text() -> None:
    data = export_job(tricky_job(), "vtt")
    assert parse_vtt(data) == TRICKY_CUES
    assert "第一句 --&gt; 箭头 &lt;b&gt;&amp;amp;" in data.decode("utf-8")
    assert "01:02:03.004 --> 01:02:04.000" in data.decode("utf-8")


def test_cues_with_equal_starts_and_cues_past_the_end_stay_valid() -> None:
    job = make_job(
        duration_ms=5000,
        sentences=[
            Sentence("甲", 1000, 1000),
            Sentence("乙", 1000, 1000),
            Sentence("丙", 4999, 9000),  # ends after the audio
            Sentence("丁", 7000, 6000),  # starts after the audio
        ],
    )
    for cues in (parse_srt(export_job(job, "srt")), parse_vtt(export_job(job, "vtt"))):
        assert cues == [
            (1000, 2000, "甲"),
            (1000, 2000, "乙"),
            (4999, 5000, "丙"),
            (7000, 7001, "丁"),
        ]


def test_many_sentences_stay_valid() -> None:
    # scrambled starts, a third of them reversed or zero-length
    sentences = [Sentence(f"第{i}句。", i * 997 % 50_000, i * 991 % 50_000) for i in range(3000)]
    job = make_job(sentences=sentences, duration_ms=60_000)
    assert len(parse_srt(export_job(job, "srt"))) == 3000
    assert len(parse_vtt(export_job(job, "vtt"))) == 3000


def test_text_without_sentences_is_one_cue_over_the_whole_audio() -> None:
    job = make_job(sentences=[], text="只有文本。\n第二行", duration_ms=4321)
    assert parse_srt(export_job(job, "srt")) == [(0, 4321, "只有文本。 第二行")]
    assert parse_vtt(export_job(job, "vtt")) == [(0, 4321, "只有文本。 第二行")]
    rows = read_csv(export_job(job, "csv"))
    assert rows[1] == ["1", "0", "4321", "00:00:00.000", "00:00:04.321", "只有文本。\n第二行"]


def test_silence_gives_valid_empty_files() -> None:
    job = make_job(text="", raw_text="", sentences=[], sentence_count=0, confidence=None)
    assert export_job(job, "srt") == b""
    assert parse_srt(export_job(job, "srt")) == []
    assert export_job(job, "vtt") == b"WEBVTT\n\n"
    assert parse_vtt(export_job(job, "vtt")) == []
    assert export_job(job, "txt") == b""
    assert read_csv(export_job(job, "csv")) == [
        ["index", "start_ms", "end_ms", "start", "end", "text"]
    ]
    document = docx.Document(io.BytesIO(export_job(job, "docx")))
    assert document.paragraphs[0].text == "会议录音.wav"
    assert json.loads(export_job(job, "json"))["text"] == ""


def test_text_none_counts_as_silence() -> None:
    job = make_job(text=None, sentences=[])
    assert export_job(job, "srt") == b""
    assert export_job(job, "txt") == b""


# --- txt, json, csv ------------------------------------------------------------------------


def test_txt_is_the_text_and_a_newline() -> None:
    assert export_job(make_job(), "txt") == "今天天气很好。我们去公园吧！\n".encode()
    job = make_job(text='第一行\n第二行 😀 "q"\x00')
    assert export_job(job, "txt") == '第一行\n第二行 😀 "q"\n'.encode()


def test_json_is_the_job_dict() -> None:
    job = tricky_job()
    data = export_job(job, "json")
    assert json.loads(data) == job.to_dict()
    assert "会议录音" in data.decode("utf-8")  # not \u-escaped
    assert json.loads(data)["sentences"][0]["start_ms"] == 5000


def test_csv_round_trips() -> None:
    job = tricky_job()
    rows = read_csv(export_job(job, "csv"))
    assert rows[0] == ["index", "start_ms", "end_ms", "start", "end", "text"]
    assert len(rows) == len(job.sentences) + 1
    for i, (row, sentence) in enumerate(zip(rows[1:], job.sentences, strict=True), start=1):
        assert row == [
            str(i),
            str(sentence.start_ms),
            str(sentence.end_ms),
            vtt_time(sentence.start_ms),
            vtt_time(sentence.end_ms),
            sentence.text,
        ]
    assert rows[-1][3] == "01:02:03.004"


# --- docx ------------------------------------------------------------------------------------


def test_docx_has_title_metadata_text_and_sentences() -> None:
    job = tricky_job()
    document = docx.Document(io.BytesIO(export_job(job, "docx")))
    paragraphs = [p.text for p in document.paragraphs]
    assert paragraphs[0] == "会议录音.wav"
    assert job.text in paragraphs
    assert "[00:00:01] 第一句 --> 箭头 <b>&amp;" in paragraphs
    assert '[00:00:05] 第二句，带"引号"和逗号, 还有换行 😀。' in paragraphs
    assert "[01:02:03] 超过一小时" in paragraphs
    sentence_lines = [p for p in paragraphs if p.startswith("[")]
    assert len(sentence_lines) == 6  # no empty, blank or "。"-only lines
    table = {row.cells[0].text: row.cells[1].text for row in document.tables[0].rows}
    assert table["Hotwords"] == "科哥"
    assert table["Confidence"] == "0.87"
    assert table["Duration"] == "1 h 2 min 10 s"
    assert table["Processing time"].startswith("8.00 s")
    assert document.core_properties.title == "会议录音.wav"


def test_docx_survives_characters_xml_forbids() -> None:
    job = make_job(
        original_name="bad\x00name\x07.wav",
        text="控制\x01字符\x0b。",
        sentences=[Sentence("控制\x01字符\x0b。", 0, 1000)],
    )
    document = docx.Document(io.BytesIO(export_job(job, "docx")))
    paragraphs = [p.text for p in document.paragraphs]
    assert paragraphs[0] == "badname.wav"
    assert "控制字符。" in paragraphs
    assert "[00:00:00] 控制字符。" in paragraphs


# --- determinism -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_output_is_deterministic(fmt: str) -> None:
    assert export_job(tricky_job(), fmt) == export_job(tricky_job(), fmt)


def test_docx_parts_have_a_fixed_date() -> None:
    with zipfile.ZipFile(io.BytesIO(export_job(make_job(), "docx"))) as zf:
        assert zf.namelist()[0] == "[Content_Types].xml"
        assert {info.date_time for info in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert zf.testzip() is None


# --- errors ----------------------------------------------------------------------------------


def test_unknown_format_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownFormatError) as err:
        export_job(make_job(), "pdf")
    assert isinstance(err.value, SeacoError)
    for fmt in FORMATS:
        assert fmt in str(err.value)
    assert "'pdf'" in str(err.value)
    with pytest.raises(UnknownFormatError):
        export_filename(make_job(), "exe")
    with pytest.raises(UnknownFormatError):
        export_many([make_job()], "")


def test_format_names_ignore_case() -> None:
    assert export_job(make_job(), "SRT") == export_job(make_job(), "srt")


@pytest.mark.parametrize(
    ("state", "error", "message"),
    [
        (JobState.QUEUED, None, "Job 12 is queued; only finished jobs have a transcript."),
        (JobState.RUNNING, None, "Job 12 is running; only finished jobs have a transcript."),
        (JobState.FAILED, "Not audio.", "Job 12 failed (Not audio.); it has no transcript."),
        (JobState.FAILED, None, "Job 12 failed (no reason recorded); it has no transcript."),
        (JobState.CANCELLED, None, "Job 12 was cancelled; it has no transcript."),
    ],
)
def test_only_done_jobs_export(state: JobState, error: str | None, message: str) -> None:
    job = make_job(state=state, error=error, text=None, sentences=[])
    for fmt in FORMATS:
        with pytest.raises(NotExportableError) as err:
            export_job(job, fmt)
        assert str(err.value) == message
        assert isinstance(err.value, SeacoError)


# --- file names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        ("会议录音.wav", "会议录音.srt"),
        ("../../etc/passwd.wav", "passwd.srt"),
        ("C:\\Users\\me\\访谈 第1部分.m4a", "访谈 第1部分.srt"),
        ("my \"best\" 'talk'.mp3", "my best talk.srt"),
        ("nul\x00byte\r\n.wav", "nulbyte.srt"),
        ("a<b>c:d|e?f*.ogg", "abcdef.srt"),
        ("\u202eevil\u200b.wav", "evil.srt"),
        ("meeting v1.2 final", "meeting v1.2 final.srt"),
        ("archive.tar.gz", "archive.tar.srt"),
        (".hidden.wav", "hidden.srt"),
        ("noext", "noext.srt"),
        ("", "job-12.srt"),
        ("..wav", "job-12.srt"),
        ("../", "job-12.srt"),
        ('"".wav', "job-12.srt"),
        ("CON.wav", "job-12.srt"),
        ("  spaced   out .wav", "spaced out.srt"),
    ],
)
def test_export_filename(original: str, expected: str) -> None:
    assert export_filename(make_job(original_name=original), "srt") == expected


def test_long_filenames_are_cut_to_fit_file_systems() -> None:
    name = export_filename(make_job(original_name="长" * 200 + ".wav"), "docx")
    assert name.endswith("长.docx")
    assert len(name.encode("utf-8")) <= 160


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_filename_extension_follows_the_format(fmt: str) -> None:
    assert export_filename(make_job(), fmt) == f"会议录音.{fmt}"


# --- many jobs ---------------------------------------------------------------------------------


def test_export_many_zips_done_jobs_and_names_the_skipped() -> None:
    jobs = [
        make_job(id=1, original_name="会议.wav"),
        make_job(id=2, original_name="会议.wav", text="第二个。", sentences=[]),
        make_job(id=3, state=JobState.FAILED, error="The file is not audio.", text=None),
        make_job(id=4, state=JobState.QUEUED, text=None, sentences=[]),
        make_job(id=5, original_name="../../x/..", sentences=[]),
    ]
    data = export_many(jobs, "srt")
    assert data == export_many(jobs, "srt")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        assert zf.namelist() == ["1-会议.srt", "2-会议.srt", "5-job-5.srt", "README.txt"]
        assert {info.date_time for info in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        for job, name in zip([jobs[0], jobs[1], jobs[4]], zf.namelist(), strict=False):
            assert zf.read(name) == export_job(job, "srt")
            parse_srt(zf.read(name))
        readme = zf.read("README.txt").decode("utf-8")
    assert "3 transcript(s)" in readme
    assert "job 3" in readme and "The file is not audio." in readme
    assert "job 4" in readme and "queued" in readme
    assert "job 1 " not in readme and "job 2 " not in readme


def test_export_many_without_skips_has_no_readme() -> None:
    with zipfile.ZipFile(io.BytesIO(export_many([make_job(id=7)], "docx"))) as zf:
        assert zf.namelist() == ["7-会议录音.docx"]
        document = docx.Document(io.BytesIO(zf.read("7-会议录音.docx")))
        assert "[00:00:01] 我们去公园吧！" in [p.text for p in document.paragraphs]


def test_export_many_of_nothing_exportable_explains_itself() -> None:
    for jobs in ([], [make_job(state=JobState.CANCELLED, text=None)]):
        with zipfile.ZipFile(io.BytesIO(export_many(jobs, "txt"))) as zf:
            assert zf.namelist() == ["README.txt"]
            assert "0 transcript(s)" in zf.read("README.txt").decode("utf-8")


def test_export_many_lists_a_repeated_job_once() -> None:
    job = make_job(id=9)
    with zipfile.ZipFile(io.BytesIO(export_many([job, job], "txt"))) as zf:
        assert zf.namelist() == ["9-会议录音.txt", "README.txt"]
        assert "listed more than once" in zf.read("README.txt").decode("utf-8")
