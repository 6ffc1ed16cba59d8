"""The worker's queue is a plain loop on a thread of its own: nothing re-arms it, so nothing can
lose it. Many submissions at once to an idle worker process are all done and the worker logs
no ERROR (the re-armed APScheduler tick it replaces logged "the queue tick was not scheduled"
in exactly that case). Its idle wait is an event: `wake()` and a stop request end it at once,
shown with an idle poll of an hour, where a wait that ignored them would time the test out."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from engine.intake import submit_upload
from engine.jobs import JobState
from engine.store import open_store
from engine.worker.queue_worker import Worker
from tests.audio_fixtures import tone, write_audio
from tests.conftest import make_settings, model_overrides
from tests.procs import start, stop, wait_for

pytestmark = pytest.mark.slow
PARALLEL = 16


def test_parallel_submissions_to_an_idle_worker_are_all_done_without_an_error(
    tmp_path, tiny_models
):
    settings = make_settings(
        tmp_path / "data", **model_overrides(tiny_models), device="cpu", ncpu="1",
        heartbeat_s="1", queue_max="100",
    )  # fmt: skip
    settings.ensure_dirs()
    store = open_store(settings.db_path)
    clips = [
        write_audio(tmp_path / f"{i}.wav", tone(0.5, freq=200 + 10 * i), 16000, "wav")
        for i in range(PARALLEL)
    ]
    log = tmp_path / "worker.log"
    worker = start(["worker"], settings, log)
    try:
        wait_for(lambda: (w := store.latest_worker()) and w["model_loaded"], timeout=120,
                 what="the worker's models")  # fmt: skip
        barrier = threading.Barrier(PARALLEL)

        def submit(path):
            own = open_store(settings.db_path)  # one connection per submitting thread
            barrier.wait()  # all at once, as parallel uploads to the API
            with open(path, "rb") as stream:
                return submit_upload(own, settings, stream, path.name).id

        with ThreadPoolExecutor(PARALLEL) as pool:
            ids = list(pool.map(submit, clips))
        wait_for(lambda: all(store.get(j).state.is_final for j in ids), timeout=180,
                 what="every job to finish")  # fmt: skip
    finally:
        assert stop(worker) == 0
    assert [store.get(j).state for j in ids] == [JobState.DONE] * PARALLEL
    text = log.read_text()
    errors = [line for line in text.splitlines() if " ERROR " in line or "Traceback" in line]
    assert not errors, text
    assert store.latest_worker()["jobs_done"] == PARALLEL


def test_wake_and_stop_end_the_idle_wait_at_once(tmp_path, tiny_models):
    hour_ms = str(3600 * 1000)
    settings = make_settings(
        tmp_path / "data", **model_overrides(tiny_models), device="cpu", ncpu="1",
        idle_poll_ms=hour_ms,
    )  # fmt: skip
    settings.ensure_dirs()
    store = open_store(settings.db_path)
    worker = Worker(settings)  # a real Worker in a thread of the test process
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(worker.run()), daemon=True)
    runner.start()
    try:
        wait_for(lambda: worker.pipeline is not None, timeout=120, what="the worker's models")
        path = write_audio(tmp_path / "a.wav", tone(0.5), 16000, "wav")
        with open(path, "rb") as stream:
            job = submit_upload(store, settings, stream, path.name)
        worker.wake()  # what code that queues a job in this process would call
        wait_for(lambda: store.get(job.id).state is JobState.DONE, timeout=60,
                 what="the woken worker to take the job (its idle poll is an hour)")  # fmt: skip
    finally:
        worker.request_stop()
        runner.join(timeout=60)
    assert not runner.is_alive(), "the stop request did not end the hour-long idle wait"
    assert result == [0]
    assert store.latest_worker()["state"] == "stopped"
