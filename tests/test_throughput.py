"""Issue 6: per-stage times from the real pipeline, the benchmark corpus, decode-ahead."""

from __future__ import annotations

import shutil

import pytest

from engine.audio import decode
from engine.benchcorpus import build_corpus

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
    from engine.asr import AsrPipeline
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
