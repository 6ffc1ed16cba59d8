"""The Operations, Stability and Capacity pages: their engine functions on a synthetic
72-hour history with known answers (written through the real store), and every page through
AppTest on an empty database and on that history."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine import web_process
from engine.dashboard import operations_view, stability
from engine.store import now_ms
from tests.ops_history import HOUR_MS, fill_soak

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = str(ROOT / "dashboard.py")
PAGES = ("pages/operations.py", "pages/stability.py", "pages/capacity.py")
EVERY_PAGE = re.findall(r'st\.Page\("([^"]+)"', (ROOT / "dashboard.py").read_text())


def page(path: str) -> AppTest:
    """A page inside the dashboard, as the navigation runs it."""
    at = AppTest.from_file(DASHBOARD, default_timeout=60)
    at.switch_page(path)
    return at.run()


# --- engine functions on a known history ----------------------------------------------------
def test_stability_report_on_a_72_hour_soak(store, settings):
    end = now_ms()
    soak = fill_soak(store, end)
    win = operations_view.window("72 h", now=end)
    report = stability.stability(store, settings, win)
    rows = {r["metric"]: r for r in report.rows}

    assert report.availability.probes == soak.probes == 72 * 60
    assert report.availability.healthy == soak.probes - 3
    assert rows["Availability"]["value"] == f"{(soak.probes - 3) / soak.probes * 100:.2f} %"
    assert rows["Job success rate"]["detail"] == "215 done, 1 failed, 0 cancelled"
    assert rows["Worst queue delay"] == {
        "metric": "Worst queue delay",
        "value": "40.0 s",
        "detail": f"job {soak.worst_wait_job}",
    }
    assert rows["Slowest job"]["detail"].startswith(f"job {soak.slowest_job}:")
    assert {t.verdict for t in report.trends.values()} == {"flat"}
    assert rows["VRAM min / max"]["value"] == "9,216 MB / 9,222 MB"

    kinds = [i["kind"] for i in report.incidents]
    assert kinds.count("unhealthy") == 1 and kinds.count("job failed") == 1
    outliers = [i for i in report.incidents if i["kind"] == "outlier"]
    assert [o["detail"].split(":")[0] for o in outliers] == [f"job {soak.outlier_job}"]
    assert "alert.gpu_memory" in kinds
    assert [i["time"] for i in report.incidents] == sorted(i["time"] for i in report.incidents)

    markdown = stability.stability_markdown(report)
    assert "| Availability | 99.93 % |" in markdown and "## Incidents" in markdown
    assert "least-squares" in markdown  # the method is stated
    table = list(csv.reader(io.StringIO(stability.stability_csv(report))))
    assert table[0] == ["section", "time or metric", "value or kind", "detail"]
    assert ["metric", "Job success rate", "99.54 %", "215 done, 1 failed, 0 cancelled"] in table
    assert sum(row[0] == "incident" for row in table) == len(report.incidents)


def test_operations_numbers_on_a_known_history(store, settings):
    end = now_ms()
    soak = fill_soak(store, end, hours=24)
    h = operations_view.load_history(store, operations_view.window("24 h", now=end))
    latency = operations_view.latency_table(h).set_index("measure")
    # 71 done jobs: waits of 0.2 s but one of 40 s; processing 6.0/6.1/6.2 s, one 60.2 s
    assert latency.loc["queue wait", "jobs"] == soak.done == 71
    assert latency.loc["queue wait", "p50"] == 0.2 and latency.loc["queue wait", "max"] == 40.0
    assert latency.loc["processing", "p50"] == 6.1
    errors = operations_view.errors_by_class(h)
    assert list(errors["error class"]) == ["CorruptAudioError"]
    assert errors.loc[0, "latest message"] == "The file is damaged."
    # 71 x 60 s of audio in 24 h
    assert operations_view.throughput(h) == pytest.approx(71 * 60 / (24 * 3600))
    assert [e for e in operations_view.ops_events(h)["kind"]] == [
        "alert.gpu_memory",
        "maintenance.temp_cleanup",
    ]
    assert operations_view.cpu_mode_note(h) is None


def test_cpu_mode_history_says_so(store, settings):
    end = now_ms()
    fill_soak(store, end, hours=2, gpu=False)
    h = operations_view.load_history(store, operations_view.window("24 h", now=end))
    assert "CPU mode" in operations_view.cpu_mode_note(h)
    assert set(operations_view.memory_series(h)["series"]) == {"worker RSS", "RAM, machine"}
    rows = {r["metric"]: r["value"] for r in stability.stability(store, settings, h.window, h).rows}
    assert rows["VRAM trend"] == "CPU mode" and rows["VRAM min / max"] == "–"


def test_capacity_from_measured_jobs(store):
    end = now_ms()
    fill_soak(store, end, hours=24)
    win = operations_view.window("24 h", now=end)
    report = operations_view.capacity(store, win, chunk_s=10, target_latency_s=5, arrivals_per_h=60)
    m = report.model
    assert m is not None and m.n == 71
    assert m.sustainable_audio_per_hour == pytest.approx(m.audio_s / m.processing_s)
    assert report.utilisation == pytest.approx(60 / 3600 * m.mean_s)
    assert 0 < report.queue_wait_s < 60
    assert report.streams.streams >= 1
    facts = operations_view.capacity_facts(report)
    assert facts["Jobs measured"] == "71"
    busy = report.busy[report.busy["series"] == "worker busy"]
    assert busy["percent"].between(0, 100).all() and busy["percent"].max() > 0


def test_windows():
    now = 1_800_000_000_000
    assert operations_view.window("1 h", now=now) == operations_view.Window(
        now - HOUR_MS, now, "last 1 h"
    )
    assert operations_view.window("7 d", now=now).span_ms == 168 * HOUR_MS
    assert operations_view.window("7 d", now=now).bucket_ms == HOUR_MS // 2  # 336 points
    assert operations_view.window("1 h", now=now).bucket_ms == 10_000  # 360 points
    utc = dt.timezone.utc
    day = dt.date(2026, 1, 2)
    w = operations_view.window("custom", now=now, days=(day,), tz=utc)
    assert (w.start_ms, w.span_ms) == (
        int(dt.datetime(2026, 1, 2, tzinfo=utc).timestamp() * 1000),
        24 * HOUR_MS,
    )
    with pytest.raises(ValueError, match="unknown window"):
        operations_view.window("3 weeks", now=now)


# --- the pages ------------------------------------------------------------------------------
@pytest.mark.parametrize("path", PAGES)
def test_page_renders_on_an_empty_database(data_env, path):
    at = page(path)
    assert not at.exception, at.exception
    assert at.title[0].value in ("Operations", "Stability", "Capacity")


@pytest.mark.parametrize("path", PAGES)
def test_page_renders_72_hours_of_history(data_env, path):
    fill_soak(web_process.store(), now_ms())
    at = page(path)
    assert not at.exception, at.exception
    if path == "pages/operations.py":
        assert {m.label: m.value for m in at.metric}["Jobs done"] == "71"  # default window 24 h
        at.segmented_control(key="ops_window").set_value("72 h").run()
        assert not at.exception
        assert {m.label: m.value for m in at.metric}["Jobs done"] == "215"
    if path == "pages/stability.py":
        table = at.table[0].value
        assert "Availability" in set(table["metric"])
    if path == "pages/capacity.py":
        labels = {m.label for m in at.metric}
        assert labels >= {"Sustainable load (audio h/h)", "Clip sources at target"}


@pytest.mark.parametrize("path", EVERY_PAGE)
def test_every_page_of_the_dashboard_renders_with_72_hours_of_history(data_env, path):
    fill_soak(web_process.store(), now_ms())
    assert not page(path).exception


def test_custom_window_on_the_operations_page(data_env):
    fill_soak(web_process.store(), now_ms(), hours=3)
    at = page("pages/operations.py")
    at.segmented_control(key="ops_window").set_value("custom").run()
    assert not at.exception
    assert at.date_input(key="ops_days")
