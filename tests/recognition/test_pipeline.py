"""engine.recognition.pipeline and engine.recognition.random_models against real funasr with
the tiny random-weight models.

No mocks: every transcription runs funasr's VAD -> SeACo-Paraformer -> CT-Transformer code
path on models built in the real ModelScope layout (random weights, so the text is
meaningless but deterministic). The models are built once per session (tests/conftest.py).
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from engine.config import load_settings
from engine.errors import ModelError, ModelFilesMissingError, SeacoError
from engine.recognition.pipeline import (
    ASR_FILES,
    PUNC_FILES,
    VAD_FILES,
    AsrPipeline,
    Transcript,
    hotword_argument,
    is_random_weight_model,
    merge_hotwords,
    parse_hotwords,
    pipeline_for,
    resolve_device,
    resolve_model_spec,
    validate_model_dir,
)
from tests.audio_fixtures import speech_samples, synthetic_speech

SR = 16000
REPO = Path(__file__).resolve().parents[2]


# --- audio ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> np.ndarray:
    """About 3 s of speech (espeak-ng if present, else the synthetic voiced signal)."""
    text = "jin1 tian1 tian1 qi4 hen3 hao3, wo3 men5 qu4 gong1 yuan2 san4 bu4"
    return speech_samples(tmp_path_factory.mktemp("speech") / "speech.wav", text)[: 3 * SR]


@pytest.fixture(scope="module")
def pipeline(tiny_models: dict[str, Path]) -> AsrPipeline:
    return AsrPipeline.load(
        str(tiny_models["asr"]), str(tiny_models["vad"]), str(tiny_models["punc"]), device="cpu"
    )


def vocab(model_dir: Path) -> set[str]:
    return set(json.loads((model_dir / "tokens.json").read_text(encoding="utf-8")))


def assert_sentences_valid(t: Transcript, duration_ms: int) -> None:
    starts = [s.start_ms for s in t.sentences]
    assert starts == sorted(starts)
    for s in t.sentences:
        assert 0 <= s.start_ms <= s.end_ms <= duration_ms
        assert s.text.strip()


# --- transcription ----------------------------------------------------------------------------
def test_speech_gives_text_timestamps_and_confidence(pipeline, speech, tiny_models):
    t = pipeline.transcribe(speech)
    assert t.text and t.raw_text
    assert t.tokens > 0
    assert t.confidence is not None and 0.0 < t.confidence <= 1.0
    assert t.hotwords == []
    assert t.sentences
    assert_sentences_valid(t, len(speech) * 1000 // SR)
    # the raw text is made of the model's own tokens, without funasr's per-character spaces
    assert not re.search(r"[\u4e00-\u9fff] +[\u4e00-\u9fff]", t.raw_text)
    assert set(t.raw_text) <= vocab(tiny_models["asr"]) | set("abcdefghijklmnopqrstuvwxyz ")
    # the sentences cover the punctuated text exactly
    assert "".join(s.text for s in t.sentences).replace(" ", "") == t.text.replace(" ", "")


def test_hotwords_change_the_output_and_do_not_leak(pipeline, speech, tiny_models):
    hotwords = ["天气", "今天", "paraformer"]
    assert set("天气今天") <= vocab(tiny_models["asr"])
    plain = pipeline.transcribe(speech)
    biased = pipeline.transcribe(speech, hotwords)
    assert biased.hotwords == hotwords
    assert biased.raw_text != plain.raw_text
    assert pipeline.transcribe(speech) == plain  # no hotword state left behind


def test_transcription_is_deterministic(pipeline, speech):
    first = pipeline.transcribe(speech, ["天气"])
    pipeline.transcribe(synthetic_speech(2.0, seed=5))
    assert pipeline.transcribe(speech, ["天气"]) == first  # confidence included: per call


@pytest.mark.parametrize("level", [0.0, 1e-5])
def test_silence_gives_an_empty_transcript(pipeline, level):
    quiet = (level * np.random.default_rng(1).standard_normal(3 * SR)).astype(np.float32)
    t = pipeline.transcribe(quiet, ["天气"])
    assert (t.text, t.raw_text, t.sentences, t.confidence, t.tokens) == ("", "", [], None, 0)


@pytest.mark.parametrize("n", [0, 1, 100, 399, 400, 1600, 4000])
def test_very_short_audio_does_not_crash(pipeline, n):
    t = pipeline.transcribe(synthetic_speech(1.0)[:n])
    assert isinstance(t, Transcript)
    assert_sentences_valid(t, max(n, 1600) * 1000 // SR)
    assert (t.confidence is None) == (t.tokens == 0)


def test_several_vad_segments(pipeline, speech):
    gap = np.zeros(int(2.5 * SR), np.float32)  # digital silence long enough for the VAD
    audio = np.concatenate([speech, gap, synthetic_speech(2.0, seed=3), gap, speech])
    t = pipeline.transcribe(audio)
    duration_ms = len(audio) * 1000 // SR
    assert_sentences_valid(t, duration_ms)
    second_start_ms = (len(speech) + len(gap)) * 1000 // SR
    assert t.sentences[0].start_ms < len(speech) * 1000 // SR
    assert t.sentences[-1].end_ms > 2 * second_start_ms
    # funasr's own sentence_info misaligns text after a segment boundary; ours does not
    assert "".join(s.text for s in t.sentences).replace(" ", "") == t.text.replace(" ", "")
    single = pipeline.transcribe(speech)
    assert t.tokens > 2 * single.tokens
    assert t.confidence is not None and 0.0 < t.confidence <= 1.0


def test_a_segment_without_tokens_does_not_empty_the_transcript(tiny_models, speech):
    """funasr 1.4.16 drops the whole transcript when one VAD segment yields no token."""
    import torch

    pipe = AsrPipeline.load(
        str(tiny_models["asr"]), str(tiny_models["vad"]), str(tiny_models["punc"]), device="cpu"
    )
    with torch.no_grad():  # a slow-firing CIF: ~1 token per 3 s, none for a short segment
        pipe._model.model.predictor.cif_output.bias.fill_(float(np.log(0.02 / 0.98)))
    long = np.concatenate([speech, speech[: SR // 2]])
    gap = np.zeros(int(2.5 * SR), np.float32)
    audio = np.concatenate([long, gap, speech[SR // 2 : SR // 2 + SR // 3], gap[:SR]])
    assert pipe.transcribe(long).tokens >= 1
    t = pipe.transcribe(audio)
    assert t.text and t.tokens >= 1


def test_concurrent_calls_are_serialised(pipeline, speech):
    expected = {None: pipeline.transcribe(speech), "hw": pipeline.transcribe(speech, ["天气"])}
    results: list[tuple[str | None, Transcript]] = []

    def work(i: int) -> None:
        key = "hw" if i % 2 else None
        results.append((key, pipeline.transcribe(speech, ["天气"] if key else None)))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(results) == 6
    for key, t in results:
        assert t == expected[key]


def test_info(pipeline, tiny_models):
    info = pipeline.info()
    assert info["device"] == "cpu"
    assert info["models"] == {k: str(v) for k, v in tiny_models.items()}
    assert info["random_weights"] == {"asr": True, "vad": True, "punc": True}
    assert all(n > 0 for n in info["parameters"].values())
    assert info["funasr_version"] == "1.4.16"
    assert info["torch_version"].startswith("2.")
    assert info["confidence_hook"] == "_seaco_decode_with_ASF"


def test_loaded_weights_are_the_built_ones(pipeline, tiny_models):
    """funasr only warns on a shape mismatch and silently keeps random init for missing keys."""
    import torch

    loaded = {
        "asr": pipeline._model.model,
        "vad": pipeline._model.vad_model,
        "punc": pipeline._model.punc_model,
    }
    for kind, model in loaded.items():
        saved = torch.load(tiny_models[kind] / "model.pt", weights_only=True)
        live = model.state_dict()
        assert saved.keys() == live.keys()
        assert all(torch.equal(saved[k], live[k].cpu()) for k in saved)


# --- model directories ------------------------------------------------------------------------
KIND_DIR = {"asr": "seaco-asr", "vad": "fsmn-vad", "punc": "ct-punc"}
CASES = [
    (k, f)
    for k, files in (("asr", ASR_FILES), ("vad", VAD_FILES), ("punc", PUNC_FILES))
    for f in files
]


@pytest.mark.parametrize(("kind", "name"), CASES)
def test_each_missing_file_is_named(tiny_models, tmp_path, kind, name):
    copy = tmp_path / KIND_DIR[kind]
    shutil.copytree(tiny_models[kind], copy)
    (copy / name).unlink()
    with pytest.raises(ModelFilesMissingError) as info:
        validate_model_dir(copy, kind)
    assert f"lacks {name}" in str(info.value)
    assert str(copy) in str(info.value)
    with pytest.raises(ModelFilesMissingError, match=name):
        resolve_model_spec(str(copy), kind)


def test_missing_model_pt_message(tiny_models, tmp_path):
    copy = tmp_path / "asr"
    shutil.copytree(tiny_models["asr"], copy)
    (copy / "model.pt").unlink()
    (copy / "seg_dict").unlink()
    with pytest.raises(ModelFilesMissingError) as info:
        AsrPipeline.load(str(copy), str(tiny_models["vad"]), str(tiny_models["punc"]))
    message = str(info.value)
    assert message.startswith(f"ASR model directory {copy} lacks model.pt")
    assert "random weights" in message and "lacks seg_dict" in message
    assert isinstance(info.value, SeacoError)


def test_empty_model_pt(tiny_models, tmp_path):
    copy = tmp_path / "vad"
    shutil.copytree(tiny_models["vad"], copy)
    (copy / "model.pt").write_bytes(b"")
    with pytest.raises(ModelFilesMissingError, match="empty model.pt"):
        validate_model_dir(copy, "vad")


@pytest.mark.parametrize("spec", ["/nonexistent/seaco", "./no-such-model", "~/no-such-model-x"])
def test_missing_local_path_fails_fast_without_network(tiny_models, monkeypatch, spec):
    def no_network(*args, **kwargs):
        raise AssertionError("a network connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    with pytest.raises(ModelError, match="no such directory"):
        AsrPipeline.load(spec, str(tiny_models["vad"]), str(tiny_models["punc"]))


def test_resolve_model_spec(tiny_models, tmp_path):
    hub_id = "iic/speech_seaco_paraformer_large_asr_nat-zh-cn-16k-common-vocab8404-pytorch"
    assert resolve_model_spec(hub_id, "asr") == hub_id
    assert resolve_model_spec(str(tiny_models["asr"]), "asr") == str(tiny_models["asr"])
    a_file = tmp_path / "model.pt"
    a_file.write_bytes(b"x")
    with pytest.raises(ModelError, match="not a model directory"):
        resolve_model_spec(str(a_file), "asr")
    with pytest.raises(ModelError, match="SEACO_PUNC_MODEL"):
        resolve_model_spec("  ", "punc")


def test_random_weight_markers(tiny_models, tmp_path):
    for kind, path in tiny_models.items():
        assert is_random_weight_model(str(path))
        conf = json.loads((path / "configuration.json").read_text(encoding="utf-8"))
        assert conf["random_weights"] is True
        assert conf["file_path_metas"]["config"] == "config.yaml"
        assert conf["file_path_metas"]["init_param"] == "model.pt"
        marker = (path / "RANDOM_WEIGHTS.txt").read_text(encoding="utf-8")
        assert marker.startswith("random weights, built by seaco models build-test, size=tiny")
        assert "seed=0" in marker
        validate_model_dir(path, kind)
    # without the markers it is a real model directory
    copy = tmp_path / "real"
    shutil.copytree(tiny_models["asr"], copy)
    (copy / "RANDOM_WEIGHTS.txt").unlink()
    conf = json.loads((copy / "configuration.json").read_text(encoding="utf-8"))
    del conf["random_weights"]
    (copy / "configuration.json").write_text(json.dumps(conf), encoding="utf-8")
    assert not is_random_weight_model(str(copy))
    assert not is_random_weight_model("iic/speech_fsmn_vad_zh-cn-16k-common-pytorch")


def test_seg_dict_covers_vocab_and_english(tiny_models):
    asr = tiny_models["asr"]
    tokens = vocab(asr)
    seg = dict(
        line.split(" ", 1) for line in (asr / "seg_dict").read_text(encoding="utf-8").splitlines()
    )
    assert seg["paraformer"].split() and all(p in tokens for p in seg["paraformer"].split())
    chinese = {t for t in tokens if len(t) == 1 and "\u4e00" <= t <= "\u9fff"}
    assert len(chinese) >= 300 and chinese <= set(seg)
    assert json.loads((asr / "tokens.json").read_text(encoding="utf-8"))[:3] == [
        "<blank>",
        "<s>",
        "</s>",
    ]
    import yaml

    conf = yaml.safe_load((tiny_models["punc"] / "config.yaml").read_text(encoding="utf-8"))
    assert conf["model_conf"]["punc_list"] == ["<unk>", "_", "，", "。", "？", "、"]
    vad = yaml.safe_load((tiny_models["vad"] / "config.yaml").read_text(encoding="utf-8"))
    assert vad["model_conf"]["decibel_thres"] == pytest.approx(-30.0)


def test_build_is_deterministic_per_seed(tmp_path):
    import torch

    from engine.recognition.random_models import build_test_models

    a = build_test_models(tmp_path / "a", size="tiny", seed=7)
    b = build_test_models(tmp_path / "b", size="tiny", seed=7)
    c = build_test_models(tmp_path / "c", size="tiny", seed=8)
    for kind in ("asr", "vad", "punc"):
        sa = torch.load(a[kind] / "model.pt", weights_only=True)
        sb = torch.load(b[kind] / "model.pt", weights_only=True)
        assert sa.keys() == sb.keys()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
        for name in ("config.yaml", "tokens.json", "am.mvn", "seg_dict"):
            if (a[kind] / name).exists():
                assert (a[kind] / name).read_bytes() == (b[kind] / name).read_bytes()
        sc = torch.load(c[kind] / "model.pt", weights_only=True)
        assert any(not torch.equal(sa[k], sc[k]) for k in sa)


def test_same_seed_same_transcript(tmp_path, tiny_models, pipeline, speech):
    from engine.recognition.random_models import build_test_models

    again = build_test_models(tmp_path / "again", size="tiny", seed=0)
    other = AsrPipeline.load(str(again["asr"]), str(again["vad"]), str(again["punc"]), device="cpu")
    assert other.transcribe(speech, ["天气"]) == pipeline.transcribe(speech, ["天气"])


def test_full_size_dimensions_without_building():
    """`full` mirrors the real sizes (checked on the meta device: no memory, no disk)."""
    import torch

    from engine.recognition import random_models as tm

    asr_tokens, punc_tokens = tm._asr_tokens("full"), tm._punc_tokens("full")
    assert len(asr_tokens) == len(set(asr_tokens)) == 8404
    assert len(punc_tokens) == len(set(punc_tokens)) == 471_067
    with torch.device("meta"):
        asr = tm._instantiate(tm._asr_config("full", 8404), 8404, input_size=560)
        punc = tm._instantiate(tm._punc_config("full"), len(punc_tokens), input_size=None)
    n_asr = sum(p.numel() for p in asr.parameters())
    n_punc = sum(p.numel() for p in punc.parameters())
    assert 240e6 < n_asr < 255e6
    assert 275e6 < n_punc < 290e6


# --- helpers ----------------------------------------------------------------------------------
def test_parse_hotwords():
    assert parse_hotwords(None) == []
    assert parse_hotwords("") == []
    assert parse_hotwords("  \n ") == []
    assert parse_hotwords("科哥, Paraformer；阿里") == ["科哥", "Paraformer", "阿里"]
    assert parse_hotwords("天气，今天、语音;识别\n热词\t模型  ,,") == [
        "天气",
        "今天",
        "语音",
        "识别",
        "热词",
        "模型",
    ]


def test_merge_hotwords():
    assert merge_hotwords(None, None) == []
    assert merge_hotwords([], "") == []
    assert merge_hotwords(["天气", " 今天 "], "今天，Paraformer") == ["天气", "今天", "Paraformer"]
    assert merge_hotwords("paraformer", ["ParaFormer", "SeACo", "seaco"]) == ["paraformer", "SeACo"]
    assert merge_hotwords(None, "阿里、科哥") == ["阿里", "科哥"]
    assert merge_hotwords(["", "  ", "天气"], None) == ["天气"]


def test_hotword_argument():
    assert hotword_argument([]) is None
    assert hotword_argument(["天气"]) == "天气"
    assert hotword_argument(["天气", "paraformer"]) == "天气 paraformer"


def test_resolve_device():
    import torch

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda:0" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ModelError, match="Unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match="CUDA is not available"):
            resolve_device("cuda")
        with pytest.raises(ModelError, match="CUDA is not available"):
            resolve_device("cuda:1")


def test_importing_engine_asr_is_cheap():
    code = (
        "import sys, engine.recognition.pipeline, engine.recognition.random_models; "
        "print('funasr' in sys.modules, 'torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "False"]


# --- precision ------------------------------------------------------------------------------
def output_dtypes(pipe: AsrPipeline, audio: np.ndarray) -> tuple[Transcript, dict[str, set]]:
    """Transcribe, recording the dtypes of what funasr's SeACo encoder and CIF predictor
    modules return (the predictor's token weights and counts)."""
    seen: dict[str, set] = {"encoder": set(), "predictor": set()}

    def record(name):
        def hook(_module, _inputs, out):
            outs = out if isinstance(out, tuple) else (out,)
            seen[name].update(
                o.dtype for o in outs if hasattr(o, "is_floating_point") and o.is_floating_point()
            )

        return hook

    model = pipe._model.model
    hooks = [
        model.encoder.register_forward_hook(record("encoder")),
        model.predictor.register_forward_hook(record("predictor")),
    ]
    try:
        return pipe.transcribe(audio, ["天气"]), seen
    finally:
        for hook in hooks:
            hook.remove()


def test_bf16_runs_the_asr_model_under_autocast_and_fp32_does_not(tiny_models, speech, pipeline):
    import torch

    settings = load_settings(
        {
            "SEACO_ASR_MODEL": str(tiny_models["asr"]),
            "SEACO_VAD_MODEL": str(tiny_models["vad"]),
            "SEACO_PUNC_MODEL": str(tiny_models["punc"]),
            "SEACO_DEVICE": "cpu",
            "SEACO_NCPU": "1",
            "SEACO_PRECISION": "bf16",
        },
        env_file=None,
    )
    bf16 = pipeline_for(settings)  # the worker's way, segment batching included
    assert bf16.info()["precision"] == "bf16" and pipeline.info()["precision"] == "fp32"
    t, dtypes = output_dtypes(bf16, speech)
    assert dtypes == {"encoder": {torch.bfloat16}, "predictor": {torch.float32}}
    assert t.text and t.confidence is not None and 0.0 <= t.confidence <= 1.0
    assert_sentences_valid(t, 3000)
    _, dtypes = output_dtypes(pipeline, speech)
    assert dtypes == {"encoder": {torch.float32}, "predictor": {torch.float32}}


def test_fp16_without_cuda_is_refused_before_loading_anything(tiny_models):
    with pytest.raises(ModelError, match="fp16 needs a CUDA device"):
        AsrPipeline.load(
            str(tiny_models["asr"]),
            str(tiny_models["vad"]),
            str(tiny_models["punc"]),
            device="cpu",
            precision="fp16",
        )
