"""Page logic through Streamlit's AppTest, over a real (empty or filled) jobs.db."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from engine import web_process
from engine.jobs import Sentence
from engine.store import JobResult, NewJob

ROOT = Path(__file__).resolve().parents[2]


def test_dashboard_renders_the_transcribe_page_on_an_empty_database(data_env):
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=30).run()
    assert not at.exception
    assert at.title[0].value == "Transcribe a file"
    assert any("No worker" in c.value for c in at.sidebar.caption)
    assert any("Models are not loaded" in w.value for w in at.warning)


def test_submitting_without_a_file_says_so(data_env):
    at = AppTest.from_file(str(ROOT / "pages" / "transcribe.py"), default_timeout=30).run()
    at.button[0].click().run()
    assert not at.exception
    assert at.error[0].value == "Choose a file first."


def test_transcribe_page_shows_a_finished_job(data_env):
    store = web_process.store()
    job = store.submit(
        NewJob(
            audio_sha256="a" * 64,
            audio_path="audio/aa/" + "a" * 64,
            audio_bytes=10,
            original_name="meeting.wav",
            duration_ms=3000,
        ),
        queue_max=20,
        max_attempts=3,
    )
    store.claim("w", 30)
    store.complete(
        job.id,
        "w",
        1,
        JobResult(
            text="今天天气很好。",
            raw_text="今天天气很好",
            confidence=0.75,
            sentences=[Sentence("今天天气很好。", 120, 2900)],
            effective_hotwords=["天气"],
            duration_ms=3000,
            decode_ms=4,
            inference_ms=90,
            model_info={},
        ),
    )
    at = AppTest.from_file(str(ROOT / "pages" / "transcribe.py"), default_timeout=30)
    at.session_state["transcribe_job"] = job.id
    at.run()
    assert not at.exception
    assert at.text_area[0].value == "今天天气很好。"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Confidence"] == "0.75" and metrics["Audio"] == "3.00 s"
    assert "Hotwords used: 天气" in at.caption[-1].value or any(
        "天气" in c.value for c in at.caption
    )


def test_system_page_lists_checks_and_settings(data_env):
    at = AppTest.from_file(str(ROOT / "pages" / "system.py"), default_timeout=30).run()
    assert not at.exception
    assert at.title[0].value == "System"
    settings_table = at.dataframe[-1].value
    assert "SEACO_QUEUE_MAX" in set(settings_table["setting"])
