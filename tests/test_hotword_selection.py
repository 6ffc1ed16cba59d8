"""Issue 12.2: hotwords the model cannot use are not given to it, and the job says so. The
rule (hotword_vocabulary.select_hotwords) against the tiny model's real dictionary, then
through a real `seaco serve` on every path: /api/v1/jobs, OpenAI's `prompt`, the operator's
default list."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import requests

from engine.hotword_vocabulary import HOTWORD_LIMIT, model_vocab, select_hotwords
from engine.hotwords import save_default_hotwords
from engine.store import open_store
from tests.audio_fixtures import speech_file
from tests.conftest import model_overrides
from tests.procs import get_health, serve, stop, wait_for

UNUSABLE = ["😀", "<s>", "</s>", "<unk>", "！？", "xyzzy", "张龘"]


def test_unusable_words_are_left_out_with_the_reason(tiny_models):
    asr = str(tiny_models["asr"])
    selection = select_hotwords(["天气", *UNUSABLE, "今天"], asr)
    assert selection.given == ["天气", "今天"]
    whole, partial = selection.warnings
    for reason in (
        "😀 (an emoji or symbol)",
        "<s> (the model's own special token)",
        "</s> (the model's own special token)",
        "<unk> (the model's own special token)",
        "！？ (punctuation only)",
        "xyzzy (a Latin word missing from its seg_dict)",
    ):
        assert reason in whole
    assert "张龘 (龘)" in partial
    assert select_hotwords(["天气", "今天"], asr).warnings == []
    assert select_hotwords([], asr).given == []


def test_past_the_limit_every_usable_word_is_given_and_the_model_picks(tiny_models):
    chars = sorted(c for c in model_vocab(tiny_models["asr"]).tokens if "\u4e00" <= c <= "\u9fa5")
    words = [a + b for a, b in zip(chars[::2], chars[1::2], strict=False)][: HOTWORD_LIMIT + 10]
    assert len(words) == HOTWORD_LIMIT + 10
    selection = select_hotwords([*words, "😀"], str(tiny_models["asr"]))
    assert selection.given == words
    assert any(
        f"{HOTWORD_LIMIT + 10} hotwords given" in w and "picks" in w for w in selection.warnings
    )


def test_without_a_dictionary_nothing_is_left_out_and_the_job_is_told(tmp_path):
    selection = select_hotwords(["😀", "天气"], str(tmp_path / "no-model"))
    assert selection.given == ["😀", "天气"]
    assert any("not checked" in w or "not downloaded" in w for w in selection.warnings)


@pytest.fixture(scope="module")
def service(tmp_path_factory, tiny_models):
    tmp = tmp_path_factory.mktemp("hotwords")
    settings, proc, base = serve(tmp, "data", **model_overrides(tiny_models))
    try:
        wait_for(lambda: get_health(base)[1].get("status") == "ok", timeout=180)
        yield settings, base, speech_file(tmp, "wav")
    finally:
        assert stop(proc) == 0
        assert "Traceback" not in (tmp / "data.log").read_text()


def _submit(base, path, **data) -> dict:
    with open(path, "rb") as f:
        response = requests.post(
            f"{base}/api/v1/jobs", files={"file": (path.name, f)}, data=data, timeout=30
        )
    assert response.status_code == 202, response.text
    return response.json()


def _done(base, job_id) -> dict:
    def finished():
        job = requests.get(f"{base}/api/v1/jobs/{job_id}", timeout=10).json()
        return job if job["state"] in ("done", "failed") else None

    job = wait_for(finished, timeout=120, what=f"job {job_id}")
    assert job["state"] == "done", job["error"]
    return job


@pytest.mark.slow
def test_the_api_never_hands_unusable_hotwords_to_the_model(service):
    _settings, base, speech = service
    plain = _done(base, _submit(base, speech)["id"])
    accepted = _submit(base, speech, hotwords="😀,<s>")
    assert any("😀" in w and "<s>" in w for w in accepted["hotword_warnings"])  # told at once
    odd = _done(base, accepted["id"])
    assert odd["effective_hotwords"] == []
    assert any("😀" in w and "<s>" in w for w in odd["hotword_warnings"])
    # the model got no hotwords at all, so the same audio gives the same sentences
    assert odd["sentences"] == plain["sentences"] and odd["text"] == plain["text"]

    mixed = _done(base, _submit(base, speech, hotwords="天气 😀 今天")["id"])
    assert mixed["effective_hotwords"] == ["天气", "今天"]


@pytest.mark.slow
def test_openai_prompt_and_default_list_follow_the_same_rule(service):
    settings, base, speech = service
    with open(speech, "rb") as f:
        plain = requests.post(
            f"{base}/v1/audio/transcriptions", files={"file": (speech.name, f)},
            data={"model": "seaco-paraformer"}, timeout=120,
        )  # fmt: skip
    with open(speech, "rb") as f:
        odd = requests.post(
            f"{base}/v1/audio/transcriptions", files={"file": (speech.name, f)},
            data={"model": "seaco-paraformer", "prompt": "😀 <unk>"}, timeout=120,
        )  # fmt: skip
    assert odd.status_code == plain.status_code == 200
    assert odd.json()["text"] == plain.json()["text"]
    with open(speech, "rb") as f:
        verbose = requests.post(
            f"{base}/v1/audio/transcriptions",
            files={"file": (speech.name, f)},
            data={"prompt": "天气 😀", "response_format": "verbose_json", "model": "seaco"},
            timeout=120,
        ).json()
    assert verbose["x_seaco"]["hotwords"] == ["天气", "😀"]  # as asked
    assert verbose["x_seaco"]["effective_hotwords"] == ["天气"]  # as the model got them
    assert any("😀" in w for w in verbose["x_seaco"]["hotword_warnings"])

    store = open_store(settings.db_path)
    try:
        save_default_hotwords(store, "今天, 😀")
        job = _done(base, _submit(base, speech)["id"])
    finally:
        save_default_hotwords(store, "")
        store.close()
    assert job["effective_hotwords"] == ["今天"]
    assert any("😀" in w for w in job["hotword_warnings"])
    assert json.dumps(job["hotword_warnings"], ensure_ascii=False).count("😀") == 1


@pytest.mark.slow
def test_seaco_submit_says_what_was_left_out(service):
    _settings, base, speech = service
    done = subprocess.run(
        [sys.executable, "-m", "engine", "submit", str(speech), "--url", base,
         "--hotwords", "天气,😀", "--wait"],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "hotwords: Left out, the model cannot spell them: 😀 (an emoji or symbol)" in done.stderr
