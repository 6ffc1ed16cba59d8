"""`seaco eval` end to end with the tiny random-weight models and espeak speech, its error
messages, and the check of hotwords against the ASR model's dictionary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine import audio
from engine.accuracy import edit_counts
from engine.cli import main
from engine.config import load_settings
from engine.hotword_vocabulary import check_hotwords, hotword_warnings, model_vocab
from engine.recognition.pipeline import pipeline_for
from engine.tools.evaluation import load_manifest
from tests.audio_fixtures import speech

REPO = Path(__file__).resolve().parents[2]
UNKNOWN = "龘"  # not among the tiny model's 400 characters (checked below)


def write_manifest(path: Path, rows: list[dict | str]) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Two utterances of Mandarin-like speech in a directory with their manifest."""
    d = tmp_path_factory.mktemp("corpus")
    speech(d / "weather.wav", "jin1 tian1 tian1 qi4 hen3 hao3")
    speech(d / "park.wav", "wo3 men5 qu4 gong1 yuan2 san4 bu4")
    (d / "hotwords.txt").write_text("公园\n\n散步\n", encoding="utf-8")
    return write_manifest(
        d / "manifest.jsonl",
        [
            {
                "id": "weather",
                "audio": "weather.wav",
                "text": "今天天气很好。",
                "hotwords": ["天气"],
            },
            {
                "key": "park",
                "source": str(d / "park.wav"),
                "target": "我们去公园散步",
                "hotwords": f"今天, {UNKNOWN}",
            },
        ],
    )


def model_env(tiny_models) -> dict[str, str]:
    return {
        "SEACO_ASR_MODEL": str(tiny_models["asr"]),
        "SEACO_VAD_MODEL": str(tiny_models["vad"]),
        "SEACO_PUNC_MODEL": str(tiny_models["punc"]),
        "SEACO_DEVICE": "cpu",
        "SEACO_NCPU": "1",
    }


@pytest.mark.slow
def test_eval_command_end_to_end(tmp_path, corpus, tiny_models):
    out = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEACO_")}
    env.update(model_env(tiny_models), PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-m", "engine.cli", "eval", str(corpus), "--json", str(out),
         "--hotwords-file", str(corpus.parent / "hotwords.txt")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    table = proc.stdout
    assert table.startswith(f"seaco eval {corpus}: 2 utterances")
    assert "RANDOM-WEIGHT" in table and "with hotwords" in table and "CER by confidence" in table
    assert "ffmpeg" not in table  # funasr's banner went to stderr, not into the table
    assert UNKNOWN in table  # the dictionary warning

    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["utterances"] == 2
    weather, park = report["per_utterance"]
    assert (weather["id"], park["id"]) == ("weather", "park")
    assert weather["hotwords"] == ["天气", "公园", "散步"]  # its own, then the file's
    assert park["hotwords"] == ["今天", UNKNOWN, "公园", "散步"]
    assert any(UNKNOWN in w for w in report["warnings"])
    assert all(report["models"]["random_weights"].values())

    # The numbers agree with the texts, and the runs are what they claim to be: the same
    # pipeline as the worker's, once with the utterance's hotwords and once with none.
    pipeline = pipeline_for(load_settings(model_env(tiny_models), env_file=None))
    total = {"with_hotwords": 0, "without_hotwords": 0}
    for utt in report["per_utterance"]:
        samples, _ = audio.decode(Path(utt["audio"]))
        expected = {
            "with_hotwords": pipeline.transcribe(samples, utt["hotwords"]).text,
            "without_hotwords": pipeline.transcribe(samples).text,
        }
        for run, text in expected.items():
            assert utt[run]["text"] == text
            e = edit_counts(utt["reference"], text)
            assert (utt[run]["errors"], utt[run]["ref_units"]) == (e.errors, e.ref_units)
            total[run] += e.errors
    assert weather["with_hotwords"]["text"] != weather["without_hotwords"]["text"]
    for run, errors in total.items():
        summary = report["runs"][run]
        assert summary["edits"]["errors"] == errors
        assert summary["cer"] == pytest.approx(errors / 13)  # 6 + 7 reference characters
        assert summary["hotwords"]["ref"] == 3  # 天气 in one reference, 公园 and 散步 in the other
        assert sum(b["utterances"] for b in summary["calibration"]) == 2
        for key in ("recall", "precision", "f1"):
            value = summary["hotwords"][key]
            assert value is None or 0.0 <= value <= 1.0


def test_eval_errors_are_one_line_with_exit_code_2(tmp_path, capsys):
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    cases = {
        "missing.jsonl": "missing.jsonl: no such file",
        write_manifest(tmp_path / "bad.jsonl", ['{"audio": "a.wav", "text": "好"}', "{oops"]): (
            "bad.jsonl, line 2: not valid JSON"
        ),
        write_manifest(tmp_path / "gone.jsonl", [{"audio": "nope.wav", "text": "好"}]): (
            f"gone.jsonl, line 1: audio file {tmp_path / 'nope.wav'} does not exist"
        ),
        write_manifest(tmp_path / "field.jsonl", [{"audio": "a.wav"}]): (
            'field.jsonl, line 1: needs "audio" (a path) and "text"'
        ),
        write_manifest(tmp_path / "list.jsonl", ["[1, 2]"]): "list.jsonl, line 1: expected",
        write_manifest(tmp_path / "empty.jsonl", [""]): "empty.jsonl has no utterances",
    }
    for manifest, message in cases.items():
        assert main(["eval", str(manifest)]) == 2
        captured = capsys.readouterr()
        assert message in captured.err and captured.err.startswith("error: ")
        assert "Traceback" not in captured.err and captured.out == ""
    good = write_manifest(tmp_path / "good.jsonl", [{"audio": "a.wav", "text": "好"}])
    assert main(["eval", str(good), "--hotwords-file", str(tmp_path / "none.txt")]) == 2
    assert "none.txt: no such file" in capsys.readouterr().err


def test_dictionary_check_names_unknown_characters_and_unspellable_words(tiny_models):
    vocab = model_vocab(tiny_models["asr"])
    assert UNKNOWN not in vocab.tokens and "天" in vocab.tokens
    assert model_vocab(tiny_models["asr"]) is vocab  # read once per directory
    check = check_hotwords(
        ["天气", f"张{UNKNOWN}", "Paraformer", "阿里AI", "xyzzy"], str(tiny_models["asr"])
    )
    assert check.checked
    assert [(p.word, p.unknown, p.whole_word) for p in check.problems] == [
        (f"张{UNKNOWN}", [UNKNOWN], False),  # one character the model cannot write
        ("阿里AI", ["阿里AI"], True),  # mixed scripts: funasr makes it one <unk>
        ("xyzzy", ["xyzzy"], True),  # a Latin word missing from seg_dict
    ]
    warnings = check.warnings()
    assert any(f"张{UNKNOWN} ({UNKNOWN})" in w for w in warnings)
    assert any("阿里AI" in w and "xyzzy" in w for w in warnings)
    assert check_hotwords(["天气", "paraformer"], str(tiny_models["asr"])).warnings() == []
    # the operator-facing list of warnings includes them once the model is given
    assert any(UNKNOWN in w for w in hotword_warnings([f"张{UNKNOWN}"], str(tiny_models["asr"])))
    assert hotword_warnings([f"张{UNKNOWN}"]) == []


def test_dictionary_check_skips_a_hub_model_that_is_not_downloaded(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path))
    check = check_hotwords(["天气"], "iic/speech_seaco_paraformer_large_asr_nat-zh-cn-16k")
    assert not check.checked and check.problems == []
    assert "not downloaded" in check.warnings()[0]


def test_dictionary_check_finds_a_downloaded_hub_model(tmp_path, monkeypatch, tiny_models):
    cache = tmp_path / "cache"
    target = cache / "models" / "iic" / "seaco"
    target.mkdir(parents=True)
    for name in ("tokens.json", "seg_dict"):
        (target / name).write_bytes((tiny_models["asr"] / name).read_bytes())
    monkeypatch.setenv("MODELSCOPE_CACHE", str(cache))
    check = check_hotwords([UNKNOWN], "iic/seaco")
    assert check.model_dir == target and check.problems[0].unknown == [UNKNOWN]


def test_aishell_ne_manifest_recipe_helper(tmp_path):
    """bench/aishell_ne_manifest.py on a miniature copy of the corpus layout."""
    text = tmp_path / "text"
    text.write_text(
        "BAC009S0764W0179 国务院发展研究中心\nBAC009S0765W0131 这些房产全由宋芳自己打理\n"
    )
    for speaker, utt in (("S0764", "BAC009S0764W0179"), ("S0765", "BAC009S0765W0131")):
        (tmp_path / "wav" / "test" / speaker).mkdir(parents=True)
        (tmp_path / "wav" / "test" / speaker / f"{utt}.wav").write_bytes(b"RIFF")
    out = tmp_path / "ne.jsonl"
    script = [sys.executable, str(REPO / "bench" / "aishell_ne_manifest.py"), "--text", str(text)]
    args = ["--wav-dir", str(tmp_path / "wav" / "test"), "--out", str(out)]
    done = subprocess.run(script + args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    utterances = load_manifest(out)
    assert [u.id for u in utterances] == ["BAC009S0764W0179", "BAC009S0765W0131"]
    assert utterances[1].reference == "这些房产全由宋芳自己打理" and utterances[1].hotwords == []
    (tmp_path / "wav" / "test" / "S0765" / "BAC009S0765W0131.wav").unlink()
    failed = subprocess.run(script + args, capture_output=True, text=True, timeout=60)
    assert failed.returncode == 1 and "BAC009S0765W0131" in failed.stderr
