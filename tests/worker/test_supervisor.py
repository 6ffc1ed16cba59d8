"""`seaco serve` as a real process tree: supervisor, web (Streamlit + /health) and worker,
checked over real HTTP and, for the Transcribe page, in a real headless Chromium. No process
outlives the one that started it: a killed worker's decode-ahead process ends with it, and
after `seaco stop` no process of the instance is left."""

from __future__ import annotations

import os
import shutil
import signal

import pytest

from engine.intake import submit_upload
from engine.jobs import JobState
from engine.store import open_store
from tests.audio_fixtures import speech_file, tone, write_audio
from tests.conftest import model_overrides
from tests.procs import (
    decode_helpers_of,
    freeze_outside_a_write,
    get_health,
    instance_processes,
    seaco_stop,
    serve,
    stop,
    wait_for,
)

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium")


@pytest.fixture(scope="module")
def service(tmp_path_factory, tiny_models):
    tmp_path = tmp_path_factory.mktemp("serve")
    settings, proc, base_url = serve(
        tmp_path, "data", **model_overrides(tiny_models),
    )  # fmt: skip
    try:
        wait_for(lambda: get_health(base_url)[1].get("status") == "ok", timeout=180,
                 what="/health to say ok")  # fmt: skip
        yield settings, proc, base_url, tmp_path
        assert seaco_stop(settings) == "stopped"
        assert proc.wait(timeout=60) == 0
        wait_for(lambda: not instance_processes(settings), timeout=30,
                 what="every process of the stopped instance to end")  # fmt: skip
    finally:
        assert stop(proc) == 0
        assert not (settings.data_dir / "seaco.pid").exists()
        assert "Traceback" not in (tmp_path / "data.log").read_text()


def test_health_is_ok_with_every_check(service):
    _settings, _proc, base_url, _ = service
    status, report = get_health(base_url)
    assert status == 200 and report["status"] == "ok", report
    assert set(report["checks"]) == {"database", "worker", "model", "queue", "disk"}
    assert report["checks"]["model"]["random_weights"] is True


def test_the_supervisor_restarts_a_killed_worker(service):
    settings, _proc, base_url, tmp_path = service
    store = open_store(settings.db_path)
    old = store.latest_worker()
    # three jobs queued while the worker is frozen: it finds two queued behind the first and
    # has them decoded ahead, by a process that then waits for more until its worker goes
    jobs = []
    freeze_outside_a_write(old["pid"], settings.db_path)
    try:
        for i in range(3):
            clip = write_audio(tmp_path / f"restart-{i}.wav", tone(1, freq=300 + i), 16000, "wav")
            with open(clip, "rb") as stream:
                jobs.append(submit_upload(store, settings, stream, clip.name).id)
    finally:
        os.kill(old["pid"], signal.SIGCONT)
    wait_for(lambda: all(store.get(j).state is JobState.DONE for j in jobs), timeout=120)
    assert decode_helpers_of(old["pid"])
    os.kill(old["pid"], signal.SIGKILL)
    wait_for(lambda: not decode_helpers_of(old["pid"]), timeout=30,
             what="the killed worker's decode-ahead process to end")  # fmt: skip
    new = wait_for(
        lambda: (w := store.latest_worker())["pid"] != old["pid"] and w["model_loaded"] and w,
        timeout=120, what="a restarted worker with its models loaded",
    )  # fmt: skip
    assert new["state"] in ("ready", "busy")
    wait_for(lambda: get_health(base_url)[1].get("status") == "ok", timeout=60)


def test_unloadable_models_leave_the_service_up_and_degraded(tmp_path):
    settings, proc, base_url = serve(tmp_path, "broken", asr_model=str(tmp_path / "missing"))
    try:
        status, report = wait_for(
            lambda: (r := get_health(base_url))[1].get("checks", {}).get("model", {})
            .get("detail", "").startswith("Models could not be loaded") and r,
            timeout=120, what="the model error in /health",
        )  # fmt: skip
        assert status == 200 and report["status"] == "degraded"
        assert str(tmp_path / "missing") in report["checks"]["model"]["detail"]
        assert proc.poll() is None
    finally:
        assert stop(proc) == 0


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_transcribe_page_uploads_an_mp3_and_shows_its_transcript(service, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    settings, _proc, base_url, _ = service
    mp3 = speech_file(tmp_path, "mp3")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update"],
        )  # fmt: skip
        try:
            page = browser.new_page()
            page.goto(base_url)
            page.get_by_role("heading", name="Transcribe a file").wait_for(timeout=60_000)
            page.locator("input[type=file]").set_input_files(str(mp3))
            page.get_by_role("textbox", name="Hotwords (optional)").fill("天气")
            page.get_by_role("button", name="Transcribe").click()
            expect(page.get_by_text("Done in")).to_be_visible(timeout=120_000)
            transcript = page.get_by_role("textbox", name="Transcript")
            expect(transcript).not_to_have_value("")
            expect(page.get_by_text("Real-time factor")).to_be_visible()
            page.screenshot(path=str(tmp_path / "transcribe.png"), full_page=True)
        finally:
            browser.close()
    jobs = open_store(settings.db_path).list_jobs()
    assert jobs[0].original_name == mp3.name and jobs[0].state.value == "done"
    assert jobs[0].hotwords == ["天气"]


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_batch_page_queues_three_files_and_all_finish(service, tmp_path):
    from playwright.sync_api import expect

    from tests.browser import browser_page

    _settings, _proc, base_url, _ = service
    files = []
    for i in range(3):
        (tmp_path / f"b{i}").mkdir()
        files.append(str(speech_file(tmp_path / f"b{i}", "mp3")))
    with browser_page() as page:
        page.goto(base_url + "/batch")
        page.get_by_role("heading", name="Batch transcription").wait_for(timeout=60_000)
        page.locator("input[type=file]").set_input_files(files)
        page.get_by_role("button", name="Queue batch").click()
        expect(page.get_by_text("Queued 3 files")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("3 of 3 finished")).to_be_visible(timeout=120_000)
        expect(page.get_by_text("3 done")).to_be_visible()


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_live_page_records_the_microphone_and_shows_the_transcript(service, tmp_path):
    from playwright.sync_api import expect

    from tests.browser import browser_page

    settings, _proc, base_url, _ = service
    wav = speech_file(tmp_path, "wav", "jin1 tian1 tian1 qi4 hen3 hao3 wo3 men5 qu4 gong1 yuan2")
    with browser_page(microphone_wav=str(wav)) as page:
        page.context.grant_permissions(["microphone"])
        page.goto(base_url + "/live")
        page.get_by_role("heading", name="Live recording").wait_for(timeout=60_000)
        page.get_by_role("button", name="Record", exact=True).click()  # not "Transcribe recording"
        page.wait_for_timeout(2_000)  # the length of the recording, not synchronisation
        page.get_by_role("button", name="Stop recording").click()
        transcribe = page.get_by_role("button", name="Transcribe recording")
        expect(transcribe).to_be_enabled(timeout=30_000)
        transcribe.click()
        expect(page.get_by_text("recording-1.wav")).to_be_visible(timeout=30_000)
        expect(page.get_by_text("Done in")).to_be_visible(timeout=120_000)
    job = open_store(settings.db_path).list_jobs(limit=1)[0]
    assert job.source == "live" and job.priority == 20 and job.state.value == "done"
    assert job.duration_ms >= 1_000


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_jobs_page_search_finds_a_word_and_the_job_page_downloads_a_valid_srt(service, tmp_path):
    import re

    import requests
    from playwright.sync_api import expect

    from tests.browser import browser_page
    from tests.test_export import parse_srt

    settings, _proc, base_url, _ = service
    mp3 = speech_file(tmp_path, "mp3", "wo3 men5 tao3 lun4 yu4 suan4 he2 ren2 yuan2")
    with mp3.open("rb") as f:
        r = requests.post(
            f"{base_url}/api/v1/jobs", files={"file": ("预算会议.mp3", f)}, timeout=30
        )
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    store = open_store(settings.db_path)
    job = wait_for(lambda: (j := store.get(job_id)).state.is_final and j, timeout=120,
                   what="the uploaded job to finish")  # fmt: skip
    assert job.state.value == "done" and job.sentences, job.error
    # the random-weight model's text is arbitrary, so search for a word it really wrote
    word = next(ch for ch in job.text if "\u4e00" <= ch <= "\u9fff")
    sentence = next(s for s in job.sentences if word in s.text)

    with browser_page() as page:
        page.goto(base_url + "/jobs")
        page.get_by_role("heading", name="Jobs").wait_for(timeout=60_000)
        # opened by its address, the page still comes with the dashboard's sidebar
        expect(page.get_by_text("Health:")).to_be_visible()
        expect(page.get_by_role("link", name="Transcribe")).to_be_visible()
        page.get_by_role("tab", name="Search transcripts").click()
        box = page.get_by_role("textbox", name="Search all transcripts")
        box.fill(word)
        box.press("Enter")
        hit = page.get_by_role("link", name=re.compile(rf"预算会议\.mp3 · job {job_id} · "))
        expect(hit.first).to_be_visible(timeout=30_000)
        hit.first.click()
        expect(page.get_by_role("heading", name=f"Job {job_id}: 预算会议.mp3")).to_be_visible(
            timeout=30_000
        )
        # the address is a shareable link to this moment of this job
        expect(page).to_have_url(re.compile(rf"/jobs\?job={job_id}(&t=\d+)?$"), timeout=10_000)
        t = re.search(r"[?&]t=(\d+)", page.url)
        assert (int(t.group(1)) if t else 0) <= sentence.end_ms
        with page.expect_download(timeout=30_000) as download_info:
            page.get_by_role("button", name="SRT").click()
        download = download_info.value
        assert download.suggested_filename == "预算会议.srt"
        download.save_as(tmp_path / "job.srt")
        srt = (tmp_path / "job.srt").read_bytes()
    cues = parse_srt(srt)  # strict: numbering, HH:MM:SS,mmm, ordered, no empty cues
    assert cues and any(word in text for _start, _end, text in cues)
    assert cues[-1][1] <= job.duration_ms


def test_a_killed_supervisor_takes_its_web_and_worker_with_it(tmp_path, tiny_models):
    """SIGKILL of `seaco serve` itself (the OOM killer's choice, or kill -9 by hand): its web
    and worker processes end too, instead of holding the port and the queue with no
    supervisor, where `seaco stop` could not find them."""
    settings, proc, base_url = serve(tmp_path, "data", **model_overrides(tiny_models))
    try:
        wait_for(lambda: get_health(base_url)[1].get("status") == "ok", timeout=180,
                 what="/health to say ok")  # fmt: skip
        children = [p for p in instance_processes(settings) if p.pid != proc.pid]
        assert len(children) >= 2  # web and worker (and the worker's decode-ahead helper)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        wait_for(
            lambda: not instance_processes(settings),
            timeout=30,
            what="the web and worker processes of a killed supervisor to end",
        )
    finally:
        for leftover in instance_processes(settings):  # only when the test has failed
            leftover.kill()
        stop(proc)
