"""The Jobs page: its engine functions on a real jobs.db, and the page through AppTest."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import wave
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine import intake, web_process
from engine.dashboard import jobs_page
from engine.errors import InvalidJobStateError, JobNotFoundError
from engine.jobs import JobState, Sentence
from engine.store import JobResult, NewJob
from tests.audio_fixtures import tone, write_audio

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = str(ROOT / "dashboard.py")


def open_jobs_page(**query: str) -> AppTest:
    """The Jobs page inside the dashboard (its links need the navigation), with `query` as
    the address's query parameters."""
    at = AppTest.from_file(DASHBOARD, default_timeout=30)
    at.switch_page("pages/jobs.py")
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


UTC = dt.timezone.utc
TWO_SENTENCES = [Sentence("我们讨论预算。", 0, 1500), Sentence("好的。", 1500, 2500)]


def add_job(
    store,
    name="meeting.wav",
    *,
    text=None,
    sentences=(),
    submitted_at=None,
    sha="a",
    audio_path=None,
    container="wav",
):
    job = store.submit(
        NewJob(
            audio_sha256=sha * 64,
            audio_path=audio_path or f"audio/{sha * 2}/{sha * 64}",
            audio_bytes=10,
            original_name=name,
            duration_ms=3000,
            container=container,
            priority=99 if text is not None else 0,  # claimed next, ahead of queued ones
        ),
        queue_max=10_000,
        max_attempts=3,
        now=submitted_at,
    )
    if text is not None:
        claimed = store.claim("w", 30)
        store.complete(
            claimed.id,
            "w",
            1,
            JobResult(
                text=text,
                raw_text=text,
                confidence=0.8,
                sentences=list(sentences),
                effective_hotwords=["预算"],
                duration_ms=3000,
                decode_ms=4,
                inference_ms=90,
                model_info={},
            ),
        )
    return store.get(job.id)


# --- engine functions ----------------------------------------------------------------------
def test_day_range_covers_whole_local_days_both_inclusive():
    tz = dt.timezone(dt.timedelta(hours=8))
    start, end = jobs_page.day_range_ms((dt.date(2026, 1, 2), dt.date(2026, 1, 3)), tz)
    assert dt.datetime.fromtimestamp(start / 1000, tz) == dt.datetime(2026, 1, 2, tzinfo=tz)
    assert dt.datetime.fromtimestamp(end / 1000, tz) == dt.datetime(2026, 1, 4, tzinfo=tz)
    # one day picked (the date_input's state while choosing the second), reversed, none
    assert jobs_page.day_range_ms((dt.date(2026, 1, 2),), tz) == (start, start + 86_400_000)
    assert jobs_page.day_range_ms((dt.date(2026, 1, 3), dt.date(2026, 1, 2)), tz) == (start, end)
    assert jobs_page.day_range_ms((), tz) == (None, None)


def test_filters_from_widgets_select_the_right_jobs(store):
    day = dt.datetime(2026, 3, 1, tzinfo=UTC)
    ms = int(day.timestamp() * 1000)
    add_job(store, "a_1.wav", submitted_at=ms)
    add_job(store, "b%1.wav", submitted_at=ms + 86_400_000, text="好")
    add_job(store, "c.wav", submitted_at=ms + 2 * 86_400_000)

    def names(**kw):
        where = jobs_page.job_filter(tz=UTC, **kw)
        return [j.original_name for j in store.list_jobs(where=where)]

    assert names() == ["c.wav", "b%1.wav", "a_1.wav"]
    assert names(state="done") == ["b%1.wav"]
    assert names(days=(day.date(), (day + dt.timedelta(days=1)).date())) == ["b%1.wav", "a_1.wav"]
    assert names(name=" _1 ") == ["a_1.wav"]  # LIKE wildcards are literal
    assert names(name="%") == ["b%1.wav"]
    assert names(batch_id="nope") == []
    with pytest.raises(ValueError):
        jobs_page.job_filter(state="bogus")


def test_page_count():
    assert [jobs_page.page_count(n, 50) for n in (0, 1, 50, 51, 100_000)] == [1, 1, 1, 2, 2000]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, jobs_page.JobLink()),
        ({"job": "12"}, jobs_page.JobLink(job_id=12)),
        ({"job": "12", "t": "3400"}, jobs_page.JobLink(job_id=12, t_ms=3400)),
        (
            {"job": "12", "t": "-5"},
            jobs_page.JobLink(12, 0, "The time in the address was ignored."),
        ),
        ({"job": "x'; DROP"}, jobs_page.JobLink(problem="“x'; DROP” is not a job number.")),
        ({"job": "9" * 40}, jobs_page.JobLink(problem=f"“{'9' * 40}” is not a job number.")),
    ],
)
def test_read_link(params, expected):
    assert jobs_page.read_link(params) == expected


def test_snippets_bold_the_match_and_escape_everything_else():
    md = jobs_page.snippet_markdown("…the *budget* 【预算】 is [here](javascript:x) $5…")
    assert "**预算**" in md
    assert r"\*budget\*" in md and r"\[here\]\(javascript\:x\)" in md and r"\$5" in md


def test_search_messages(store):
    add_job(
        store, "q1.wav", text="我们讨论预算。", sentences=[Sentence("我们讨论预算。", 500, 2000)]
    )
    found = jobs_page.search(store, "预算")
    assert [h.job_id for h in found.hits] == [1] and found.message == "1 matching sentences."
    assert jobs_page.search(store, "  ") == jobs_page.SearchOutcome([], None)
    assert "punctuation alone" in jobs_page.search(store, '"*)(').message
    assert jobs_page.search(store, "火星").message == "No transcript contains “火星”."
    for nasty in ('"', "a AND", "NEAR(", "*", "预算 OR", "\x00", "' OR 1=1 --"):
        outcome = jobs_page.search(store, nasty)  # never raises
        assert outcome.message is not None


def test_current_sentence_and_actions(store):
    job = add_job(
        store, text="一。二。", sentences=[Sentence("一。", 0, 1000), Sentence("二。", 1000, 2000)]
    )
    assert [jobs_page.current_sentence(job, t) for t in (0, 999, 1000, 5000)] == [0, 0, 1, None]
    assert jobs_page.allowed_actions(job) == {"delete"}
    queued = add_job(store, "q.wav", sha="b")
    assert jobs_page.allowed_actions(queued) == {"cancel", "delete"}
    assert jobs_page.allowed_actions(store.cancel(queued.id)) == {"retry", "delete"}


def test_delete_removes_audio_only_when_no_other_job_uses_it(settings, store):
    path = settings.data_dir / "audio" / "aa" / ("a" * 64)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF")
    first, second = add_job(store, "one.wav"), add_job(store, "two.wav")
    intake.delete_job(store, settings, first.id)
    assert path.exists()
    intake.delete_job(store, settings, second.id)
    assert not path.exists()
    with pytest.raises(JobNotFoundError):
        intake.delete_job(store, settings, second.id)
    running = add_job(store, "three.wav", sha="c")
    store.claim("w", 30)
    with pytest.raises(InvalidJobStateError):
        intake.delete_job(store, settings, running.id)


def test_exports_of_a_selection_keep_sentence_times(store):
    a = add_job(store, "a.wav", text="一。", sentences=[Sentence("一。", 1500, 2500)])
    b = add_job(store, "b.wav", text="二。", sentences=[Sentence("二。", 0, 900)])
    jobs = jobs_page.jobs_with_sentences(store, [a.id, 999, b.id])
    assert [j.id for j in jobs] == [a.id, b.id]
    assert jobs[0].sentences == [Sentence("一。", 1500, 2500)]


def test_player_gets_stored_file_or_a_decoded_wav(settings, store, tmp_path):
    src = write_audio(tmp_path / "t.flac", tone(1.0), 16000, "flac")
    stored = settings.data_dir / "audio" / "x.flac"
    stored.parent.mkdir(parents=True, exist_ok=True)
    stored.write_bytes(src.read_bytes())
    flac = add_job(store, audio_path="audio/x.flac", container="flac")
    assert jobs_page.playable_audio(settings, flac) == jobs_page.Playable(
        stored.read_bytes(), "audio/flac"
    )
    amr_like = add_job(store, audio_path="audio/x.flac", container="amr")  # not browser-playable
    player = jobs_page.playable_audio(settings, amr_like)
    assert player.mime == "audio/wav"
    with wave.open(io.BytesIO(player.data)) as w:
        assert (w.getframerate(), w.getnchannels()) == (16000, 1)
        assert abs(w.getnframes() - 16000) < 400
    gone = add_job(store, audio_path="audio/missing", sha="d")
    assert jobs_page.playable_audio(settings, gone).data is None


# --- the page ------------------------------------------------------------------------------
def test_jobs_page_on_an_empty_database(data_env):
    at = open_jobs_page()
    assert not at.exception
    assert at.title[0].value == "Jobs"
    assert any("No jobs yet" in i.value for i in at.info)


def test_jobs_page_filters_and_pages(data_env):
    store = web_process.store()
    for i in range(30):
        add_job(store, f"call-{i:02d}.wav", text="好。" if i % 2 else None)
    at = open_jobs_page()
    assert not at.exception
    table = at.dataframe[0].value
    assert len(table) == 25 and table["file"].iloc[0] == "call-29.wav"
    at.number_input[0].set_value(2).run()
    assert list(at.dataframe[0].value["file"]) == [f"call-{i:02d}.wav" for i in range(4, -1, -1)]
    at.selectbox[0].set_value("done").run()
    assert not at.exception
    assert "15 jobs match" in " ".join(c.value for c in at.caption)
    at.text_input[0].set_value("call-2").run()  # file name contains
    assert set(at.dataframe[0].value["file"]) == {f"call-2{i}.wav" for i in (1, 3, 5, 7, 9)}


def test_search_tab_shows_snippets_and_links(data_env):
    store = web_process.store()
    add_job(store, "budget.wav", text="我们讨论预算。好的。", sentences=TWO_SENTENCES)
    at = open_jobs_page()
    search_box = next(t for t in at.text_input if t.label == "Search all transcripts")
    search_box.set_value("预算").run()
    assert not at.exception
    assert any("**预算**" in m.value for m in at.markdown)
    search_box.set_value('NEAR(" *').run()
    assert not at.exception
    assert any("No transcript contains" in c.value for c in at.caption)


def test_job_detail_by_address(data_env):
    store = web_process.store()
    job = add_job(store, "budget.wav", text="我们讨论预算。好的。", sentences=TWO_SENTENCES)
    at = open_jobs_page(job=str(job.id), t="1700")
    assert not at.exception
    assert at.title[0].value == "Job 1: budget.wav"
    assert at.text_area[0].value == "我们讨论预算。好的。"
    assert any("At 00:01.500: 好的。" in i.value for i in at.info)
    assert {m.label for m in at.metric} >= {"Confidence", "Audio"}
    assert "The audio file is no longer stored" in " ".join(c.value for c in at.caption)


def test_job_detail_for_unknown_or_malformed_ids(data_env):
    at = open_jobs_page(job="424242")
    assert not at.exception
    assert "There is no job 424242" in at.error[0].value
    at = open_jobs_page(job="<script>")
    assert not at.exception
    assert "is not a job number" in at.warning[0].value
    assert at.title[0].value == "Jobs"


def test_cancel_retry_delete_from_the_detail_view(data_env):
    store = web_process.store()
    job = add_job(store, "q.wav")
    at = open_jobs_page(job=str(job.id))
    next(b for b in at.button if b.label == "Cancel job").click().run()
    assert store.get(job.id).state is JobState.CANCELLED
    next(b for b in at.button if b.label == "Retry job").click().run()
    assert store.get(job.id).state is JobState.QUEUED
    store.cancel(job.id)
    at.run()
    next(b for b in at.button if b.label == "Delete for good").click().run()
    assert not at.exception
    with pytest.raises(JobNotFoundError):
        store.get(job.id)


def test_zip_of_selection_matches_export_many(data_env):
    store = web_process.store()
    a = add_job(store, "a.wav", text="一。", sentences=[Sentence("一。", 1500, 2500)])
    data = jobs_page.jobs_with_sentences(store, [a.id])
    from engine import export

    with zipfile.ZipFile(io.BytesIO(export.export_many(data, "srt"))) as z:
        body = z.read(z.namelist()[0]).decode()
    assert "00:00:01,500 --> 00:00:02,500" in body


def test_hotword_presence_and_comparison(store):
    job = add_job(store, "h.wav", text="我们讨论预算。")  # effective hotwords: ["预算"]
    assert jobs_page.hotword_presence(job) == jobs_page.HotwordPresence(["预算"], ["预算"], [])
    without = dataclasses.replace(job, text="我们讨论与算。")
    result = jobs_page.compare(job, without)
    assert result.gained == ["预算"] and result.lost == [] and not result.identical
    assert "<del>与</del><ins>预</ins>" in result.diff_html
    assert jobs_page.compare(job, job).identical


def test_compare_without_hotwords_from_the_job_page(data_env):
    store = web_process.store()
    audio = data_env.data_dir / "audio" / "aa" / ("a" * 64)
    audio.parent.mkdir(parents=True, exist_ok=True)
    audio.write_bytes(b"RIFF")  # only its presence is checked before queueing
    job = add_job(store, "h.wav", text="我们讨论预算。<b>")
    at = open_jobs_page(job=str(job.id))
    assert "In the transcript: 预算" in [m.value for m in at.markdown]
    next(b for b in at.button if b.label == "Compare without hotwords").click().run()
    assert not at.exception
    rerun = store.comparison_for(job.id)
    assert rerun is not None and rerun.state is JobState.QUEUED
    claimed = store.claim("w", 30)
    assert claimed.id == rerun.id
    store.complete(
        rerun.id,
        "w",
        1,
        JobResult(
            text="我们讨论与算。<b>",
            raw_text="",
            confidence=0.5,
            sentences=[],
            effective_hotwords=[],
            duration_ms=3000,
            decode_ms=1,
            inference_ms=1,
            model_info={},
        ),
    )
    at.run()
    assert not at.exception
    texts = [m.value for m in at.markdown]
    assert "Gained: 预算" in texts and "Lost: none" in texts
    (diff,) = at.get("html")
    assert "<del>与</del><ins>预</ins>" in diff.proto.body and "&lt;b&gt;" in diff.proto.body


def test_a_guessed_audio_length_is_shown_as_an_estimate(store, settings):
    """Issue 12.1: until the worker has decoded the file, a length its header only guessed
    reads as an estimate in the job list and on the job page."""
    guessed = store.submit(
        NewJob("e" * 64, "audio/e", 10, "x.mp3", duration_ms=43_668, duration_estimated=True),
        queue_max=10,
        max_attempts=3,
    )
    stated = store.submit(
        NewJob("f" * 64, "audio/f", 10, "y.wav", duration_ms=2_000), queue_max=10, max_attempts=3
    )
    rows = {r["file"]: r for r in jobs_page.job_rows([guessed, stated], dt.timezone.utc)}
    assert rows["x.mp3"]["audio"] == "≈ 43.67 s (estimate)"
    assert rows["y.wav"]["audio"] == "2.00 s"
    assert "(estimate)" in jobs_page.audio_facts(guessed)


def test_the_job_page_shows_what_was_left_out_of_the_hotwords(data_env):
    """Issue 12.2: the job records which hotwords the model was not given, and the page
    says so."""
    store = web_process.store()
    job = store.submit(
        NewJob("a" * 64, "audio/a", 10, "a.wav", hotwords=("😀",),
               hotword_warnings=("Left out, the model cannot spell them: 😀.",)),
        queue_max=10, max_attempts=3,
    )  # fmt: skip
    at = open_jobs_page(job=str(job.id))
    at.run()
    assert not at.exception
    assert any("😀" in w.value for w in at.warning)
