"""Issue 12.1 through a real `seaco serve`: an upload whose header only guesses its length
(an MP3 without a Xing frame: ~44 s guessed for 15.1 s of audio) is accepted under
SEACO_MAX_DURATION_S=30 on both APIs, shown as an estimate while it waits, and finished with
its decoded length; a file really over the limit still fails, when decoding proves it."""

from __future__ import annotations

import pytest
import requests

from tests.audio_fixtures import mp3_without_xing
from tests.conftest import model_overrides
from tests.procs import get_health, serve, stop, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def service(tmp_path_factory, tiny_models):
    tmp = tmp_path_factory.mktemp("estimate")
    # decode_ahead 0: the worker decodes when it starts the job, so "queued" still shows the
    # upload's guess when the test reads it
    _settings, proc, base = serve(
        tmp, "data", **model_overrides(tiny_models), max_duration_s="30", decode_ahead="0"
    )
    try:
        wait_for(lambda: get_health(base)[1].get("status") == "ok", timeout=180)
        yield base, tmp
    finally:
        assert stop(proc) == 0
        assert "Traceback" not in (tmp / "data.log").read_text()


def _job(base: str, job_id: int) -> dict:
    return requests.get(f"{base}/api/v1/jobs/{job_id}", timeout=10).json()


def test_jobs_api_accepts_a_guessed_length_and_records_the_real_one(service):
    base, tmp = service
    path = mp3_without_xing(tmp / "x.mp3")
    with path.open("rb") as f:
        response = requests.post(f"{base}/api/v1/jobs", files={"file": ("x.mp3", f)}, timeout=30)
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["duration_estimated"] is True and accepted["duration_ms"] > 30_000

    done = wait_for(
        lambda: (job := _job(base, accepted["id"]))["state"] in ("done", "failed") and job,
        timeout=120,
    )
    assert done["state"] == "done", done["error"]
    assert abs(done["duration_ms"] - 15_080) <= 100
    assert done["duration_estimated"] is False


def test_openai_api_accepts_a_guessed_length(service):
    base, tmp = service
    path = mp3_without_xing(tmp / "x2.mp3", silence_s=5.0, noise_s=10.0)
    with path.open("rb") as f:
        response = requests.post(
            f"{base}/v1/audio/transcriptions",
            files={"file": ("x2.mp3", f)},
            data={"model": "seaco-paraformer", "response_format": "verbose_json"},
            timeout=120,
        )
    assert response.status_code == 200, response.text
    assert abs(response.json()["duration"] - 15.08) <= 0.1


def test_a_file_really_over_the_limit_fails_when_decoding_proves_it(service):
    base, tmp = service
    path = mp3_without_xing(tmp / "long.mp3", silence_s=5.0, noise_s=30.0)
    with path.open("rb") as f:
        response = requests.post(f"{base}/api/v1/jobs", files={"file": ("long.mp3", f)}, timeout=30)
    assert response.status_code == 202, response.text  # its guess is no reason to refuse
    job_id = response.json()["id"]
    failed = wait_for(
        lambda: (job := _job(base, job_id))["state"] in ("done", "failed") and job,
        timeout=120,
    )
    assert failed["state"] == "failed"
    assert "longer than the limit of 30.0 s" in failed["error"]
