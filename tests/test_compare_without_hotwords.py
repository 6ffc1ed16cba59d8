""" "Compare without hotwords": re-running a finished job on its stored audio with no hotwords
at all (neither its own nor the operator's defaults), in the store and with the real worker."""

from __future__ import annotations

import pytest

from engine.accuracy import hotword_change, hotwords_present
from engine.errors import InvalidJobStateError, JobNotFoundError, QueueFullError
from engine.hotwords import save_default_hotwords
from engine.intake import resubmit_without_hotwords, submit_upload
from engine.jobs import PRIORITY_NORMAL, JobState
from engine.store import JobResult, NewJob, Store, open_store
from tests.audio_fixtures import speech
from tests.conftest import make_settings, model_overrides
from tests.procs import start, stop, wait_for


def finished_job(store: Store, n: int = 1, hotwords: tuple[str, ...] = ("天气",)):
    """A job taken to done through the store's own lifecycle (claim, complete)."""
    sha = f"{n:064x}"
    job = store.submit(
        NewJob(
            audio_sha256=sha,
            audio_path=f"audio/{sha[:2]}/{sha}",
            audio_bytes=10,
            original_name=f"f{n}.wav",
            hotwords=hotwords,
            batch_id="b1",
            priority=0,
        ),
        queue_max=100,
        max_attempts=3,
    )
    claimed = store.claim("w", lease_s=60)
    assert claimed is not None and claimed.id == job.id
    store.complete(
        job.id,
        "w",
        claimed.attempts,
        JobResult(
            text="今天天气很好。",
            raw_text="今天天气很好",
            confidence=0.9,
            sentences=[],
            effective_hotwords=[*hotwords, "科哥"],
            duration_ms=1000,
            decode_ms=1,
            inference_ms=1,
            model_info={},
        ),
    )
    return store.get(job.id)


def test_a_comparison_is_a_plain_copy_without_any_hotwords(store):
    original = finished_job(store)
    assert original.use_default_hotwords and original.compare_of is None
    comparison = store.submit_comparison(
        original.id, queue_max=10, max_attempts=3, priority=PRIORITY_NORMAL
    )
    assert comparison.state is JobState.QUEUED and comparison.id != original.id
    assert comparison.hotwords == [] and comparison.use_default_hotwords is False
    assert comparison.compare_of == original.id and comparison.batch_id is None
    assert (comparison.audio_sha256, comparison.audio_path, comparison.original_name) == (
        original.audio_sha256,
        original.audio_path,
        original.original_name,
    )
    assert comparison.priority == PRIORITY_NORMAL
    # a second request (a double click) gets the same job, not another run
    again = store.submit_comparison(original.id, queue_max=10, max_attempts=3, priority=0)
    assert again.id == comparison.id and store.count_jobs() == 2
    assert store.comparison_for(original.id).id == comparison.id
    assert store.comparison_for(comparison.id) is None
    # a cancelled comparison does not block a new one
    store.cancel(comparison.id)
    fresh = store.submit_comparison(original.id, queue_max=10, max_attempts=3, priority=0)
    assert fresh.id not in (original.id, comparison.id)
    assert store.comparison_for(original.id).id == fresh.id


def test_only_done_jobs_are_compared_and_the_queue_limit_holds(store):
    with pytest.raises(JobNotFoundError):
        store.submit_comparison(999, queue_max=10, max_attempts=3, priority=0)
    queued = store.submit(
        NewJob(audio_sha256="a" * 64, audio_path="audio/aa/x", audio_bytes=1, original_name="q"),
        queue_max=10,
        max_attempts=3,
    )
    with pytest.raises(InvalidJobStateError, match="only a finished"):
        store.submit_comparison(queued.id, queue_max=10, max_attempts=3, priority=0)
    store.cancel(queued.id)
    original = finished_job(store, 2)
    store.submit(
        NewJob(audio_sha256="b" * 64, audio_path="audio/bb/x", audio_bytes=1, original_name="q"),
        queue_max=10,
        max_attempts=3,
    )
    with pytest.raises(QueueFullError):
        store.submit_comparison(original.id, queue_max=1, max_attempts=3, priority=0)


def test_deleting_the_original_keeps_the_comparison_and_the_shared_audio(store):
    original = finished_job(store)
    comparison = store.submit_comparison(original.id, queue_max=10, max_attempts=3, priority=0)
    assert store.delete_job(original.id) is None  # the comparison still uses the audio file
    assert store.get(comparison.id).compare_of is None


def test_resubmit_refuses_a_job_whose_audio_file_is_gone(store, settings):
    original = finished_job(store)
    with pytest.raises(InvalidJobStateError, match="audio file is no longer"):
        resubmit_without_hotwords(store, settings, original.id)
    assert store.count_jobs() == 1


@pytest.mark.slow
def test_the_worker_runs_the_comparison_without_job_or_default_hotwords(tmp_path, tiny_models):
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
    store = open_store(settings.db_path)
    save_default_hotwords(store, "很好, 会")  # the operator's list, as the Hotwords page saves it
    clip = speech(tmp_path / "clip.wav", "jin1 tian1 tian1 qi4 hen3 hao3")
    with open(clip, "rb") as stream:
        original = submit_upload(store, settings, stream, "clip.wav", hotwords="天气, 今天")

    worker = start(["worker"], settings, tmp_path / "worker.log")
    try:
        done = wait_for(
            lambda: (j := store.get(original.id)).state.is_final and j, 120, "the original job"
        )
        assert done.state is JobState.DONE, done.error
        comparison = resubmit_without_hotwords(store, settings, original.id)
        assert resubmit_without_hotwords(store, settings, original.id).id == comparison.id
        compared = wait_for(
            lambda: (j := store.get(comparison.id)).state.is_final and j, 120, "the comparison"
        )
    finally:
        assert stop(worker) == 0, (tmp_path / "worker.log").read_text()

    assert compared.state is JobState.DONE, compared.error
    assert done.effective_hotwords == ["天气", "今天", "很好", "会"]
    assert compared.effective_hotwords == []  # what the worker passed to the model
    assert compared.compare_of == done.id and not compared.use_default_hotwords
    assert compared.duration_ms == done.duration_ms
    assert store.comparison_for(done.id).id == compared.id
    # what the Jobs page shows for the pair
    change = hotword_change(done.text, compared.text, done.effective_hotwords)
    present = hotwords_present(done.text, done.effective_hotwords)
    assert list(change.counts) == done.effective_hotwords
    for word, (with_n, without_n) in change.counts.items():
        assert (word in change.gained) == (with_n > without_n)
        assert (word in change.lost) == (with_n < without_n)
        assert (word in present) == (with_n > 0)
