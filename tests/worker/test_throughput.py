"""Issue 6: per-stage times from the real pipeline, the benchmark corpus, decode-ahead."""

from __future__ import annotations

import shutil

import pytest

from engine.audio import decode
from engine.tools.benchmark_corpus import build_corpus
from tests.conftest import make_settings, model_overrides

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


@needs_espeak
def test_corpus_has_the_asked_lengths_in_wav_and_mp3_and_is_reused(tmp_path):
    files = build_corpus(tmp_path / "c", (5, 7, 6), seed=3, utterances=4)
    assert [f.fmt for f in files] == ["wav", "mp3", "wav"]
    for f, seconds in zip(files, (5, 7, 6), strict=True):
        samples, info = decode(f.path)
        assert abs(len(samples) / 16000 - seconds) < 0.1
        assert f.seconds == pytest.approx(seconds, abs=0.01)
    assert decode(files[1].path)[1].sample_rate == 44100
    assert decode(files[1].path)[1].channels == 2
    again = build_corpus(tmp_path / "c", (5, 7, 6), seed=3, utterances=4)
    assert again == files and files[0].path.stat().st_mtime_ns == again[0].path.stat().st_mtime_ns


@pytest.mark.slow
def test_the_pipeline_reports_time_per_stage(tiny_models):
    from engine.recognition.pipeline import AsrPipeline
    from tests.audio_fixtures import synthetic_speech

    pipeline = AsrPipeline.load(
        str(tiny_models["asr"]), str(tiny_models["vad"]), str(tiny_models["punc"]),
        device="cpu", ncpu=1,
    )  # fmt: skip
    transcript = pipeline.transcribe(synthetic_speech(3.0), ["科哥"])
    assert transcript.text
    assert set(transcript.stage_ms) == {"vad", "asr", "punc"}
    assert all(ms >= 0 for ms in transcript.stage_ms.values())
    silent = pipeline.transcribe(synthetic_speech(1.0) * 0)  # VAD runs, nothing else
    assert set(silent.stage_ms) <= {"vad"} and silent.text == ""


# --- decode-ahead -----------------------------------------------------------------------------
def test_pcm_cache_round_trip_bound_and_damaged_entries(tmp_path):
    import numpy as np

    from engine.audio import AudioInfo
    from engine.worker.decode_ahead import PcmCache

    info = AudioInfo("wav", "pcm_s16le", 1000, 16000, 1)
    cache = PcmCache(tmp_path / "pcm", max_bytes=300_000)
    one = np.linspace(-1, 1, 50_000, dtype=np.float32)  # 200 kB each
    assert cache.get("a") is None and not cache.has("a")
    assert cache.put("a", one, info)
    samples, got = cache.get("a")
    assert np.array_equal(samples, one) and got == info
    assert cache.put("b", one * 0.5, info)  # over the bound: "a" is the least recently used
    assert not cache.has("a") and cache.has("b")
    assert not cache.put("big", np.zeros(100_000, np.float32), info)  # alone over the bound
    (tmp_path / "pcm" / "b.v1.npy").write_bytes(b"not numpy")
    assert cache.get("b") is None  # damaged: a miss, the worker decodes itself


@needs_espeak
def test_prefetcher_decodes_the_queued_jobs_in_another_process(tmp_path, store, settings):
    import numpy as np

    from engine.intake import submit_upload
    from engine.worker.decode_ahead import PcmCache, Prefetcher

    files = build_corpus(tmp_path / "c", (5, 6, 7), utterances=3)
    for f in files:
        with open(f.path, "rb") as stream:
            submit_upload(store, settings, stream, f.path.name)
    queued = store.peek_queued(2)
    assert [j.original_name for j in queued] == [files[0].path.name, files[1].path.name]
    assert store.queue_depth() == 3  # peeking claims nothing
    cache = PcmCache(settings.tmp_dir / "pcm", 2**26)
    prefetcher = Prefetcher(cache, settings.data_dir, settings.max_duration_s, ahead=2)
    try:
        assert prefetcher.ahead(queued) == 2
        assert prefetcher.ahead(queued) == 0  # in flight or cached: not decoded twice
        for job, f in zip(queued, files, strict=False):
            samples, info = prefetcher.get(job)
            expected, expected_info = decode(f.path)
            assert np.array_equal(samples, expected) and info == expected_info
        third = store.peek_queued(3)[2]
        assert prefetcher.get(third) is None  # never asked for: the worker decodes it
    finally:
        prefetcher.close()


@pytest.mark.slow
@needs_espeak
def test_worker_uses_audio_decoded_ahead_and_finishes_every_job(tmp_path, tiny_models):
    from engine.intake import submit_upload
    from engine.jobs import JobState
    from engine.store import open_store
    from tests.procs import start

    settings = make_settings(
        tmp_path / "data", **model_overrides(tiny_models), device="cpu", ncpu="1", decode_ahead="2",
    )  # fmt: skip
    settings.ensure_dirs()
    store = open_store(settings.db_path)
    files = build_corpus(tmp_path / "c", (5, 6, 7, 8), utterances=3)
    jobs = []
    for f in files:
        with open(f.path, "rb") as stream:
            jobs.append(submit_upload(store, settings, stream, f.path.name))
    proc = start(["worker", "--burst"], settings, tmp_path / "worker.log")
    assert proc.wait(timeout=180) == 0, (tmp_path / "worker.log").read_text()
    done = [store.get(j.id) for j in jobs]
    assert all(j.state is JobState.DONE for j in done), [j.error for j in done]
    assert all(abs(j.duration_ms - f.seconds * 1000) < 50 for j, f in zip(done, files, strict=True))
    cached = {p.name.split(".")[0] for p in (settings.tmp_dir / "pcm").glob("*.json")}
    assert {j.audio_sha256 for j in done[1:]} <= cached  # every job after the first


# --- segment batching (engine/recognition/segment_batching.py) ------------------------------------
@pytest.mark.slow
@needs_espeak
def test_batched_segments_map_back_to_their_recordings(tmp_path, tiny_models):
    """With a batch of one segment the batched path must give exactly funasr's own result
    (text, sentence times, confidence): the replay, the merge and the mapping are right. With
    real batches across recordings, each recording's result must not depend on the order the
    recordings were given in, and silence stays empty."""
    import numpy as np

    from engine.recognition.pipeline import AsrPipeline

    files = build_corpus(tmp_path / "c", (20, 35, 12), seed=2, utterances=6)
    audios = [decode(f.path)[0] for f in files] + [np.zeros(16000, np.float32)]
    models = [str(tiny_models[k]) for k in ("asr", "vad", "punc")]

    def load(cpu_batch_s: int) -> AsrPipeline:
        return AsrPipeline.load(*models, device="cpu", ncpu=1, cpu_batch_s=cpu_batch_s)

    funasr_path, one_at_a_time, batched = load(0), load(1), load(300)
    hotwords = ["科哥", "阿里巴巴"]
    expected = [funasr_path.transcribe(a, hotwords) for a in audios]
    alone = one_at_a_time.transcribe_many(audios, hotwords)
    for want, got in zip(expected, alone, strict=True):
        assert (got.text, got.sentences, got.tokens) == (want.text, want.sentences, want.tokens)
        assert got.confidence == pytest.approx(want.confidence)
    assert alone[0].text and alone[-1].text == "" and alone[-1].sentences == []

    together = batched.transcribe_many(audios, hotwords)
    reverse = batched.transcribe_many(audios[::-1], hotwords)[::-1]
    for a, b, audio in zip(together, reverse, audios, strict=True):
        assert (a.text, a.sentences) == (b.text, b.sentences)
        assert all(s.end_ms <= len(audio) / 16 + 1 for s in a.sentences)
        assert set(a.stage_ms) >= {"vad", "asr"}
    assert together[-1].text == ""
    assert batched.transcribe(audios[2], hotwords).text  # single recording, same path


# --- cross-job batching (engine/worker/job_batching.py + the worker) ------------------------------
def test_companions_come_from_the_window_with_the_head_s_priority_hotwords_and_audio_cap(store):
    from engine.store import NewJob
    from engine.worker.job_batching import pick_companions

    def job(name: str, hotwords=("科哥",), priority=10, duration_ms: int | None = 60_000):
        sha = f"{len(name):02d}{name}".ljust(64, "0")
        new = NewJob(audio_sha256=sha, audio_path=f"audio/{sha}", audio_bytes=1,
                     original_name=name, duration_ms=duration_ms, hotwords=tuple(hotwords),
                     priority=priority)  # fmt: skip
        return store.submit(new, queue_max=100, max_attempts=3)

    head = job("head")
    other_words = job("other-words", hotwords=("阿里巴巴",))
    same = job("same")
    live = job("live", priority=20)
    unknown = job("unknown-length", duration_ms=None)
    too_long = job("too-long", duration_ms=250_000)
    last = job("last")
    queued = [other_words, same, live, unknown, too_long, last]

    def pick(max_jobs: int, max_audio_ms: int = 300_000) -> list[str]:
        picked = pick_companions(head, queued, lambda j: j.hotwords, max_jobs=max_jobs,
                                 max_audio_ms=max_audio_ms)  # fmt: skip
        return [j.original_name for j in picked]

    assert pick(1) == []  # batching off
    assert pick(3) == ["same"]  # window of 2: the other hotwords keep their place
    assert pick(7) == ["same", "last"]  # not live, not unknown, not past the audio cap
    assert pick(7, max_audio_ms=150_000) == ["same"]


@pytest.mark.slow
@needs_espeak
def test_worker_batches_jobs_with_the_same_hotwords_in_queue_order(tmp_path, tiny_models):
    from engine.intake import submit_upload
    from engine.jobs import JobState
    from engine.store import open_store
    from tests.procs import start

    settings = make_settings(
        tmp_path / "data", **model_overrides(tiny_models), device="cpu", ncpu="1", batch_jobs="3",
    )  # fmt: skip
    settings.ensure_dirs()
    store = open_store(settings.db_path)
    files = build_corpus(tmp_path / "c", (5, 6, 7, 8, 9), utterances=4)
    words = ["天气", "今天", "天气", "天气", "天气"]  # all spelled by the tiny model
    jobs = []
    for f, hotwords in zip(files, words, strict=True):
        with open(f.path, "rb") as stream:
            jobs.append(submit_upload(store, settings, stream, f.path.name, hotwords=hotwords))
    proc = start(["worker", "--burst"], settings, tmp_path / "worker.log")
    assert proc.wait(timeout=180) == 0, (tmp_path / "worker.log").read_text()
    done = [store.get(j.id) for j in jobs]
    assert all(j.state is JobState.DONE for j in done), [j.error for j in done]
    ids = [j.id for j in jobs]
    log = (tmp_path / "worker.log").read_text()
    # head 1 takes 3 from its window [2, 3]; 2 (other hotwords) goes next, alone; then 4 + 5
    assert f"jobs [{ids[0]}, {ids[2]}]: recognised together" in log
    assert f"jobs [{ids[3]}, {ids[4]}]: recognised together" in log
    assert done[1].started_at <= done[3].started_at  # passed over once, never starved
    for job, f in zip(done, files, strict=True):
        assert job.effective_hotwords == [job.hotwords[0]]
        assert job.text and all(s.end_ms <= f.seconds * 1000 + 100 for s in job.sentences)
        assert job.inference_ms is not None and job.asr_ms is not None
