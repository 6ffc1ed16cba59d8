"""The worker's queue tick is re-armed by APScheduler's job-executed event, after the tick has
returned; and if the tick were ever lost anyway, the heartbeat's safety net re-arms it. A real
Worker (tiny FunASR models) runs in a thread of the test process over a real jobs.db."""

from __future__ import annotations

import threading

import pytest
from apscheduler.jobstores.base import JobLookupError

from engine.intake import submit_upload
from engine.jobs import JobState
from engine.store import open_store
from engine.worker.queue_worker import Worker
from tests.audio_fixtures import tone, write_audio
from tests.conftest import make_settings
from tests.procs import wait_for

pytestmark = pytest.mark.slow


def test_a_lost_queue_tick_is_re_armed_and_jobs_keep_flowing(tmp_path, tiny_models):
    settings = make_settings(
        tmp_path / "data", device="cpu", ncpu="1", heartbeat_s="1",
        **{f"{k}_model": str(v) for k, v in tiny_models.items()},
    )  # fmt: skip
    settings.ensure_dirs()
    store = open_store(settings.db_path)
    worker = Worker(settings)
    runner = threading.Thread(target=worker.run, daemon=True)
    runner.start()
    try:
        wait_for(lambda: worker.pipeline is not None and worker._scheduler.get_job("queue"),
                 timeout=120, what="the loaded worker's queue tick")  # fmt: skip

        def submit(freq: int):
            path = write_audio(tmp_path / f"{freq}.wav", tone(0.5, freq=freq), 16000, "wav")
            with open(path, "rb") as stream:
                return submit_upload(store, settings, stream, path.name)

        first = submit(300)
        wait_for(lambda: store.get(first.id).state is JobState.DONE, timeout=60)

        # lose the pending tick, as APScheduler did when a tick due at once was skipped
        def lose_tick() -> bool:
            try:
                worker._scheduler.remove_job("queue")
            except JobLookupError:  # it was firing just then; try the next one
                return False
            return True

        wait_for(lose_tick, timeout=10, what="a pending queue tick to remove")
        second = submit(400)
        wait_for(lambda: store.get(second.id).state is JobState.DONE, timeout=60,
                 what="the re-armed queue to take the job")  # fmt: skip
    finally:
        worker.request_stop()
        runner.join(timeout=60)
    assert not runner.is_alive()
