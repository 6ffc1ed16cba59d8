"""Results that stay: Transcribe and Batch keep their job or batch in the address (`?job=`,
`?batch=`), so a reload or a shared link shows it again; the job heading links to the job's
page. Pages through AppTest over a real jobs.db (the browser's reload is in
test_browser_paths.py)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine import web_process
from engine.dashboard import formatting, jobs_page
from engine.intake import submit_batch
from tests.audio_fixtures import tone, write_audio
from tests.dashboard.test_jobs_page import TWO_SENTENCES, add_job

ROOT = Path(__file__).resolve().parents[2]


def page(name: str, **query: str) -> AppTest:
    """A page run as a fresh browser tab opening an address with `query`: no session state."""
    at = AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=30)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def address(at: AppTest, key: str) -> str | None:
    """What the page wrote into its address for `key` (AppTest holds a value or a list)."""
    value = at.query_params.get(key)
    return value[0] if isinstance(value, list) else value


def test_the_job_heading_links_to_its_page_with_the_name_escaped():
    job = type("J", (), {"id": 12, "original_name": "a_b [1].wav"})
    assert formatting.job_link(12) == "jobs?job=12"
    assert formatting.job_heading(job) == r"[Job 12: a\_b \[1\]\.wav](jobs?job=12)"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, jobs_page.BatchLink()),
        ({"batch": "3f2a9c01bd44"}, jobs_page.BatchLink(batch_id="3f2a9c01bd44")),
        ({"batch": " abc "}, jobs_page.BatchLink(batch_id="abc")),
        ({"batch": "<script>"}, jobs_page.BatchLink(problem="“<script>” is not a batch id.")),
        ({"batch": "x" * 65}, jobs_page.BatchLink(problem=f"“{'x' * 40}” is not a batch id.")),
    ],
)
def test_read_batch_link(params, expected):
    assert jobs_page.read_batch_link(params) == expected


def test_transcribe_shows_the_job_in_the_address_in_a_fresh_session(data_env):
    store = web_process.store()
    job = add_job(store, "预算 会议.wav", text="我们讨论预算。好的。", sentences=TWO_SENTENCES)
    at = page("transcribe", job=str(job.id))
    assert not at.exception
    assert at.subheader[0].value == f"[Job {job.id}: 预算 会议\\.wav](jobs?job={job.id})"
    assert at.text_area[0].value == "我们讨论预算。好的。"
    assert any(s.value.startswith("Done in") for s in at.success)
    assert address(at, "job") == str(job.id)


def test_transcribe_puts_the_session_s_job_back_into_the_address(data_env):
    job = add_job(web_process.store(), "a.wav", text="好。")
    at = AppTest.from_file(str(ROOT / "pages" / "transcribe.py"), default_timeout=30)
    at.session_state["transcribe_job"] = job.id  # came back through the sidebar's bare link
    at.run()
    assert not at.exception
    assert address(at, "job") == str(job.id)


def test_transcribe_follows_an_unfinished_job_and_says_when_one_is_gone(data_env):
    store = web_process.store()
    queued = add_job(store, "q.wav")
    at = page("transcribe", job=str(queued.id))
    assert not at.exception
    assert at.info[0].value.startswith("Queued: position 1")
    at = page("transcribe", job="424242")
    assert not at.exception and "There is no job 424242" in at.error[0].value
    at = page("transcribe", job="nope")
    assert not at.exception and any("is not a job number" in w.value for w in at.warning)
    assert not at.subheader


def test_batch_shows_the_batch_in_the_address_in_a_fresh_session(data_env, tmp_path):
    store, settings = web_process.store(), web_process.settings()
    wav = write_audio(tmp_path / "a.wav", tone(1.0), 16000, "wav").read_bytes()
    batch = submit_batch(store, settings, [(io.BytesIO(wav), f"{i}.wav") for i in range(2)])
    other = submit_batch(store, settings, [(io.BytesIO(wav), "x.wav")])
    at = page("batch", batch=batch.batch_id)
    assert not at.exception
    assert list(at.dataframe[0].value["file"]) == ["0.wav", "1.wav"]
    assert "0 of 2 finished" in at.get("progress")[0].proto.text
    assert at.selectbox(key="batch_choice").value == batch.batch_id
    # choosing another batch of the session puts it in the address
    at.query_params["batch"] = other.batch_id
    at.run()
    assert at.selectbox(key="batch_choice").value == other.batch_id
    at.selectbox(key="batch_choice").set_value(batch.batch_id).run()
    assert address(at, "batch") == batch.batch_id
    assert list(at.dataframe[0].value["file"]) == ["0.wav", "1.wav"]
    # each file's job number links to its page
    assert list(at.dataframe[0].value["job"]) == [
        formatting.job_link(j.id) for j in sorted(batch.accepted, key=lambda j: j.id)
    ]


def test_batch_with_an_unknown_or_malformed_id_says_so(data_env):
    at = page("batch", batch="0123456789ab")
    assert not at.exception
    assert "There is no batch 0123456789ab" in at.warning[0].value
    at = page("batch", batch="'; DROP")
    assert not at.exception
    assert "is not a batch id" in at.warning[0].value
    assert "appear here" in at.info[0].value
