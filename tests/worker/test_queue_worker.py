"""The worker as a real subprocess over a real jobs.db with the tiny random-weight models."""

from __future__ import annotations

import os
import signal

import pytest

from engine.intake import audio_path_for, submit_upload
from engine.jobs import JobState
from engine.store import NewJob, open_store
from tests.audio_fixtures import speech_file, tone, write_audio
from tests.conftest import make_settings, model_overrides
from tests.procs import start, stop, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def model_settings(tmp_path, tiny_models):
    settings = make_settings(
        tmp_path / "data",
        **model_overrides(tiny_models),
        device="cpu",
        ncpu="1",
        hotwords="很好",
        lease_s="5",
        heartbeat_s="1",
    )
    settings.ensure_dirs()
    return settings


def upload(store, settings, path, **kw):
    with open(path, "rb") as stream:
        return submit_upload(store, settings, stream, path.name, **kw)


def test_worker_process_takes_an_uploaded_mp3_to_done(tmp_path, model_settings):
    store = open_store(model_settings.db_path)
    job = upload(store, model_settings, speech_file(tmp_path, "mp3"), hotwords="天气, 今天")
    assert job.state is JobState.QUEUED and job.container

    proc = start(["worker", "--burst"], model_settings, tmp_path / "worker.log")
    assert proc.wait(timeout=180) == 0, (tmp_path / "worker.log").read_text()

    done = store.get(job.id)
    assert done.state is JobState.DONE, done.error
    assert done.text  # random weights: garbage, but something
    assert done.effective_hotwords == ["天气", "今天", "很好"]
    assert done.confidence is not None and 0 <= done.confidence <= 1
    assert done.sentences, "VAD + punctuation should give sentences"
    starts = [s.start_ms for s in done.sentences]
    assert starts == sorted(starts)
    assert all(0 <= s.start_ms <= s.end_ms <= done.duration_ms + 100 for s in done.sentences)
    assert done.decode_ms is not None and done.inference_ms is not None and done.rtf > 0
    assert done.vad_ms is not None and done.asr_ms is not None and done.punc_ms is not None
    assert all(done.model_info["random_weights"].values())
    worker = store.latest_worker()
    assert worker["state"] == "stopped" and worker["jobs_done"] == 1


def test_a_bad_file_fails_with_a_reason_and_the_next_job_still_runs(tmp_path, model_settings):
    store = open_store(model_settings.db_path)
    # A file that was valid at upload but is damaged on disk by the time the worker reads it.
    garbage = b"RIFF\x00\x00\x00\x00WAVEfmt " + os.urandom(2000)
    sha = "f" * 64
    path = model_settings.data_dir / audio_path_for(sha)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(garbage)
    bad = store.submit(
        NewJob(audio_sha256=sha, audio_path=audio_path_for(sha), audio_bytes=len(garbage),
               original_name="broken.wav"),
        queue_max=20, max_attempts=3,
    )  # fmt: skip
    missing = store.submit(
        NewJob(audio_sha256="e" * 64, audio_path=audio_path_for("e" * 64), audio_bytes=10,
               original_name="gone.wav"),
        queue_max=20, max_attempts=3,
    )  # fmt: skip
    silent = upload(
        store, model_settings, write_audio(tmp_path / "silence.wav", tone(2, amp=0.0), 16000, "wav")
    )
    good = upload(store, model_settings, speech_file(tmp_path, "wav"))

    proc = start(["worker", "--burst"], model_settings, tmp_path / "worker.log")
    assert proc.wait(timeout=180) == 0, (tmp_path / "worker.log").read_text()

    failed = store.get(bad.id)
    assert failed.state is JobState.FAILED
    assert failed.error and "Traceback" not in failed.error
    assert failed.error_class in ("CorruptAudioError", "NotAudioError", "EmptyAudioError")
    gone = store.get(missing.id)
    assert gone.state is JobState.FAILED and "audio file is missing" in gone.error
    quiet = store.get(silent.id)
    assert quiet.state is JobState.DONE and quiet.text == "" and quiet.sentences == []
    assert store.get(good.id).state is JobState.DONE


def test_unloadable_model_keeps_the_worker_alive_and_says_why(tmp_path, model_settings):
    broken = make_settings(
        model_settings.data_dir, asr_model=str(tmp_path / "no-such-model"),
        vad_model=model_settings.vad_model, punc_model=model_settings.punc_model,
        device="cpu", heartbeat_s="1",
    )  # fmt: skip
    store = open_store(broken.db_path)
    proc = start(["worker"], broken, tmp_path / "worker.log")
    try:
        worker = wait_for(
            lambda: (w := store.latest_worker()) and w["model_error"] and w,
            what="the model error to be reported",
        )
        assert "no-such-model" in worker["model_error"]
        assert worker["state"] == "model_error" and proc.poll() is None
    finally:
        assert stop(proc) == 0


def test_sigterm_lets_the_running_job_finish(tmp_path, model_settings):
    store = open_store(model_settings.db_path)
    long_audio = speech_file(tmp_path, "wav", " ".join(["jin1 tian1 tian1 qi4 hen3 hao3"] * 12))
    job = upload(store, model_settings, long_audio)
    proc = start(["worker"], model_settings, tmp_path / "worker.log")
    try:
        wait_for(lambda: store.get(job.id).state is not JobState.QUEUED, timeout=120)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0
    finally:
        stop(proc)
    assert store.get(job.id).state is JobState.DONE
    assert store.latest_worker()["state"] == "stopped"


def test_a_killed_worker_s_job_is_recovered_by_the_next_worker(tmp_path, model_settings):
    store = open_store(model_settings.db_path)
    long_audio = speech_file(tmp_path, "wav", " ".join(["jin1 tian1 tian1 qi4 hen3 hao3"] * 12))
    job = upload(store, model_settings, long_audio)
    first = start(["worker"], model_settings, tmp_path / "worker1.log")
    try:
        wait_for(lambda: store.get(job.id).state is JobState.RUNNING, timeout=120)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    finally:
        stop(first)
    assert store.get(job.id).state is JobState.RUNNING  # orphaned until its lease expires
    second = start(["worker"], model_settings, tmp_path / "worker2.log")
    try:
        wait_for(lambda: store.get(job.id).state is JobState.DONE, timeout=120)
    finally:
        assert stop(second) == 0
    recovered = store.get(job.id)
    assert recovered.attempts == 2
    kinds = [e["kind"] for e in store.events(100)]
    assert "job.requeued" in kinds
