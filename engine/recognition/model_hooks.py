"""What the pipeline installs on funasr's model instances at load time.

Autocast (with the CIF predictor kept in fp32), the confidence hook on the ASR model's decoding
step, and per-stage timers on the VAD, ASR and punctuation models. Each wraps attributes of one
instance only, never funasr's classes. Split from engine/recognition/pipeline.py because these are
patches on funasr internals with their own reasons, apart from the pipeline that uses them; torch is
imported only inside the functions.
"""

from __future__ import annotations

import math
import time
from typing import Any


# --- precision ------------------------------------------------------------------------------
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


# --- confidence -----------------------------------------------------------------------------
class TokenScores:
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


def install_confidence_hooks(model, scores: TokenScores) -> str:
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
