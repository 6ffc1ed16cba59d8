"""Random-weight SeACo-Paraformer, FSMN-VAD and CT-Transformer models in the real layout.

No model hub is reachable from the machines this project is developed and tested on, so the
trained weights cannot be had there. `build_test_models` writes three model directories in
the ModelScope/FunASR layout (`configuration.json` with `file_path_metas`, `config.yaml`,
`model.pt` as a plain state dict, `tokens.json`, `am.mvn`, `seg_dict`) that
`funasr.AutoModel(model=<dir>, vad_model=<dir>, punc_model=<dir>)` loads through exactly the
code path a downloaded model takes. The weights are random: the text they produce is
garbage, but it is deterministic for a seed, hotwords change it, and a `full` build has the
real dimensions, so its compute and memory costs are realistic (use it for benchmarks and
say that the weights are random).

Every directory says so twice: a `RANDOM_WEIGHTS.txt` file and `"random_weights": true` in
`configuration.json` (`engine.recognition.model_specs.is_random_weight_model` checks both).

Three deterministic weight tweaks make the random models behave like a pipeline:

- ASR: the CIF predictor's firing head gets a small weight and a bias so it fires about
  5.5 tokens per second of audio (a random initialisation may fire zero times: empty text).
- VAD: the last FSMN layer always says "speech" and `decibel_thres` is -30 dB (production
  uses -100), so frames quieter than -30 dB are silence: digital silence splits segments and
  all-zero input yields no segment at all.
- Punctuation: class 0 (`<unk>`) is biased off, or a literal `<unk>` would show in the text,
  and the other classes are shifted so about one character in four or five gets a mark.

Sizes:

- `tiny`: ASR d=32, 4 heads, 2 encoder + 2 decoder + 1 SeACo decoder blocks, ~420 tokens
  (~0.19 M parameters); punctuation d=32, 1 block (~0.02 M); the VAD at its real size
  (0.43 M). ~2.5 MB on disk; loads in well under a second.
- `full`: SeACo-Paraformer-large (512-d, 4 heads, 2048 FFN, 50 encoder and 16 decoder
  blocks, CIF predictor v3 with a BLSTM upsampler, vocab 8404; 6 SeACo decoder blocks of
  1024 FFN, a count chosen to match the ~247 M parameters of the real model): 247,339,018
  parameters, ~990 MB. The large CT-Transformer punctuation model (516-d, 12 heads, 12
  blocks, vocab 471,067): 281,365,842 parameters, ~1.1 GB. Its vocabulary is synthetic (all
  CJK unified ideographs, English pieces, then two-character words) but has the real size,
  so the embedding costs what the real one does; no `jieba_usr_dict` is written, so funasr
  splits Chinese into characters for it. The service's default punctuation model
  (`punc_ct-transformer_zh-cn-common-vocab272727`) is smaller (256-d, 4 blocks, ~73 M).

funasr and torch are imported inside the functions: importing this module is cheap.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

SIZES = ("tiny", "full")

# The most frequent Chinese characters, roughly by frequency (deduplicated on use). The tiny
# vocabulary takes the first few hundred; the full one appends the rest of the CJK block.
_COMMON_CHARS = (
    "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过"
    "家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本"
    "见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己"
    "话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平"
    "真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报"
    "立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务"
    "制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吧某谈"
    "转画持乎府早变结近技音语识别热词模型测试系统服务器声学文本标点句子时间识准确率快慢"
    "阿啊爸吃穿喝睡饭菜茶酒钱买卖价格商店医院学校老师同学朋友孩子父母哥姐妹弟爷奶春夏秋冬雨雪"
    "晴阴冷热温度空云星阳河湖江城村街楼房屋桌椅床灯窗花草树木鸟鱼狗猫马牛羊猪鸡红黄蓝绿黑紫"
    "早晚午夜周末节假期今明昨每半刻分钟秒号码手机电脑网络软件硬件数据文件图片视频音乐电影游戏"
    "新闻天气交通飞机火车汽车地铁公交站票旅游酒店宾馆会议公司经理员工工作工资项目计划任务问题"
    "办法原因结果开始结束完成继续准备需要希望喜欢讨厌觉得知道认为相信记得忘记帮助告诉回答请问"
    "科技研究院阿里巴云计算智能语言翻译会议纪要录音转写客户销售市场产品质量安全"
)

# English BPE pieces of the tiny vocabulary and the seg_dict entries that use them
# ("@@" marks a piece continued by the next one, as in the real vocab8404).
_ENGLISH_WORDS: dict[str, list[str]] = {
    "paraformer": ["pa@@", "ra@@", "for@@", "mer"],
    "seaco": ["sea@@", "co"],
    "funasr": ["fun@@", "asr"],
    "asr": ["asr"],
    "gpu": ["gpu"],
    "cpu": ["cpu"],
    "ai": ["ai"],
    "ok": ["ok"],
    "app": ["app"],
    "api": ["a@@", "pi"],
}

PUNC_LIST = ["<unk>", "_", "，", "。", "？", "、"]

_SIZE_DIMS: dict[str, dict[str, Any]] = {
    "tiny": {
        "n_chars": 400,
        "asr_vocab": None,  # just the characters + English pieces + specials
        "d": 32,
        "heads": 4,
        "ffn": 64,
        "enc_blocks": 2,
        "dec_blocks": 2,
        # as many as the real model: with over 50 hotwords funasr's filter runs SeACo decoder
        # blocks 0-5 by index (forward_asf6), so fewer fail with IndexError
        "seaco_blocks": 6,
        "seaco_ffn": 64,
        "punc_vocab": None,
        "punc_d": 32,
        "punc_heads": 4,
        "punc_ffn": 64,
        "punc_blocks": 1,
    },
    "full": {
        "n_chars": None,  # all common characters, then the CJK block up to the vocab size
        "asr_vocab": 8404,
        "d": 512,
        "heads": 4,
        "ffn": 2048,
        "enc_blocks": 50,
        "dec_blocks": 16,
        "seaco_blocks": 6,
        "seaco_ffn": 1024,
        "punc_vocab": 471_067,
        "punc_d": 516,
        "punc_heads": 12,
        "punc_ffn": 2048,
        "punc_blocks": 12,
    },
}

# Tokens per second the tweaked CIF predictor fires at (Mandarin speech: ~4-6 chars/s).
CIF_TOKENS_PER_S = 5.5
# Encoder frames per second after low-frame-rate stacking (lfr_n=6 of 10 ms frames).
_ENCODER_FPS = 1000.0 / 60.0
VAD_DECIBEL_THRES = -30.0


# --- vocabularies ---------------------------------------------------------------------------
def _unique(chars: str) -> list[str]:
    return list(dict.fromkeys(c for c in chars if not c.isspace()))


def _cjk_fill(existing: list[str], total: int) -> list[str]:
    """`existing` followed by CJK unified ideographs in code-point order, `total` in all."""
    out = list(existing)
    seen = set(out)
    cp = 0x4E00
    while len(out) < total and cp <= 0x9FFF:
        ch = chr(cp)
        if ch not in seen:
            out.append(ch)
            seen.add(ch)
        cp += 1
    return out


def _asr_tokens(size: str) -> list[str]:
    dims = _SIZE_DIMS[size]
    pieces = list(dict.fromkeys(p for ps in _ENGLISH_WORDS.values() for p in ps))
    specials_head = ["<blank>", "<s>", "</s>"]
    if dims["asr_vocab"] is None:
        chars = _unique(_COMMON_CHARS)[: dims["n_chars"]]
        return specials_head + chars + pieces + ["<unk>"]
    # full: ~1.1k English pieces like the real vocab, the rest characters.
    letters = "abcdefghijklmnopqrstuvwxyz"
    extra = [f"{a}{b}@@" for a in letters for b in letters] + [
        f"{a}{b}" for a in letters for b in letters[:16]
    ]
    pieces = list(dict.fromkeys(pieces + extra))
    n_chars = dims["asr_vocab"] - len(specials_head) - len(pieces) - 1
    chars = _cjk_fill(_unique(_COMMON_CHARS), n_chars)
    tokens = specials_head + chars + pieces + ["<unk>"]
    assert len(tokens) == dims["asr_vocab"], len(tokens)
    return tokens


def _punc_tokens(size: str) -> list[str]:
    dims = _SIZE_DIMS[size]
    words = list(_ENGLISH_WORDS)
    if dims["punc_vocab"] is None:
        chars = _unique(_COMMON_CHARS)[: dims["n_chars"]]
        return ["<blank>", "<s>", "</s>"] + chars + words + ["<unk>"]
    chars = _cjk_fill(_unique(_COMMON_CHARS), 20_992 + 1)  # all of U+4E00..U+9FFF
    tokens = ["<blank>", "<s>", "</s>"] + chars + words
    seen = set(tokens)
    common = _unique(_COMMON_CHARS)
    total = dims["punc_vocab"] - 1
    for a in common:
        for b in common:
            if len(tokens) >= total:
                break
            w = a + b
            if w not in seen:
                tokens.append(w)
                seen.add(w)
        if len(tokens) >= total:
            break
    i = 0
    while len(tokens) < total:  # not reached with the list above, kept for safety
        w = f"w{i}"
        if w not in seen:
            tokens.append(w)
        i += 1
    tokens.append("<unk>")
    assert len(tokens) == dims["punc_vocab"], len(tokens)
    return tokens


def _seg_dict_lines(tokens: list[str]) -> list[str]:
    lines = [f"{w} {' '.join(ps)}" for w, ps in _ENGLISH_WORDS.items()]
    lines += [f"{t} {t}" for t in tokens if len(t) == 1 and "\u4e00" <= t <= "\u9fff"]
    return lines


def _am_mvn(dim: int) -> str:
    """A Kaldi-nnet CMVN file (AddShift = -mean, Rescale = 1/std) with plausible log-mel stats."""
    n_mels = 80
    shift, scale = [], []
    for i in range(dim):
        k = i % n_mels
        shift.append(-(11.0 + 2.5 * math.sin(math.pi * k / (n_mels - 1)) - 0.02 * k))
        scale.append(1.0 / (3.2 + 0.6 * math.cos(math.pi * k / (n_mels - 1))))

    def fmt(values: list[float]) -> str:
        return " ".join(f"{v:.6f}" for v in values)

    return (
        "<Nnet>\n"
        f"<Splice> {dim} {dim}\n"
        "[ 0 ]\n"
        f"<AddShift> {dim} {dim}\n"
        f"<LearnRateCoef> 0 [ {fmt(shift)} ]\n"
        f"<Rescale> {dim} {dim}\n"
        f"<LearnRateCoef> 0 [ {fmt(scale)} ]\n"
        "</Nnet>\n"
    )


# --- configs (the keys of the real config.yaml files) ------------------------------------------
def _asr_config(size: str, vocab_size: int) -> dict[str, Any]:
    s = _SIZE_DIMS[size]
    d = s["d"]
    no_bias = 8377 if vocab_size == 8404 else vocab_size - 2
    return {
        "model": "SeacoParaformer",
        "model_conf": {
            "ctc_weight": 0.0,
            "lsm_weight": 0.1,
            "length_normalized_loss": True,
            "predictor_weight": 1.0,
            "predictor_bias": 1,
            "sampling_ratio": 0.75,
            "inner_dim": d,
            "bias_encoder_type": "lstm",
            "bias_encoder_bid": False,
            "seaco_lsm_weight": 0.1,
            "seaco_length_normalized_loss": True,
            "train_decoder": True,
            "NO_BIAS": no_bias,
        },
        "encoder": "SANMEncoder",
        "encoder_conf": {
            "output_size": d,
            "attention_heads": s["heads"],
            "linear_units": s["ffn"],
            "num_blocks": s["enc_blocks"],
            "dropout_rate": 0.1,
            "positional_dropout_rate": 0.1,
            "attention_dropout_rate": 0.1,
            "input_layer": "pe",
            "pos_enc_class": "SinusoidalPositionEncoder",
            "normalize_before": True,
            "kernel_size": 11,
            "sanm_shfit": 0,
            "selfattention_layer_type": "sanm",
        },
        "decoder": "ParaformerSANMDecoder",
        "decoder_conf": {
            "attention_heads": s["heads"],
            "linear_units": s["ffn"],
            "num_blocks": s["dec_blocks"],
            "att_layer_num": s["dec_blocks"],
            "dropout_rate": 0.1,
            "positional_dropout_rate": 0.1,
            "self_attention_dropout_rate": 0.1,
            "src_attention_dropout_rate": 0.1,
            "kernel_size": 11,
            "sanm_shfit": 0,
        },
        "seaco_decoder": "ParaformerSANMDecoder",
        "seaco_decoder_conf": {
            "attention_heads": s["heads"],
            "linear_units": s["seaco_ffn"],
            "num_blocks": s["seaco_blocks"],
            "att_layer_num": s["seaco_blocks"],
            "dropout_rate": 0.1,
            "positional_dropout_rate": 0.1,
            "self_attention_dropout_rate": 0.1,
            "src_attention_dropout_rate": 0.1,
            "kernel_size": 21,
            "sanm_shfit": 0,
            "use_output_layer": False,
            "wo_input_layer": True,
        },
        "predictor": "CifPredictorV3",
        "predictor_conf": {
            "idim": d,
            "threshold": 1.0,
            "l_order": 1,
            "r_order": 1,
            "tail_threshold": 0.45,
            "smooth_factor2": 0.25,
            "noise_threshold2": 0.01,
            "upsample_times": 3,
            "use_cif1_cnn": False,
            "upsample_type": "cnn_blstm",
        },
        "frontend": "WavFrontend",
        "frontend_conf": {
            "fs": 16000,
            "window": "hamming",
            "n_mels": 80,
            "frame_length": 25,
            "frame_shift": 10,
            "lfr_m": 7,
            "lfr_n": 6,
            "dither": 0.0,
        },
        "specaug": "SpecAugLFR",
        "specaug_conf": {
            "apply_time_warp": False,
            "time_warp_window": 5,
            "time_warp_mode": "bicubic",
            "apply_freq_mask": True,
            "freq_mask_width_range": [0, 30],
            "lfr_rate": 6,
            "num_freq_mask": 1,
            "apply_time_mask": True,
            "time_mask_width_range": [0, 12],
            "num_time_mask": 1,
        },
        "tokenizer": "CharTokenizer",
        "tokenizer_conf": {"unk_symbol": "<unk>", "split_with_space": True},
    }


def _vad_config() -> dict[str, Any]:
    return {
        "model": "FsmnVADStreaming",
        "model_conf": {
            "sample_rate": 16000,
            "detect_mode": 1,
            "snr_mode": 0,
            "max_end_silence_time": 800,
            "max_start_silence_time": 3000,
            "do_start_point_detection": True,
            "do_end_point_detection": True,
            "window_size_ms": 200,
            "sil_to_speech_time_thres": 150,
            "speech_to_sil_time_thres": 150,
            "speech_2_noise_ratio": 1.0,
            "do_extend": 1,
            "lookback_time_start_point": 200,
            "lookahead_time_end_point": 100,
            "max_single_segment_time": 60000,
            "snr_thres": -100.0,
            "noise_frame_num_used_for_snr": 100,
            # Production: -100 (the network decides). Random weights cannot, so loudness does.
            "decibel_thres": VAD_DECIBEL_THRES,
            "speech_noise_thres": 0.6,
            "fe_prior_thres": 0.0001,
            "silence_pdf_num": 1,
            "sil_pdf_ids": [0],
            "speech_noise_thresh_low": -0.1,
            "speech_noise_thresh_high": 0.3,
            "output_frame_probs": False,
            "frame_in_ms": 10,
            "frame_length_ms": 25,
        },
        "encoder": "FSMN",
        "encoder_conf": {
            "input_dim": 400,
            "input_affine_dim": 140,
            "fsmn_layers": 4,
            "linear_dim": 250,
            "proj_dim": 128,
            "lorder": 20,
            "rorder": 0,
            "lstride": 1,
            "rstride": 0,
            "output_affine_dim": 140,
            "output_dim": 248,
        },
        "frontend": "WavFrontendOnline",
        "frontend_conf": {
            "fs": 16000,
            "window": "hamming",
            "n_mels": 80,
            "frame_length": 25,
            "frame_shift": 10,
            "dither": 0.0,
            "lfr_m": 5,
            "lfr_n": 1,
        },
    }


def _punc_config(size: str) -> dict[str, Any]:
    s = _SIZE_DIMS[size]
    d = s["punc_d"]
    return {
        "model": "CTTransformer",
        "model_conf": {
            "ignore_id": 0,
            "embed_unit": d,
            "att_unit": d,
            "dropout_rate": 0.1,
            "punc_list": list(PUNC_LIST),
            "punc_weight": [1.0] * len(PUNC_LIST),
            "sentence_end_id": 3,
        },
        "encoder": "SANMEncoder",
        "encoder_conf": {
            "input_size": d,
            "output_size": d,
            "attention_heads": s["punc_heads"],
            "linear_units": s["punc_ffn"],
            "num_blocks": s["punc_blocks"],
            "dropout_rate": 0.1,
            "positional_dropout_rate": 0.1,
            "attention_dropout_rate": 0.0,
            "input_layer": "pe",
            "pos_enc_class": "SinusoidalPositionEncoder",
            "normalize_before": True,
            "kernel_size": 11,
            "sanm_shfit": 0,
            "selfattention_layer_type": "sanm",
            "padding_idx": 0,
        },
        "tokenizer": "CharTokenizer",
        "tokenizer_conf": {"unk_symbol": "<unk>"},
    }


_TASKS = {
    "asr": "auto-speech-recognition",
    "vad": "voice-activity-detection",
    "punc": "punctuation",
}
_FILE_PATH_METAS: dict[str, dict[str, Any]] = {
    "asr": {
        "init_param": "model.pt",
        "config": "config.yaml",
        "tokenizer_conf": {"token_list": "tokens.json", "seg_dict_file": "seg_dict"},
        "frontend_conf": {"cmvn_file": "am.mvn"},
    },
    "vad": {
        "init_param": "model.pt",
        "config": "config.yaml",
        "frontend_conf": {"cmvn_file": "am.mvn"},
    },
    "punc": {
        "init_param": "model.pt",
        "config": "config.yaml",
        "tokenizer_conf": {"token_list": "tokens.json"},
    },
}
_MIRRORS = {
    "tiny": {
        "asr": "SeACo-Paraformer (tiny dimensions)",
        "vad": "iic/speech_fsmn_vad_zh-cn-16k-common-pytorch",
        "punc": "CT-Transformer (tiny dimensions)",
    },
    "full": {
        "asr": "iic/speech_seaco_paraformer_large_asr_nat-zh-cn-16k-common-vocab8404-pytorch",
        "vad": "iic/speech_fsmn_vad_zh-cn-16k-common-pytorch",
        "punc": "iic/punc_ct-transformer_cn-en-common-vocab471067-large",
    },
}


# --- building ---------------------------------------------------------------------------------
def _instantiate(config: dict[str, Any], vocab_size: int, input_size: int | None):
    """Build a model the way `AutoModel.build_model` does: model_conf deep-updated with kwargs."""
    from funasr.register import tables
    from funasr.utils.misc import deep_update

    kwargs = json.loads(json.dumps(config))  # deep copy, plain types
    for key in ("tokenizer", "tokenizer_conf", "frontend", "frontend_conf"):
        kwargs.pop(key, None)
    kwargs["vocab_size"] = vocab_size
    kwargs["input_size"] = input_size
    model_conf: dict[str, Any] = {}
    deep_update(model_conf, kwargs.get("model_conf", {}))
    deep_update(model_conf, kwargs)
    model_class = tables.model_classes.get(config["model"])
    if model_class is None:
        raise RuntimeError(f"funasr has no model class {config['model']!r}")
    model = model_class(**model_conf)
    model.eval()
    return model


def _tweak_asr(model) -> None:
    import torch

    target = CIF_TOKENS_PER_S / _ENCODER_FPS  # alpha per encoder frame
    with torch.no_grad():
        head = model.predictor.cif_output
        head.weight.mul_(0.05)
        head.bias.fill_(math.log(target / (1.0 - target)))


def _tweak_vad(model) -> None:
    import torch

    with torch.no_grad():
        last = model.encoder.out_linear2.linear
        last.weight.zero_()
        last.bias.zero_()
        last.bias[0] = -20.0  # class 0 is the only silence pdf: never silence


def _tweak_punc(model) -> None:
    import torch

    with torch.no_grad():
        model.decoder.bias[0] = -100.0  # never predict <unk>
        # Roughly text-like rates: no mark after ~75 % of characters, commas and full stops
        # more often than question marks and enumeration commas.
        for index, shift in enumerate((1.0, 0.4, 0.2, -0.6, -0.6), start=1):
            model.decoder.bias[index] += shift


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _write_yaml(path: Path, obj: dict[str, Any]) -> None:
    import yaml

    path.write_text(
        yaml.safe_dump(obj, allow_unicode=True, sort_keys=False, default_flow_style=False),
        encoding="utf-8",
    )


def _write_dir(
    dest: Path,
    kind: str,
    size: str,
    seed: int,
    config: dict[str, Any],
    model,
    tokens: list[str] | None,
    mvn_dim: int | None,
    seg_dict: list[str] | None,
) -> Path:
    import torch

    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    n_params = sum(p.numel() for p in model.parameters())
    _write_json(
        dest / "configuration.json",
        {
            "framework": "pytorch",
            "task": _TASKS[kind],
            "model": {"type": "funasr"},
            "pipeline": {"type": "funasr-pipeline"},
            "model_name_in_hub": {"ms": "", "hf": ""},
            "file_path_metas": _FILE_PATH_METAS[kind],
            "random_weights": True,
            "random_weights_info": {
                "built_by": "seaco models build-test",
                "size": size,
                "seed": seed,
                "parameters": n_params,
                "mirrors": _MIRRORS[size][kind],
            },
        },
    )
    _write_yaml(dest / "config.yaml", config)
    torch.save(model.state_dict(), dest / "model.pt")
    if tokens is not None:
        _write_json(dest / "tokens.json", tokens)
    if mvn_dim is not None:
        (dest / "am.mvn").write_text(_am_mvn(mvn_dim), encoding="utf-8")
    if seg_dict is not None:
        (dest / "seg_dict").write_text("\n".join(seg_dict) + "\n", encoding="utf-8")
    (dest / "RANDOM_WEIGHTS.txt").write_text(
        f"random weights, built by seaco models build-test, size={size}, seed={seed}\n"
        "This directory holds no trained model: its transcripts are meaningless.\n"
        f"It has the layout and ({size}) dimensions of {_MIRRORS[size][kind]},"
        f" {n_params:,} parameters.\n",
        encoding="utf-8",
    )
    return dest


def build_test_models(out_dir: Path, size: str = "tiny", seed: int = 0) -> dict[str, Path]:
    """Write random-weight ASR, VAD and punctuation models under `out_dir`.

    Creates `out_dir/"seaco-asr"`, `out_dir/"fsmn-vad"` and `out_dir/"ct-punc"` (replacing
    any previous build there) and returns `{"asr": ..., "vad": ..., "punc": ...}`. The same
    `size` and `seed` give identical state dicts and files. `full` needs ~2.1 GB of disk,
    ~2.1 GB of memory and ~10-20 s; `tiny` ~2.5 MB and well under a second once funasr is
    imported.
    """
    import torch

    if size not in _SIZE_DIMS:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, not {size!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    asr_tokens = _asr_tokens(size)
    asr_cfg = _asr_config(size, len(asr_tokens))
    torch.manual_seed(seed)
    asr = _instantiate(asr_cfg, len(asr_tokens), input_size=80 * 7)
    _tweak_asr(asr)
    asr_dir = _write_dir(
        out_dir / "seaco-asr",
        "asr",
        size,
        seed,
        asr_cfg,
        asr,
        asr_tokens,
        80 * 7,
        _seg_dict_lines(asr_tokens),
    )
    del asr

    vad_cfg = _vad_config()
    torch.manual_seed(seed + 1)
    vad = _instantiate(vad_cfg, -1, input_size=None)
    _tweak_vad(vad)
    vad_dir = _write_dir(out_dir / "fsmn-vad", "vad", size, seed, vad_cfg, vad, None, 80 * 5, None)
    del vad

    punc_tokens = _punc_tokens(size)
    punc_cfg = _punc_config(size)
    torch.manual_seed(seed + 2)
    punc = _instantiate(punc_cfg, len(punc_tokens), input_size=None)
    _tweak_punc(punc)
    punc_dir = _write_dir(
        out_dir / "ct-punc", "punc", size, seed, punc_cfg, punc, punc_tokens, None, None
    )
    del punc
    return {"asr": asr_dir, "vad": vad_dir, "punc": punc_dir}
