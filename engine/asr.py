"""The recognition pipeline: FSMN-VAD -> SeACo-Paraformer (with hotwords) -> CT-Transformer.

Only the worker process loads models. Importing this module is cheap: funasr (~10 s to
import) and torch are imported inside the functions that need them, so the hotword helpers
and model-directory checks can be used anywhere.

Model specs are either a local directory (validated here, because funasr silently runs
random weights when `model.pt` is missing and silently drops hotwords without `seg_dict`)
or a ModelScope id, which funasr downloads on first use.
"""

from __future__ import annotations

import ctypes
import json
import logging
import math
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import ModelError, ModelFilesMissingError
from engine.hotwords import hotword_argument, merge_hotwords, parse_hotwords
from engine.jobs import Sentence  # one sentence type from model to store to page

if TYPE_CHECKING:
    from engine.config import Settings

log = logging.getLogger(__name__)

__all__ = [
    "ASR_FILES",
    "PUNC_FILES",
    "VAD_FILES",
    "AsrPipeline",
    "Sentence",
    "Transcript",
    "hotword_argument",
    "is_random_weight_model",
    "merge_hotwords",
    "parse_hotwords",
    "resolve_device",
    "resolve_model_spec",
    "validate_model_dir",
]

SAMPLE_RATE = 16000

ASR_FILES = ("config.yaml", "model.pt", "tokens.json", "am.mvn", "seg_dict")
VAD_FILES = ("config.yaml", "model.pt", "am.mvn")
PUNC_FILES = ("config.yaml", "model.pt", "tokens.json")

_KIND_FILES = {"asr": ASR_FILES, "vad": VAD_FILES, "punc": PUNC_FILES}
_KIND_LABEL = {"asr": "ASR", "vad": "VAD", "punc": "Punctuation"}
_KIND_SETTING = {"asr": "SEACO_ASR_MODEL", "vad": "SEACO_VAD_MODEL", "punc": "SEACO_PUNC_MODEL"}

# What funasr does when a file is missing (it says nothing in most cases).
_MISSING_EFFECT = {
    "config.yaml": "funasr cannot tell which network to build",
    "model.pt": "funasr would silently run random weights",
    "tokens.json": "funasr cannot turn the model's output into text",
    "am.mvn": "funasr would silently skip feature normalisation and produce wrong text",
    "seg_dict": "funasr would silently turn every hotword into <unk>",
}

# funasr's feature extraction divides by zero below one 25 ms frame; shorter clips are padded
# with silence to this many samples (0.1 s), which cannot add speech.
_MIN_SAMPLES = 1600


# --- model directories ----------------------------------------------------------------------
def validate_model_dir(path: Path, kind: str) -> None:
    """Check that a local model directory holds every file funasr would quietly do without.

    Raises `ModelFilesMissingError` naming the missing (or empty) files and the directory.
    """
    if kind not in _KIND_FILES:
        raise ValueError(f"kind must be one of {', '.join(_KIND_FILES)}, not {kind!r}")
    path = Path(path)
    label = _KIND_LABEL[kind]
    if not path.is_dir():
        raise ModelError(f"{label} model directory {path} does not exist or is not a directory.")
    missing = [name for name in _KIND_FILES[kind] if not (path / name).is_file()]
    problems = [f"lacks {name}: {_MISSING_EFFECT[name]}" for name in missing]
    model_pt = path / "model.pt"
    if "model.pt" not in missing and model_pt.stat().st_size == 0:
        problems.append(f"has an empty model.pt (0 bytes): {_MISSING_EFFECT['model.pt']}")
    if problems:
        raise ModelFilesMissingError(
            f"{label} model directory {path} {'; '.join(problems)}. A complete directory holds "
            f"{', '.join(_KIND_FILES[kind])}: copy the whole model directory, or set "
            f"{_KIND_SETTING[kind]} to a ModelScope id to download it."
        )


def _looks_like_path(spec: str) -> bool:
    if spec in (".", "..") or spec.startswith(("/", "./", "../", "~", ".\\", "..\\")):
        return True
    return Path(spec).expanduser().exists()


def resolve_model_spec(spec: str, kind: str) -> str:
    """Turn a setting into what `AutoModel` gets: a validated absolute directory or a hub id.

    Anything that looks like a path (absolute, `./`, `../`, `~`, or existing) must be an
    existing, complete model directory; it never falls through to a hub download the way a
    mistyped path does inside funasr. Anything else is a ModelScope id, returned unchanged.
    """
    if kind not in _KIND_FILES:
        raise ValueError(f"kind must be one of {', '.join(_KIND_FILES)}, not {kind!r}")
    spec = (spec or "").strip()
    label = _KIND_LABEL[kind]
    if not spec:
        raise ModelError(f"No {label} model is configured: set {_KIND_SETTING[kind]}.")
    if not _looks_like_path(spec):
        return spec
    path = Path(spec).expanduser().resolve()
    if not path.exists():
        raise ModelError(
            f"{label} model directory {path} ({_KIND_SETTING[kind]}={spec}): no such directory. "
            "Fix the path; a local path is never looked up on the model hub."
        )
    if not path.is_dir():
        raise ModelError(f"{label} model path {path} is a file, not a model directory.")
    validate_model_dir(path, kind)
    return str(path)


def is_random_weight_model(path_or_id: str) -> bool:
    """True for a directory built by `engine.testmodels` (random weights, not a real model)."""
    try:
        path = Path(path_or_id).expanduser()
        if not path.is_dir():
            return False
        if (path / "RANDOM_WEIGHTS.txt").exists():
            return True
        conf = path / "configuration.json"
        if conf.is_file():
            data = json.loads(conf.read_text(encoding="utf-8"))
            return bool(isinstance(data, dict) and data.get("random_weights"))
    except (OSError, ValueError):
        return False
    return False


# --- hotwords -------------------------------------------------------------------------------
# parse_hotwords, merge_hotwords and hotword_argument live in engine.hotwords (cheap to import,
# used by the HTTP side too) and are re-exported here, so there is one implementation.


# --- results --------------------------------------------------------------------------------
@dataclass
class Transcript:
    """The result of one `AsrPipeline.transcribe` call.

    `text` is punctuated; `raw_text` is the recogniser's output before punctuation (spaces
    only around Latin words); `confidence` is described on `AsrPipeline` (None when nothing
    was recognised); `tokens` counts the tokens the decoder emitted (it can exceed the
    visible characters: funasr drops a dangling English word piece); `hotwords` are the
    words that were passed to the model.
    """

    text: str
    raw_text: str
    sentences: list[Sentence] = field(default_factory=list)
    confidence: float | None = None
    tokens: int = 0
    hotwords: list[str] = field(default_factory=list)
    # wall ms inside each model's `inference` during this call: "vad", "asr", "punc"; a
    # measurement of this run, not part of what was recognised, so equality ignores it
    stage_ms: dict[str, int] = field(default_factory=dict, compare=False)


def _is_cjk(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\u3000" <= ch <= "\u303f" or "\uff00" <= ch <= "\uffef"


def _join_tokens(text: str) -> str:
    """funasr's raw text has a space between every character: drop spaces between CJK."""
    words = text.split()
    if not words:
        return ""
    out = words[0]
    for word in words[1:]:
        out += ("" if _is_cjk(out[-1]) and _is_cjk(word[0]) else " ") + word
    return out


def resolve_device(setting: str) -> str:
    """`auto` -> `cuda:0` when CUDA is usable, else `cpu`; `cuda`/`cuda:N` must be usable."""
    import torch

    value = (setting or "auto").strip().lower()
    if value == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if value == "cpu":
        return "cpu"
    match = re.fullmatch(r"cuda(?::(\d+))?", value)
    if match is None:
        raise ModelError(f"Unknown device {setting!r}: use auto, cpu, cuda or cuda:N.")
    if not torch.cuda.is_available():
        raise ModelError(
            f"Device {setting!r} was requested but CUDA is not available to torch "
            f"{torch.__version__} (a CPU-only build, no GPU, or no driver). "
            "Set SEACO_DEVICE=cpu or auto, or install the CUDA build of torch."
        )
    index = int(match.group(1) or 0)
    if index >= torch.cuda.device_count():
        raise ModelError(
            f"Device {setting!r} does not exist: torch sees {torch.cuda.device_count()} GPU(s)."
        )
    return f"cuda:{index}"


def resolve_precision(precision: str, device: str) -> str:
    """Check SEACO_PRECISION against the resolved device; the torch autocast dtype's name."""
    import torch

    value = (precision or "fp32").strip().lower()
    if value not in ("fp32", "fp16", "bf16"):
        raise ModelError(f"Unknown precision {precision!r}: use fp32, fp16 or bf16.")
    if value == "fp16" and not device.startswith("cuda"):
        raise ModelError(
            f"SEACO_PRECISION=fp16 needs a CUDA device, but the models run on {device}. "
            "Use fp32 (or bf16) on CPU."
        )
    if value == "bf16" and device.startswith("cuda") and not torch.cuda.is_bf16_supported():
        raise ModelError(
            f"SEACO_PRECISION=bf16: {torch.cuda.get_device_name(torch.device(device))} does not "
            "support bfloat16. Use fp16 or fp32."
        )
    return value


def install_autocast(model: Any, device: str, precision: str) -> None:
    """Run the ASR model instance's `inference` under torch autocast in `precision` (fp16 or
    bf16; fp32 installs nothing), except its CIF predictor, which runs in fp32.

    Autocast instead of converting the weights: funasr's SeACo inference feeds fp32 features
    to the encoder (only plain Paraformer casts its input for `fp16=True`). The predictor
    must stay fp32: it counts tokens by summing per-frame weights (bf16 keeps 8 bits of
    mantissa, so sums over a long segment go wrong) and its upsampled peaks must agree with
    that count; in bf16 they did not on the full-size model (fewer timestamps than tokens,
    an IndexError inside funasr). funasr's own `autocast(False)` around the predictor only
    switches off CUDA autocast, and leaves the encoder's half-precision output as is."""
    if precision == "fp32":
        return
    import torch

    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    device_type = "cuda" if device.startswith("cuda") else "cpu"

    def fp32(value: Any) -> Any:
        return value.float() if torch.is_tensor(value) and value.is_floating_point() else value

    def in_full_precision(method: Any) -> Any:
        def run(*args, **kwargs):
            with torch.autocast(device_type=device_type, enabled=False):
                return method(*map(fp32, args), **{k: fp32(v) for k, v in kwargs.items()})

        return run

    predictor = getattr(model, "predictor", None)
    for name in ("forward", "get_upsample_timestamp"):  # instance attributes, this model only
        if predictor is not None and hasattr(predictor, name):
            setattr(predictor, name, in_full_precision(getattr(predictor, name)))
    original = model.inference

    def inference(*args, **kwargs):
        with torch.autocast(device_type=device_type, dtype=dtype):
            return original(*args, **kwargs)

    model.inference = inference


def _malloc_trim() -> bool:
    """Hand freed heap back to the OS (glibc only); loading leaves ~1.7 GB of it behind."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.malloc_trim(0))
    except (OSError, AttributeError):
        return False


# --- confidence -----------------------------------------------------------------------------
class _TokenScores:
    """Per-call sum of log max-probabilities of the emitted tokens (filled by the hook)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.log_sum = 0.0
        self.count = 0
        self.items: list[tuple[float, int]] = []  # per batch row, in order, for batching

    def add(self, log_probs, lengths, skip_ids: tuple[int, ...]) -> None:
        import torch

        with torch.no_grad():
            best, ids = log_probs.float().max(dim=-1)  # (batch, tokens)
            for i in range(best.shape[0]):
                n = int(lengths[i])
                keep = torch.ones(n, dtype=torch.bool, device=ids.device)
                for skip in skip_ids:
                    keep &= ids[i, :n] != skip
                picked = best[i, :n][keep].clamp(max=0.0)
                self.log_sum += float(picked.sum())
                self.count += int(picked.numel())
                self.items.append((float(picked.sum()), int(picked.numel())))

    def confidence(self) -> float | None:
        if self.count == 0:
            return None
        return min(1.0, max(0.0, math.exp(self.log_sum / self.count)))


def _install_hooks(model, scores: _TokenScores) -> str:
    """Wrap the ASR model instance's decoding step and `inference` (instance attributes only).

    Returns the name of the hooked decoding method ("" when the model has none we know).
    """
    skip_ids = tuple(
        int(v) for v in (getattr(model, "blank_id", 0), model.sos, model.eos) if v is not None
    )
    hooked = ""
    if hasattr(model, "_seaco_decode_with_ASF"):
        original_seaco = model._seaco_decode_with_ASF

        def seaco_decode(encoder_out, encoder_out_lens, sematic_embeds, ys_pad_lens, *a, **kw):
            log_probs = original_seaco(
                encoder_out, encoder_out_lens, sematic_embeds, ys_pad_lens, *a, **kw
            )
            scores.add(log_probs, ys_pad_lens, skip_ids)
            return log_probs

        model._seaco_decode_with_ASF = seaco_decode
        hooked = "_seaco_decode_with_ASF"
    elif hasattr(model, "cal_decoder_with_predictor"):
        original_cal = model.cal_decoder_with_predictor

        def cal_decoder(encoder_out, encoder_out_lens, sematic_embeds, ys_pad_lens, *a, **kw):
            out = original_cal(encoder_out, encoder_out_lens, sematic_embeds, ys_pad_lens, *a, **kw)
            scores.add(out[0], ys_pad_lens, skip_ids)
            return out

        model.cal_decoder_with_predictor = cal_decoder
        hooked = "cal_decoder_with_predictor"

    # funasr 1.4.16: when the CIF predictor fires no token for a VAD segment,
    # SeacoParaformer.inference returns ([],) and AutoModel.inference_with_vad then sees
    # fewer results than segments and throws the *whole* transcript away ("empty result").
    # Answer an empty text for such a segment instead.
    original_inference = model.inference

    def inference(data_in, data_lengths=None, key=None, **kw):
        res = original_inference(data_in, data_lengths, key=key, **kw)
        empty = (isinstance(res, tuple) and len(res) >= 1 and res[0] == []) or res == []
        if empty and key:
            keys = list(key[0]) if isinstance(key[0], (list, tuple)) else list(key)
            return [{"key": k, "text": "", "timestamp": []} for k in keys], {}
        return res

    model.inference = inference
    return hooked


# --- stage timing ---------------------------------------------------------------------------
STAGES = {"vad": "vad_model", "asr": "model", "punc": "punc_model"}


class StageTimes:
    """Wall seconds spent inside each sub-model's `inference` since the last `reset()`.

    funasr's `generate()` reports no per-stage times, so `install_stage_timers` wraps the
    three model instances' `inference` (instance attributes only, like the confidence hook).
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def reset(self) -> None:
        self.seconds, self.calls = {}, {}

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds
        self.calls[stage] = self.calls.get(stage, 0) + 1

    def as_ms(self) -> dict[str, int]:
        return {k: round(v * 1000) for k, v in self.seconds.items()}


def install_stage_timers(automodel: Any, times: StageTimes | None = None) -> StageTimes:
    """Time every `inference` call of an AutoModel's VAD, ASR and punctuation models.

    Used by the pipeline and by the throughput benchmark's plain-funasr baseline, so both
    are timed the same way. Models the AutoModel lacks are skipped."""
    times = times or StageTimes()
    for stage, attr in STAGES.items():
        model = getattr(automodel, attr, None)
        if model is None:
            continue
        original = model.inference

        def timed(*args, _original=original, _stage=stage, **kwargs):
            started = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                times.add(_stage, time.perf_counter() - started)

        model.inference = timed
    return times


# --- the pipeline ---------------------------------------------------------------------------
class AsrPipeline:
    """VAD + SeACo-Paraformer + punctuation around one funasr `AutoModel`.

    Thread safety: one funasr `AutoModel` is not thread-safe (concurrent `generate()` calls
    with and without hotwords give wrong results), so `transcribe` holds a lock: calls from
    several threads run one at a time.

    Confidence: funasr reports none (SeacoParaformer computes the decoder's log-probabilities
    and discards them). At load time the ASR model instance's decoding step
    (`SeacoParaformer._seaco_decode_with_ASF`, or `Paraformer.cal_decoder_with_predictor` for
    a plain Paraformer) is wrapped, on that instance only, to record for every position the
    CIF predictor fired, the largest log-probability of the output distribution (the greedy
    decoder takes exactly that token). Positions whose best token is `<blank>`, `<s>` or
    `</s>` are skipped, as funasr drops them from the text. With hotwords the distribution is
    the SeACo bias head's where that head chose a hotword token, else the ASR decoder's.
    The utterance confidence is the geometric mean of those per-token maximum probabilities
    over every emitted token of every VAD segment of one `transcribe()` call:
    `exp(mean(log p_max))`, in [0, 1]; `None` when no token was emitted. The scores are
    reset at the start of each call (under the lock), so nothing carries over between calls.
    It measures how peaked the model's own distributions were, not calibrated accuracy.
    """

    def __init__(
        self,
        automodel: Any,
        specs: dict[str, str],
        device: str,
        ncpu: int,
        batch_size_s: int,
        cpu_batch_s: int = 0,
        precision: str = "fp32",
    ) -> None:
        self._model = automodel
        # On CPU funasr recognises VAD segments one at a time; with cpu_batch_s > 0 we batch
        # them ourselves (engine/segbatch.py) up to that much padded audio. Large batches
        # lose on CPU (300 s ran slower than one at a time here; 15-60 s ran ~12 % faster),
        # hence a CPU limit of its own. On GPU funasr batches by batch_size_s already.
        on_cpu = device == "cpu"
        self.batch_segments = on_cpu and cpu_batch_s > 0
        self.segment_batch_s = max(1, cpu_batch_s) if on_cpu else batch_size_s
        self.specs = dict(specs)
        self.device = device
        self.ncpu = ncpu
        self.batch_size_s = batch_size_s
        self._lock = threading.Lock()
        self._scores = _TokenScores()
        self._hook = _install_hooks(automodel.model, self._scores)
        self.precision = precision
        install_autocast(automodel.model, device, precision)
        self._stages = install_stage_timers(automodel)
        self.load_seconds = 0.0
        self.warmup_seconds = 0.0

    @classmethod
    def load(
        cls,
        asr: str,
        vad: str,
        punc: str,
        *,
        device: str = "auto",
        ncpu: int = 2,
        batch_size_s: int = 300,
        cpu_batch_s: int = 0,
        precision: str = "fp32",
    ) -> AsrPipeline:
        """Validate every spec, load the three models, free heap, warm up once."""
        specs = {
            "asr": resolve_model_spec(asr, "asr"),
            "vad": resolve_model_spec(vad, "vad"),
            "punc": resolve_model_spec(punc, "punc"),
        }
        resolved_device = resolve_device(device)
        resolved_precision = resolve_precision(precision, resolved_device)
        started = time.perf_counter()
        try:
            from funasr import AutoModel
        except Exception as exc:  # ImportError and the odd failure inside funasr's import
            raise ModelError(f"funasr cannot be imported: {type(exc).__name__}: {exc}") from exc
        try:
            automodel = AutoModel(
                model=specs["asr"],
                vad_model=specs["vad"],
                punc_model=specs["punc"],
                disable_update=True,
                disable_pbar=True,
                device=resolved_device,
                ncpu=max(1, int(ncpu)),
            )
        except Exception as exc:
            raise ModelError(_load_failure_message(specs, exc)) from exc
        pipeline = cls(
            automodel, specs, resolved_device, max(1, int(ncpu)), int(batch_size_s),
            cpu_batch_s=int(cpu_batch_s), precision=resolved_precision,
        )  # fmt: skip
        pipeline.load_seconds = time.perf_counter() - started
        _malloc_trim()
        started = time.perf_counter()
        try:
            pipeline.transcribe(_warmup_audio())
        except Exception as exc:
            raise ModelError(
                f"The models loaded but a first test transcription failed: "
                f"{type(exc).__name__}: {exc} (models: {specs})"
            ) from exc
        pipeline.warmup_seconds = time.perf_counter() - started
        log.info(
            "models loaded in %.1f s, warm-up %.2f s (device %s, %s)",
            pipeline.load_seconds,
            pipeline.warmup_seconds,
            resolved_device,
            resolved_precision,
        )
        return pipeline

    def transcribe(self, audio: np.ndarray, hotwords: list[str] | None = None) -> Transcript:
        """Transcribe 16 kHz mono float32 samples; silence gives an empty transcript."""
        if self.batch_segments:
            return self.transcribe_many([audio], hotwords)[0]
        samples = _prepare_audio(audio)
        words = merge_hotwords(hotwords, None)
        duration_ms = int(round(len(samples) * 1000 / SAMPLE_RATE))
        if len(samples) == 0:
            return Transcript(text="", raw_text="", hotwords=words)
        if len(samples) < _MIN_SAMPLES:
            samples = np.concatenate([samples, np.zeros(_MIN_SAMPLES - len(samples), np.float32)])
        with self._lock:
            self._scores.reset()
            self._stages.reset()
            results = self._model.generate(
                samples,
                hotword=hotword_argument(words),
                sentence_timestamp=True,
                return_raw_text=True,
                batch_size_s=self.batch_size_s,
            )
            confidence = self._scores.confidence()
            token_count = self._scores.count
            stage_ms = self._stages.as_ms()
        return self._transcript(results, words, confidence, token_count, stage_ms, duration_ms)

    def transcribe_many(
        self, audios: list[np.ndarray], hotwords: list[str] | None = None
    ) -> list[Transcript]:
        """Transcribe several recordings that share one hotword list, their VAD segments
        recognised together in length-sorted batches of up to `segment_batch_s` (see
        engine/segbatch.py); one Transcript per recording, in order."""
        from engine.segbatch import recognise_together

        words = merge_hotwords(hotwords, None)
        prepared = []
        for audio in audios:
            samples = _prepare_audio(audio)
            if 0 < len(samples) < _MIN_SAMPLES:
                samples = np.concatenate(
                    [samples, np.zeros(_MIN_SAMPLES - len(samples), np.float32)]
                )
            prepared.append(samples)
        with self._lock:
            outputs = recognise_together(
                self._model, prepared, hotword_argument(words), self.segment_batch_s,
                self._scores, self._stages,
            )  # fmt: skip
        return [
            self._transcript(
                out.results,
                words,
                out.confidence,
                out.tokens,
                out.stage_ms,
                int(round(len(samples) * 1000 / SAMPLE_RATE)),
            )  # fmt: skip
            for out, samples in zip(outputs, prepared, strict=True)
        ]

    def _transcript(
        self,
        results: list[dict[str, Any]],
        words: list[str],
        confidence: float | None,
        token_count: int,
        stage_ms: dict[str, int],
        duration_ms: int,
    ) -> Transcript:
        result = results[0] if results else {}
        text = str(result.get("text") or "").strip()
        if not text:
            return Transcript(text="", raw_text="", hotwords=words, stage_ms=stage_ms)
        raw_text = _join_tokens(str(result.get("raw_text") or text))
        if not self._hook:
            token_count = len(result.get("timestamp") or [])
        return Transcript(
            text=text,
            raw_text=raw_text,
            sentences=_sentences(
                text,
                list(result.get("timestamp") or []),
                list(result.get("sentence_info") or []),
                duration_ms,
            ),
            confidence=confidence,
            tokens=token_count,
            hotwords=words,
            stage_ms=stage_ms,
        )

    def info(self) -> dict[str, Any]:
        """Device, model specs, random-weight flags, versions and parameter counts."""
        import funasr
        import torch

        models = {
            "asr": self._model.model,
            "vad": self._model.vad_model,
            "punc": self._model.punc_model,
        }
        info: dict[str, Any] = {
            "device": self.device,
            "precision": self.precision,
            "models": dict(self.specs),
            "random_weights": {k: is_random_weight_model(v) for k, v in self.specs.items()},
            "parameters": {
                k: (sum(p.numel() for p in m.parameters()) if m is not None else 0)
                for k, m in models.items()
            },
            "funasr_version": getattr(funasr, "__version__", "unknown"),
            "torch_version": torch.__version__,
            "ncpu": self.ncpu,
            "torch_threads": torch.get_num_threads(),
            "batch_size_s": self.batch_size_s,
            "confidence_hook": self._hook or None,
            "load_seconds": round(self.load_seconds, 3),
            "warmup_seconds": round(self.warmup_seconds, 3),
        }
        if self.device.startswith("cuda"):
            info["gpu"] = torch.cuda.get_device_name(torch.device(self.device))
        return info


def _prepare_audio(audio: np.ndarray) -> np.ndarray:
    samples = np.asarray(audio)
    if samples.ndim == 2 and 1 in samples.shape:
        samples = samples.reshape(-1)
    if samples.ndim != 1:
        raise ValueError(f"audio must be mono (one dimension), got shape {samples.shape}")
    if np.issubdtype(samples.dtype, np.integer):
        # funasr does not rescale integer arrays (wrong results): do it here.
        scale = float(np.iinfo(samples.dtype).max) + 1.0
        samples = samples.astype(np.float32) / scale
    samples = samples.astype(np.float32, copy=False)
    if not np.all(np.isfinite(samples)):
        samples = np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)
    return np.ascontiguousarray(samples)


_PUNCTUATION = frozenset("，。？！、；：,.?!;:")


def _sentences(
    text: str, timestamps: list[Any], sentence_info: list[dict[str, Any]], duration_ms: int
) -> list[Sentence]:
    """Sentences of the punctuated text, each with the times of its first and last unit.

    funasr 1.4.16's own `sentence_info` is wrong as soon as VAD cut the audio into more than
    one segment: it joins the segments' Chinese text without a space but then splits that
    text on spaces and zips it with the per-character timestamps and punctuation ids, so
    every sentence after the first segment boundary gets its neighbours' characters and
    times, and the last ones come out as a bare "。". So sentences are rebuilt here from the
    punctuated text and `timestamp` (one [start, end] per character or English word, already
    shifted by the VAD offsets), split after every punctuation mark as funasr does. If the
    units and timestamps do not pair up one to one, funasr's `sentence_info` is used.
    """
    spans = _split_units(text)
    n_units = sum(len(units) for _, units in spans)
    if spans and n_units == len(timestamps):
        raw: list[tuple[str, float, float]] = []
        index = 0
        for sentence_text, units in spans:
            if units:
                first, last = timestamps[index], timestamps[index + len(units) - 1]
                raw.append((sentence_text, float(first[0]), float(last[1])))
                index += len(units)
            elif raw:  # punctuation with no unit of its own: belongs to the sentence before
                prev_text, start, end = raw[-1]
                raw[-1] = (prev_text + sentence_text, start, end)
    else:
        raw = []
        for item in sentence_info:
            piece = str(item.get("text", ""))
            start = float(item.get("start", 0))
            end = float(item.get("end", start))
            if any(not ch.isspace() and ch not in _PUNCTUATION for ch in piece) or not raw:
                raw.append((piece, start, end))
            else:
                prev_text, prev_start, prev_end = raw[-1]
                raw[-1] = (prev_text + piece, prev_start, max(prev_end, end))
    out: list[Sentence] = []
    previous_start = 0
    for piece, start_f, end_f in raw:
        piece = piece.strip()
        if not piece:
            continue
        start = min(max(int(round(start_f)), previous_start, 0), duration_ms)
        end = min(max(int(round(end_f)), start), duration_ms)
        out.append(Sentence(text=piece, start_ms=start, end_ms=end))
        previous_start = start
    return out


def _split_units(text: str) -> list[tuple[str, list[str]]]:
    """Split punctuated text into sentences (after each punctuation mark) and their units.

    A unit is what carries one timestamp: a non-ASCII character (funasr splits Chinese into
    characters) or a run of ASCII characters (an English word), as funasr's `split_words`.
    """
    sentences: list[tuple[str, list[str]]] = []
    current = ""
    units: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in _PUNCTUATION:
            current += ch
            sentences.append((current, units))
            current, units = "", []
            i += 1
        elif ch.isspace():
            current += ch
            i += 1
        elif ch.isascii():
            j = i
            while j < len(text) and text[j].isascii() and not text[j].isspace():
                if text[j] in _PUNCTUATION:
                    break
                j += 1
            units.append(text[i:j])
            current += text[i:j]
            i = j
        else:
            units.append(ch)
            current += ch
            i += 1
    if current.strip():
        sentences.append((current, units))
    return sentences


def _warmup_audio() -> np.ndarray:
    """One second of a voiced, speech-loud signal (a 150 Hz buzz with formant-ish harmonics)."""
    t = np.arange(SAMPLE_RATE, dtype=np.float32) / SAMPLE_RATE
    signal = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 12))
    envelope = 0.5 - 0.5 * np.cos(2 * np.pi * 3 * t)
    return (0.1 * signal * envelope).astype(np.float32)


def _load_failure_message(specs: dict[str, str], exc: Exception) -> str:
    first_line = (str(exc).strip().splitlines() or [""])[0]
    detail = f"{type(exc).__name__}: {first_line}".strip()
    if len(detail) > 600:
        detail = detail[:600] + " ..."
    hub = {k: s for k, s in specs.items() if not Path(s).is_absolute()}
    named = [k for k, s in hub.items() if s in str(exc)] or list(hub)
    if named:
        parts = [
            f"could not download or load the {_KIND_LABEL[k]} model '{hub[k]}' from ModelScope "
            f"(no network, or not in the local cache); set {_KIND_SETTING[k]} to a local "
            "model directory"
            for k in named
        ]
        return "; ".join(parts) + f". funasr said: {detail}"
    listed = ", ".join(f"{_KIND_LABEL[k]} {s}" for k, s in specs.items())
    return (
        f"funasr could not load the models ({listed}): {detail}. Check that each directory "
        "is a complete FunASR model of the right kind and that their files are not corrupt."
    )


def pipeline_for(settings: Settings) -> AsrPipeline:
    """The pipeline exactly as the service runs it, from its settings: the worker and
    `seaco eval` both load it here, so an evaluation measures what users get (segment
    batching on CPU included)."""
    return AsrPipeline.load(
        settings.asr_model,
        settings.vad_model,
        settings.punc_model,
        device=settings.device,
        ncpu=settings.torch_threads,
        batch_size_s=settings.batch_size_s,
        cpu_batch_s=settings.cpu_batch_s,
        precision=settings.precision,
    )
