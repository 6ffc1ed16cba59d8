"""Batch, Live and Hotwords pages (AppTest over a real jobs.db) and their engine helpers."""

from __future__ import annotations

import io
from pathlib import Path

from streamlit.testing.v1 import AppTest

from engine import hotword_vocabulary, web_process
from engine.dashboard import formatting
from engine.hotwords import default_hotwords
from engine.intake import submit_batch
from engine.jobs import JobState, Sentence
from engine.store import JobResult
from tests.audio_fixtures import tone, write_audio

ROOT = Path(__file__).resolve().parents[2]


def page(name: str) -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=30)


def finish(store, job, text="今天天气很好。"):
    store.claim("w", 30)
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
            duration_ms=1000,
            decode_ms=1,
            inference_ms=5,
            model_info={},
        ),
    )


def test_submit_batch_keeps_good_files_and_reports_bad_ones(data_env, tmp_path):
    store, settings = web_process.store(), web_process.settings()
    wav = write_audio(tmp_path / "a.wav", tone(1.0), 16000, "wav").read_bytes()
    files = [
        (io.BytesIO(wav), "a.wav"),
        (io.BytesIO(b"not audio" * 50), "b.wav"),
        (io.BytesIO(wav), "c.wav"),
    ]
    batch = submit_batch(store, settings, files, hotwords="科哥")
    assert [j.original_name for j in batch.accepted] == ["a.wav", "c.wav"]
    assert batch.rejected[0][0] == "b.wav" and "not audio" in str(batch.rejected[0][1])
    assert {j.batch_id for j in batch.accepted} == {batch.batch_id}
    assert all(j.priority == 0 and j.hotwords == ["科哥"] for j in batch.accepted)


def test_batch_page_shows_progress_rows_and_a_zip_download(data_env, tmp_path):
    store, settings = web_process.store(), web_process.settings()
    wav = write_audio(tmp_path / "a.wav", tone(1.0), 16000, "wav").read_bytes()
    batch = submit_batch(store, settings, [(io.BytesIO(wav), f"{i}.wav") for i in range(3)])
    finish(store, batch.accepted[0])
    at = page("batch")
    at.session_state["batches"] = [batch.batch_id]
    at.run()
    assert not at.exception
    rows = at.dataframe[0].value
    assert list(rows["file"]) == ["0.wav", "1.wav", "2.wav"]
    assert "1 of 3 finished" in at.get("progress")[0].proto.text
    assert at.get("download_button")


def test_batch_page_without_batches_explains_itself(data_env):
    at = page("batch").run()
    assert not at.exception and "appear here" in at.info[0].value
    at.button[0].click().run()
    assert at.error[0].value == "Choose one or more files first."


def test_live_page_lists_the_session_recordings(data_env, tmp_path):
    store, settings = web_process.store(), web_process.settings()
    wav = write_audio(tmp_path / "r.wav", tone(1.0), 16000, "wav").read_bytes()
    job = submit_batch(store, settings, [(io.BytesIO(wav), "recording-1.wav")]).accepted[0]
    finish(store, job, "我们去公园。")
    at = page("live")
    at.session_state["recordings"] = [job.id]
    at.run()
    assert not at.exception
    assert any("我们去公园。" in m.value for m in at.markdown)


def test_hotwords_page_saves_the_default_list(data_env):
    at = page("hotwords").run()
    assert not at.exception and "until edited here" in at.caption[0].value
    at.text_area[0].input("科哥, Paraformer，科哥")  # a form submits what was typed with it
    at.button[0].click().run()
    assert not at.exception
    assert default_hotwords(web_process.store(), web_process.settings()) == ["科哥", "Paraformer"]
    many = " ".join(f"词{i}" for i in range(60))
    at.text_area[0].input(many)
    at.button[0].click().run()
    assert any("at most 50" in w.value for w in at.warning)


def test_batch_summary_and_hotword_warnings():
    counts = {s.value: 0 for s in JobState}
    assert formatting.batch_summary(counts) == (0.0, "0 of 0 finished")
    counts.update(done=2, failed=1, queued=1)
    fraction, line = formatting.batch_summary(counts)
    assert fraction == 0.75 and line.startswith("3 of 4 finished")
    assert hotword_vocabulary.hotword_warnings(["科哥"]) == []
    assert "at most 50" in hotword_vocabulary.hotword_warnings([f"w{i}" for i in range(51)])[0]


def test_hotwords_page_warns_about_words_the_model_cannot_write(data_env, monkeypatch, tiny_models):
    monkeypatch.setenv("SEACO_ASR_MODEL", str(tiny_models["asr"]))
    web_process.settings.cache_clear()
    at = page("hotwords").run()
    at.text_area[0].input("天气\n张龘")  # 龘 is not in the tiny model's dictionary
    at.button[0].click().run()
    assert not at.exception
    assert any("张龘" in w.value and "龘" in w.value for w in at.warning)
    at.text_area[0].input("天气")
    at.button[0].click().run()
    assert not at.warning
