"""The recognition pipeline: FSMN-VAD -> SeACo-Paraformer (with hotwords) -> CT-Transformer.

Only the worker process loads models. Importing this module is cheap: funasr (~10 s to
import) and torch are imported inside the functions that need them, so the hotword helpers
and model-directory checks can be used anywhere.

This module holds the pipeline around one funasr `AutoModel` and the audio it is fed; its
parts live beside it and are re-exported here:
- engine/recognition/model_specs.py: model directories and specs, device and precision
  (which models run where, without loading them). Model specs are either a local directory
  (validated there, because funasr silently runs random weights when `model.pt` is missing
  and silently drops hotwords without `seg_dict`) or a ModelScope id, which funasr downloads
  on first use.
- engine/recognition/model_hooks.py: what is installed on funasr's model instances at load
  (autocast, the confidence hook, stage timers).
- engine/recognition/sentences.py: funasr's text and timestamps -> our sentences and raw text.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import ModelError
from engine.hotwords import hotword_argument, merge_hotwords, parse_hotwords
from engine.jobs import Sentence  # one sentence type from model to store to page
from engine.recognition.model_hooks import (
    STAGES,
    StageTimes,
    TokenScores,
    install_autocast,
    install_confidence_hooks,
    install_stage_timers,
)
from engine.recognition.model_specs import (
    ASR_FILES,
    PUNC_FILES,
    VAD_FILES,
    is_random_weight_model,
    load_failure_message,
    resolve_device,
    resolve_model_spec,
    resolve_precision,
    validate_model_dir,
)
from engine.recognition.sentences import build_sentences, join_tokens

if TYPE_CHECKING:
    from engine.config import Settings

log = logging.getLogger(__name__)

__all__ = [
    "ASR_FILES",
    "PUNC_FILES",
    "STAGES",
    "VAD_FILES",
    "AsrPipeline",
    "Sentence",
    "StageTimes",
    "Transcript",
    "hotword_argument",
    "install_autocast",
    "install_stage_timers",
    "is_random_weight_model",
    "merge_hotwords",
    "parse_hotwords",
    "pipeline_for",
    "resolve_device",
    "resolve_model_spec",
    "resolve_precision",
    "validate_model_dir",
]

SAMPLE_RATE = 16000

# funasr's feature extraction divides by zero below one 25 ms frame; shorter clips are padded
# with silence to this many samples (0.1 s), which cannot add speech.
_MIN_SAMPLES = 1600


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


def _malloc_trim() -> bool:
    """Hand freed heap back to the OS (glibc only); loading leaves ~1.7 GB of it behind."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.malloc_trim(0))
    except (OSError, AttributeError):
        return False


# --- the pipeline ---------------------------------------------------------------------------
class AsrPipeline:
    """VAD + SeACo-Paraformer + punctuation around one funasr `AutoModel`.

    Thread safety: one funasr `AutoModel` is not thread-safe (concurrent `generate()` calls
    with and without hotwords give wrong results), so `transcribe` holds a lock: calls from
    several threads run one at a time.

    Confidence: funasr reports none (SeacoParaformer computes the decoder's log-probabilities
    and discards them). At load time the ASR model instance's decoding step
    (`SeacoParaformer._seaco_decode_with_ASF`, or `Paraformer.cal_decoder_with_predictor` for
    a plain Paraformer) is wrapped by `model_hooks.install_confidence_hooks`, on that instance
    only, to record for every position the CIF predictor fired, the largest log-probability
    of the output distribution (the greedy decoder takes exactly that token). Positions whose
    best token is `<blank>`, `<s>` or `</s>` are skipped, as funasr drops them from the text.
    With hotwords the distribution is the SeACo bias head's where that head chose a hotword
    token, else the ASR decoder's.
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
        # On CPU funasr recognises VAD segments one at a time; with cpu_batch_s > 0 we batch them
        # ourselves (engine/recognition/segment_batching.py) up to that much padded audio. Large
        # batches lose on CPU (300 s ran slower than one at a time here; 15-60 s ran ~12 % faster),
        # hence a CPU limit of its own. On GPU funasr batches by batch_size_s already.
        on_cpu = device == "cpu"
        self.batch_segments = on_cpu and cpu_batch_s > 0
        self.segment_batch_s = max(1, cpu_batch_s) if on_cpu else batch_size_s
        self.specs = dict(specs)
        self.device = device
        self.ncpu = ncpu
        self.batch_size_s = batch_size_s
        self._lock = threading.Lock()
        self._scores = TokenScores()
        self._hook = install_confidence_hooks(automodel.model, self._scores)
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
            raise ModelError(load_failure_message(specs, exc)) from exc
        pipeline = cls(
            automodel,
            specs,
            resolved_device,
            max(1, int(ncpu)),
            int(batch_size_s),
            cpu_batch_s=int(cpu_batch_s),
            precision=resolved_precision,
        )
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
        engine/recognition/segment_batching.py); one Transcript per recording, in order."""
        from engine.recognition.segment_batching import recognise_together

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
                self._model,
                prepared,
                hotword_argument(words),
                self.segment_batch_s,
                self._scores,
                self._stages,
            )
        return [
            self._transcript(
                out.results,
                words,
                out.confidence,
                out.tokens,
                out.stage_ms,
                int(round(len(samples) * 1000 / SAMPLE_RATE)),
            )
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
        raw_text = join_tokens(str(result.get("raw_text") or text))
        if not self._hook:
            token_count = len(result.get("timestamp") or [])
        return Transcript(
            text=text,
            raw_text=raw_text,
            sentences=build_sentences(
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


def _warmup_audio() -> np.ndarray:
    """One second of a voiced, speech-loud signal (a 150 Hz buzz with formant-ish harmonics)."""
    t = np.arange(SAMPLE_RATE, dtype=np.float32) / SAMPLE_RATE
    signal = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 12))
    envelope = 0.5 - 0.5 * np.cos(2 * np.pi * 3 * t)
    return (0.1 * signal * envelope).astype(np.float32)


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
