"""Issue 16's dashboard fixes, on their engine functions (real jobs.db) and through AppTest:
chart time axes and the errors chart, the job page's actions and hotwords, audio facts,
hotwords split by a space, the Hotwords page's source line, upload limits, Capacity's window
before the service existed, and the names on the Live and Capacity pages."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from engine import web_process
from engine.dashboard import (
    formatting,
    jobs_page,
    operations_view,
    ops_aggregates,
    ops_charts,
    widgets,
)
from engine.hotwords import parse_hotwords
from engine.jobs import JobState
from engine.store import NewJob, now_ms
from tests.dashboard.test_jobs_page import add_job, open_jobs_page
from tests.ops_history import HOUR_MS, fill_soak

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = str(ROOT / "dashboard.py")
MINUTE_MS = 60_000


def page(path: str, **query: str) -> AppTest:
    at = AppTest.from_file(DASHBOARD, default_timeout=60)
    at.switch_page(path)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def spec(chart) -> dict:
    return json.loads(chart.to_json())


# --- charts ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("window", "count", "every"),
    [
        ("1 h", 4, "15 minutes"),
        ("24 h", 8, "3 hours"),
        ("72 h", 6, "12 hours"),
        ("7 d", 7, "1 day"),
    ],
)
def test_time_ticks_for_each_window(window, count, every):
    ticks = ops_charts.time_ticks(operations_view.WINDOWS[window])
    assert (ticks.count, ticks.every) == (count, every)
    # the span divided by the count is the interval Vega rounds to
    assert operations_view.WINDOWS[window] / count == pytest.approx(
        {"15 minutes": 15, "3 hours": 180, "12 hours": 720, "1 day": 1440}[every] * MINUTE_MS
    )


def test_time_axes_use_a_24_hour_clock_everywhere():
    end = pd.Timestamp("2026-03-10 17:20", tz="UTC")
    times = pd.date_range(end - pd.Timedelta(hours=24), end, periods=30)
    frame = pd.DataFrame({"time": times, "series": "cpu", "percent": range(30)})
    points = pd.DataFrame({"finished": times, "job": 1, "part": "processing", "seconds": 1.0})
    charts = [
        ops_charts.lines(frame, "percent", "%"),
        ops_charts.throughput(frame.assign(audio_h_per_h=0.5)),
        ops_charts.queue(frame[["time", "percent"]]),
        ops_charts.latency(points),
    ]
    for chart in charts:
        s = spec(chart)
        x = s["encoding"]["x"]
        labels = x["axis"]["format"]
        assert labels["hours"] == "%H:%M" and labels["date"] == "%m-%d"
        assert not any("%I" in f or "%p" in f for f in labels.values())
        assert x["axis"]["tickCount"] == 8  # 24 h of data
        tooltips = [t for t in s["encoding"]["tooltip"] if t.get("type") == "temporal"]
        assert tooltips and all(t["format"] == "%Y-%m-%d %H:%M:%S" for t in tooltips)


def test_a_window_fixes_the_time_axis_to_it():
    start, end = 1_800_000_000_000, 1_800_000_000_000 + 168 * HOUR_MS
    frame = pd.DataFrame(
        {"time": pd.to_datetime([end - HOUR_MS], unit="ms", utc=True), "series": "s", "p": [1.0]}
    )
    x = spec(ops_charts.lines(frame, "p", "%", window=(start, end)))["encoding"]["x"]
    assert x["axis"]["tickCount"] == 7  # the window's week, not the data's instant
    assert [pd.Timestamp(d).value // 10**6 for d in x["scale"]["domain"]] == [start, end]


def test_the_errors_chart_has_a_bar_per_class_on_a_whole_number_axis():
    frame = pd.DataFrame(
        {
            "error class": ["CorruptAudioError"],
            "jobs": [1],
            "latest": ["2026-03-10 10:00:00"],
            "latest job": [3],
            "latest message": ["bad"],
        }
    )
    s = spec(ops_charts.errors(frame))
    assert s["mark"]["type"] == "bar"
    assert s["height"] == {"step": ops_charts.BAR_STEP}  # one class still gets a visible bar
    assert s["encoding"]["y"]["field"] == "error class"
    assert s["encoding"]["x"]["axis"] == {"format": "d", "tickMinStep": 1}


# --- the job page ---------------------------------------------------------------------------
def test_audio_facts_name_a_codec_like_its_container_once(store):
    job = add_job(store, "a.mp3")
    mp3 = dataclasses.replace(job, container="mp3", codec="mp3", sample_rate=16000, channels=1)
    assert jobs_page.audio_facts(mp3).startswith("mp3 · 3.00 s · 16000 Hz")
    m4a = dataclasses.replace(mp3, container="mp4", codec="aac")
    assert jobs_page.audio_facts(m4a).startswith("mp4 · aac · 3.00 s")


def test_hotwords_of_a_job_that_never_ran_are_not_said_to_be_none(store):
    queued = store.submit(
        NewJob(
            audio_sha256="e" * 64,
            audio_path="audio/ee/" + "e" * 64,
            audio_bytes=10,
            original_name="x.wav",
            hotwords=["预算"],
        ),
        queue_max=10,
        max_attempts=3,
    )
    view = jobs_page.hotwords_view(queued)
    assert view.asked == ["预算"] and "when the job runs" in view.summary
    cancelled = jobs_page.hotwords_view(store.cancel(queued.id))
    assert cancelled.summary == "None: the job was cancelled before it ran."
    assert "ran without hotwords" not in cancelled.summary
    done = jobs_page.hotwords_view(add_job(store, "d.wav", text="讨论预算。", sha="f"))
    assert done.summary is None and done.presence.used == ["预算"]
    ran = dataclasses.replace(store.get(queued.id), started_at=1, state=JobState.FAILED)
    assert jobs_page.hotwords_view(ran).summary.startswith("Not recorded: the job failed")


def test_every_action_keeps_its_place_and_says_why_it_is_off(store):
    queued = add_job(store, "q.wav")
    assert jobs_page.action_states(queued) == {
        "cancel": None,
        "retry": "Only failed or cancelled jobs can be retried; this one is queued.",
        "delete": None,
    }
    cancelled = store.cancel(queued.id)
    assert jobs_page.action_states(cancelled)["cancel"] == "The job is cancelled."
    assert jobs_page.action_states(cancelled)["retry"] is None
    running = add_job(store, "r.wav", sha="b")
    store.claim("w", 30)
    states = jobs_page.action_states(store.get(running.id))
    assert states["delete"] == "A running job must be cancelled first." and not states["cancel"]


def test_the_job_page_shows_all_three_actions_whatever_the_state(data_env):
    store = web_process.store()
    job = add_job(store, "q.wav")
    for change in (None, lambda: store.cancel(job.id)):
        if change:
            change()
        at = open_jobs_page(job=str(job.id))
        assert not at.exception
        labels = [b.label for b in at.button if b.label in ("Cancel job", "Retry job")]
        assert labels == ["Cancel job", "Retry job"]
    disabled = {b.label: b.disabled for b in at.button if b.label.endswith(" job")}
    assert disabled == {"Cancel job": True, "Retry job": False}
    assert "None: the job was cancelled before it ran." in [c.value for c in at.caption]


# --- the Jobs list --------------------------------------------------------------------------
def test_the_list_refreshes_only_while_a_job_is_queued_or_running(store):
    done = add_job(store, "d.wav", text="好。")
    assert not jobs_page.has_unfinished(store)
    queued = add_job(store, "q.wav", sha="b")
    assert jobs_page.has_unfinished(store)
    store.claim("w", 30)
    assert jobs_page.has_unfinished(store)
    store.cancel(queued.id)
    assert jobs_page.has_unfinished(store)  # running until the worker gives it up
    assert store.cancel_running(queued.id, "w", 1)
    assert not jobs_page.has_unfinished(store) and done.state is JobState.DONE


def test_a_clicked_cell_names_its_row_s_job(store):
    jobs = [add_job(store, f"{i}.wav", sha=c) for i, c in enumerate("abc")]
    assert jobs_page.clicked_job(jobs, [(1, "file")]) == jobs[1].id
    assert jobs_page.clicked_job(jobs, [{"row": 2, "column": "job"}]) == jobs[2].id
    assert jobs_page.clicked_job(jobs, []) is None
    assert jobs_page.clicked_job(jobs, [(7, "file")]) is None  # redrawn with fewer rows


def test_the_jobs_table_shows_every_row_and_a_dash_for_missing_values(data_env):
    store = web_process.store()
    for i in range(30):
        add_job(store, f"call-{i:02d}.wav")
    at = open_jobs_page()
    table = at.dataframe[0]
    assert len(table.value) == 25
    assert table.proto.placeholder == "–"
    assert table.value["batch"].isna().all() and table.value["confidence"].isna().all()
    assert set(jobs_page.job_rows(store.list_jobs(limit=1), jobs_page.zone(None))[0]) >= {
        "batch",
        "confidence",
    }


# --- hotwords -------------------------------------------------------------------------------
KEEP = "A space separates hotwords; write {} to keep it one."
PHRASE = "A space separates hotwords: the model cannot take a phrase."


@pytest.mark.parametrize(
    ("typed", "notes"),
    [
        ("开 会", ["“开 会” became 2 hotwords: 开, 会. " + KEEP.format("开会")]),
        ("科哥 阿里", []),  # a space-separated list, as documented
        (
            "科哥 阿里, 预算",
            ["“科哥 阿里” became 2 hotwords: 科哥, 阿里. " + KEEP.format("科哥阿里")],
        ),
        ("Open AI\n预算", ["“Open AI” became 2 hotwords: Open, AI. " + PHRASE]),
        ("科哥, Paraformer；阿里", []),
        ("", []),
    ],
)
def test_a_hotword_split_by_a_space_is_shown(typed, notes):
    assert formatting.hotword_split_notes(typed) == notes
    if typed == "开 会":  # what is stored is the split, as the note says
        assert parse_hotwords(typed) == ["开", "会"]


def test_the_hotwords_page_says_where_the_list_comes_from_after_a_save(data_env):
    at = AppTest.from_file(str(ROOT / "pages" / "hotwords.py"), default_timeout=30).run()
    assert "From SEACO_HOTWORDS (empty) until edited here." == at.caption[0].value
    at.text_area[0].input("开 会\n预算")
    at.button[0].click().run()
    assert not at.exception
    assert at.caption[0].value.startswith("Edited here")  # in the same run as the save
    assert "SEACO_HOTWORDS no longer applies" in at.caption[0].value
    assert any("write 开会 to keep it one" in i.value for i in at.info)


# --- uploads --------------------------------------------------------------------------------
def test_upload_boxes_state_the_configured_limit(data_env, monkeypatch):
    monkeypatch.setenv("SEACO_MAX_UPLOAD_MB", "300")
    web_process.settings.cache_clear()
    for path, label in (
        ("pages/transcribe.py", "Audio or video file (up to 300 MB each)"),
        ("pages/batch.py", "Audio or video files (up to 300 MB each)"),
    ):
        at = page(path)
        assert not at.exception
        uploader = at.get("file_uploader")[0]
        assert uploader.proto.label == label
        assert uploader.proto.max_upload_size_mb == 300 or "300" in str(uploader.proto)


# --- Capacity -------------------------------------------------------------------------------
def test_service_start_is_its_earliest_record(store):
    assert widgets.service_start_ms(store) is None
    first = add_job(store, "a.wav", submitted_at=5_000_000)
    add_job(store, "b.wav", submitted_at=9_000_000, sha="b")
    assert widgets.service_start_ms(store) == first.submitted_at == 5_000_000
    store.add_probe(at=4_000_000, healthy=True, http_status=200, status="ok", latency_ms=3)
    assert widgets.service_start_ms(store) == 4_000_000
    store.register_worker("w-old", 1, "host")
    assert widgets.service_start_ms(store) == 4_000_000  # a worker started now is later


def test_a_window_starts_no_earlier_than_the_service(store):
    win = operations_view.Window(1_000, 10_000, "last 7 d")
    assert widgets.clip_window(win, None) == (win, False)
    assert widgets.clip_window(win, 500) == (win, False)
    assert widgets.clip_window(win, 4_000) == (
        operations_view.Window(4_000, 10_000, "last 7 d"),
        True,
    )
    assert widgets.clip_window(win, 50_000)[0] == operations_view.Window(9_999, 10_000, "last 7 d")


def test_capacity_plots_nothing_before_the_service_existed(data_env):
    end = now_ms()
    fill_soak(web_process.store(), end, hours=24)  # a service 24 h old, viewed over 7 d
    at = page("pages/capacity.py")
    assert not at.exception
    caption = next(c.value for c in at.caption if c.value.startswith("last 7 d"))
    assert "from the service's first record" in caption
    chart = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    start, stop = (
        pd.Timestamp(d).value // 10**6 for d in chart["encoding"]["x"]["scale"]["domain"]
    )
    assert stop - start <= 24 * HOUR_MS + 2 * MINUTE_MS  # not 7 days with 6 of them at 0 %


# --- honest names ---------------------------------------------------------------------------
def test_live_says_it_records_then_transcribes(data_env):
    at = page("pages/live.py")
    assert not at.exception
    assert at.title[0].value == "Live recording: record, then transcribe"
    assert "not streaming" in at.caption[0].value


def test_capacity_names_clip_sources_for_what_they_are():
    model = ops_aggregates.fit_service([10, 20, 30, 40], [1.5, 2.5, 3.5, 4.5])
    streams = ops_aggregates.max_streams(model, 10, 5)
    text = ops_aggregates.clip_sources_sentence(streams, 10, 5)
    assert f"**{streams.streams}** sources, each sending a 10 s clip every 10 s" in text
    assert "real-time stream" not in text and "no streaming recognition" in text
    assert "real-time streams are" not in ops_aggregates.CAPACITY_METHOD.lower()


def test_the_sidebar_links_the_api_docs(data_env):
    at = AppTest.from_file(DASHBOARD, default_timeout=30).run()
    assert not at.exception
    assert any("(api/docs)" in m.value for m in at.sidebar.markdown)
