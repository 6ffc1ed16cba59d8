"""Poison jobs and the memory guard under the real supervisor (`seaco serve`): a job that
hangs the worker is stopped by the hard per-job time limit, one that crashes it is retried,
both are failed after SEACO_MAX_ATTEMPTS with a reason, and the jobs behind them are done.
A worker past its memory or job limit hands over cleanly to a fresh process."""

from __future__ import annotations

import pytest

from engine.intake import submit_upload
from engine.jobs import JobState
from engine.store import open_store
from tests.audio_fixtures import speech_file, tone, write_audio
from tests.fault_pipeline import CRASH_WORD, HANG_WORD, SPEC
from tests.procs import get_health, serve, start, stop, wait_for

pytestmark = pytest.mark.slow


def models(tiny_models) -> dict[str, str]:
    return {f"{k}_model": str(v) for k, v in tiny_models.items()}


def upload(store, settings, path, hotwords=None):
    with open(path, "rb") as stream:
        return submit_upload(store, settings, stream, path.name, hotwords=hotwords)


def test_hanging_and_crashing_jobs_are_failed_after_their_attempts_and_the_rest_run(
    tmp_path, tiny_models
):
    settings, proc, base = serve(
        tmp_path, "data", extra_env={"SEACO_TEST_PIPELINE": SPEC}, max_attempts="2",
        job_timeout_s="3", job_timeout_factor="0", **models(tiny_models),
    )  # fmt: skip
    store = open_store(settings.db_path)
    clip = speech_file(tmp_path, "wav")
    try:
        hang = upload(store, settings, clip, hotwords=HANG_WORD)
        first = upload(store, settings, clip)
        crash = upload(store, settings, clip, hotwords=f"天气 {CRASH_WORD}")
        second = upload(store, settings, clip)
        wait_for(
            lambda: all(store.get(j.id).state.is_final for j in (hang, first, crash, second)),
            timeout=300, what="every job to finish",
        )  # fmt: skip

        hung = store.get(hang.id)
        assert hung.state is JobState.FAILED and hung.error_class == "JobTimeout"
        assert "hard time limit of 3 s" in hung.error and hung.attempts == 2
        crashed = store.get(crash.id)
        assert crashed.state is JobState.FAILED and crashed.error_class == "PoisonJob"
        assert "crash" in crashed.error and crashed.attempts == 2
        for good in (first, second):
            done = store.get(good.id)
            assert done.state is JobState.DONE and done.attempts == 1, done.error

        events = store.events(200)
        kinds = [e["kind"] for e in events]
        assert kinds.count("job.timeout") == 2
        assert [e["job_id"] for e in events if e["kind"] == "job.poison"] == [crash.id]
        assert sum(k == "worker.exit" for k in kinds) >= 2  # each crash and each kill
        # and the service is whole again: a fresh worker with its models, health ok
        wait_for(lambda: get_health(base)[1].get("status") == "ok", timeout=120)
        assert store.counts_by_state()["running"] == 0
    finally:
        assert stop(proc) == 0


def test_memory_guard_hands_over_to_a_fresh_worker_between_jobs(tmp_path, tiny_models):
    # Any worker is over a 1 MB limit: it does one job, exits cleanly, and the supervisor
    # starts the next at once.
    settings, proc, base = serve(tmp_path, "data", worker_max_rss_mb="1", **models(tiny_models))
    store = open_store(settings.db_path)
    try:
        wait_for(lambda: get_health(base)[1].get("status") == "ok", timeout=180)
        first = store.latest_worker()
        job = upload(store, settings, write_audio(tmp_path / "a.wav", tone(1), 16000, "wav"))
        wait_for(lambda: store.get(job.id).state is JobState.DONE, timeout=120)
        fresh = wait_for(
            lambda: (w := store.latest_worker())["id"] != first["id"] and w["model_loaded"] and w,
            timeout=120, what="a fresh worker with its models",
        )  # fmt: skip
        recycle = next(e for e in store.events(50) if e["kind"] == "worker.recycle")
        assert "SEACO_WORKER_MAX_RSS_MB=1" in recycle["message"]
        assert recycle["data"] and first["id"] in recycle["data"]
        old = next(w for w in store.workers() if w["id"] == first["id"])
        assert old["state"] == "stopped" and old["jobs_done"] == 1
        assert fresh["pid"] != first["pid"] and fresh["jobs_done"] == 0
        assert not [e for e in store.events(50) if e["kind"] == "worker.exit"]  # a clean exit
    finally:
        assert stop(proc) == 0


def test_worker_stops_cleanly_after_its_job_quota(tmp_path, tiny_models):
    from tests.conftest import make_settings

    settings = make_settings(
        tmp_path / "data", device="cpu", ncpu="1", worker_max_jobs="2", **models(tiny_models)
    )
    settings.ensure_dirs()
    store = open_store(settings.db_path)
    jobs = [
        upload(store, settings, write_audio(tmp_path / f"{i}.wav", tone(1, freq=300 + i),
                                            16000, "wav"))
        for i in range(3)
    ]  # fmt: skip
    worker = start(["worker"], settings, tmp_path / "worker.log")
    try:
        assert worker.wait(timeout=180) == 0, (tmp_path / "worker.log").read_text()
    finally:
        stop(worker)
    assert [store.get(j.id).state for j in jobs] == [JobState.DONE, JobState.DONE, JobState.QUEUED]
    recycle = next(e for e in store.events(50) if e["kind"] == "worker.recycle")
    assert "processed 2 jobs (limit 2)" in recycle["message"]
    assert store.latest_worker()["state"] == "stopped"
