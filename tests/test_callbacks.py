"""Job-completion callbacks: URL checks, delivery to a real HTTP receiver with signatures,
retries with growing delays, giving up, and the whole path through `seaco serve`."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from engine import callbacks
from engine.dashboard import jobs_page
from engine.errors import InvalidCallbackUrlError
from engine.jobs import JobState, Sentence
from engine.store import JobResult, NewJob
from tests.audio_fixtures import tone, write_audio
from tests.conftest import make_settings, model_overrides
from tests.procs import get_health, serve, stop, wait_for


@pytest.fixture
def receiver(http_receiver):
    return http_receiver


def queue(store, callback_url: str | None, name: str = "call.wav"):
    return store.submit(
        NewJob(
            audio_sha256="a" * 64,
            audio_path="audio/aa/a",
            audio_bytes=1,
            original_name=name,
            duration_ms=900,
            callback_url=callback_url,
        ),
        queue_max=20,
        max_attempts=3,
    )


def finish(store, job, text="今天天气很好。"):
    claimed = store.claim("w", 30)
    assert claimed.id == job.id
    store.complete(
        job.id,
        "w",
        1,
        JobResult(
            text=text,
            raw_text=text,
            confidence=0.9,
            sentences=[Sentence(text, 0, 900)],
            effective_hotwords=[],
            duration_ms=900,
            decode_ms=1,
            inference_ms=5,
            model_info={},
        ),
    )


# --- checking the URL -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/x", "http:// or https://"),
        ("https:///no-host", "http:// or https://"),
        ("example.com/done", "http:// or https://"),
        ("https://example.com/a b", "spaces or control characters"),
        ("https://example.com/\x00", "spaces or control characters"),
        ("https://example.com:http/", "not a valid URL"),
        ("https://example.com/" + "x" * 2000, "longer than 2000"),
    ],
)
def test_bad_callback_urls_are_refused_with_the_reason(tmp_path, url, message):
    with pytest.raises(InvalidCallbackUrlError, match=message):
        callbacks.check_callback_url(url, make_settings(tmp_path))


def test_callback_hosts_limit_where_the_server_may_call(tmp_path):
    open_settings = make_settings(tmp_path)
    assert callbacks.check_callback_url(None, open_settings) is None
    assert callbacks.check_callback_url("  ", open_settings) is None
    assert callbacks.check_callback_url(" http://10.0.0.5/x ", open_settings) == "http://10.0.0.5/x"
    limited = make_settings(tmp_path, callback_hosts="hooks.example.com, Other.Example")
    assert callbacks.check_callback_url("https://HOOKS.example.com/a", limited)
    assert callbacks.check_callback_url("https://other.example:8443/a", limited)
    with pytest.raises(InvalidCallbackUrlError, match="'169.254.169.254' is not one"):
        callbacks.check_callback_url("http://169.254.169.254/latest/meta-data", limited)


# --- delivery -------------------------------------------------------------------------------
def test_a_finished_job_is_posted_once_signed(tmp_path, store, receiver):
    settings = make_settings(tmp_path, callback_secret="s3cret")
    job = queue(store, receiver.url)
    other = queue(store, None, name="no-callback.wav")
    assert callbacks.deliver_due(store, settings) == []  # queued: nothing to say yet
    finish(store, job)

    [attempt] = callbacks.deliver_due(store, settings)
    assert (attempt.job_id, attempt.attempt, attempt.status, attempt.error) == (
        job.id,
        1,
        204,
        None,
    )
    [(path, headers, body)] = receiver.received
    assert path == "/asr-done"
    sent = json.loads(body)
    assert (sent["id"], sent["state"], sent["text"]) == (job.id, "done", "今天天气很好。")
    assert sent["sentences"] == [{"text": "今天天气很好。", "start_ms": 0, "end_ms": 900}]
    assert "audio_path" not in sent and "lease_owner" not in sent
    assert headers["X-Seaco-Event"] == "job.done" and headers["X-Seaco-Job"] == str(job.id)
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["X-Seaco-Signature"] == expected

    assert callbacks.deliver_due(store, settings) == []  # delivered: never again
    view = callbacks.callback_view(store.callback_for(job.id))
    assert view["state"] == "delivered" and view["last_status"] == 204
    assert store.callback_for(other.id) is None


def test_failures_are_retried_later_then_given_up_with_an_event(tmp_path, store, receiver):
    settings = make_settings(tmp_path)
    receiver.status = 500
    job = queue(store, receiver.url)
    store.cancel(job.id)  # a cancelled job is announced too
    now = 1_000_000_000_000
    [first] = callbacks.deliver_due(store, settings, now=now)
    assert (first.status, first.error) == (500, "HTTP 500")
    assert callbacks.deliver_due(store, settings, now=now + 29_000) == []  # not yet
    delays = callbacks.ATTEMPT_DELAYS_S
    at = now
    for number, delay in enumerate(delays, start=2):
        at += delay * 1000
        [attempt] = callbacks.deliver_due(store, settings, now=at)
        assert attempt.attempt == number
    assert attempt.gave_up and attempt.attempt == callbacks.MAX_ATTEMPTS
    assert len(receiver.received) == callbacks.MAX_ATTEMPTS
    assert json.loads(receiver.received[0][2])["state"] == "cancelled"
    assert callbacks.deliver_due(store, settings, now=at + 10**9) == []
    assert callbacks.callback_view(store.callback_for(job.id))["state"] == "failed"
    event = store.events(1)[0]
    assert event["kind"] == "callback.failed" and event["job_id"] == job.id
    assert "after 6 attempts: HTTP 500" in event["message"]

    # retrying the job announces its new end afresh
    store.retry(job.id, queue_max=20)
    receiver.status = 200
    finish(store, job)
    [again] = callbacks.deliver_due(store, settings)
    assert (again.attempt, again.error) == (1, None)


def test_a_redirect_is_not_followed_and_a_closed_port_is_an_error(tmp_path, store, receiver):
    settings = make_settings(tmp_path)
    receiver.status = 302
    redirected = queue(store, receiver.url)
    finish(store, redirected)
    [attempt] = callbacks.deliver_due(store, settings)
    assert attempt.error == "HTTP 302"
    assert [r[0] for r in receiver.received] == ["/asr-done"]  # /elsewhere never called

    closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = closed.server_address[1]
    closed.server_close()  # nothing listens there now
    refused = queue(store, f"http://127.0.0.1:{port}/x", name="b.wav")
    store.cancel(refused.id)
    [attempt] = callbacks.deliver_due(store, settings)
    assert attempt.job_id == refused.id and attempt.status is None
    assert "refused" in attempt.error.lower()


def test_the_job_page_says_how_the_callback_went(tmp_path, store, receiver):
    utc = dt.timezone.utc
    settings = make_settings(tmp_path)
    job = queue(store, receiver.url)
    assert jobs_page.callback_line(store, job, utc).endswith(": sent when the job ends.")
    receiver.status = 503
    finish(store, job)
    callbacks.deliver_due(store, settings, now=0)
    assert "attempt 1 failed (HTTP 503); next try 1970-01-01 00:00:30" in (
        jobs_page.callback_line(store, store.get(job.id), utc)
    )
    receiver.status = 200
    callbacks.deliver_due(store, settings, now=30_000)
    assert "delivered 1970-01-01 00:00:30 (HTTP 200)" in jobs_page.callback_line(store, job, utc)
    assert jobs_page.callback_line(store, queue(store, None, name="n.wav"), utc) is None


def test_deleting_a_job_drops_its_callback(store, receiver):
    job = queue(store, receiver.url)
    store.cancel(job.id)
    store.delete_job(job.id)
    assert store.callback_for(job.id) is None
    assert store.callbacks_due() == []


# --- through the service --------------------------------------------------------------------
@pytest.mark.slow
def test_api_jobs_announce_their_end_through_the_worker(tmp_path, tiny_models, receiver):
    cfg, proc, base = serve(tmp_path, "cb", **model_overrides(tiny_models), callback_secret="k")
    try:
        wait_for(lambda: get_health(base)[1].get("status") == "ok", timeout=180)
        clip = write_audio(tmp_path / "c.wav", tone(1.0), 16000, "wav").read_bytes()
        bad = requests.post(
            f"{base}/api/v1/jobs",
            files={"file": ("c.wav", clip)},
            data={"callback_url": "file:///etc/passwd"},
            timeout=60,
        )
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_callback_url"
        assert requests.get(f"{base}/api/v1/jobs", timeout=10).json()["total"] == 0

        answer = requests.post(
            f"{base}/api/v1/jobs",
            files={"file": ("c.wav", clip)},
            data={"callback_url": receiver.url},
            timeout=60,
        )
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["id"]
        assert answer.json()["callback"]["state"] == "pending"
        wait_for(lambda: receiver.received, timeout=180, what="the callback")
        _path, headers, body = receiver.received[0]
        sent = json.loads(body)
        assert sent["id"] == job_id and sent["state"] == JobState.DONE.value
        assert headers["X-Seaco-Signature"] == (
            "sha256=" + hmac.new(b"k", body, hashlib.sha256).hexdigest()
        )
        wait_for(
            lambda: (
                requests.get(f"{base}/api/v1/jobs/{job_id}", timeout=10).json()["callback"]["state"]
                == "delivered"
            ),
            timeout=60,
        )
        assert (
            sent["text"] == requests.get(f"{base}/api/v1/jobs/{job_id}", timeout=10).json()["text"]
        )
    finally:
        assert stop(proc) == 0
