"""Recognise the VAD segments of several recordings together, in length-sorted batches.

funasr's `generate()` cuts one recording into VAD segments and, on a GPU, recognises them in
batches of up to `batch_size_s`; on a CPU it recognises them one at a time
(`AutoModel.inference_with_vad` forces the batch off), although a batch of a few short
segments costs a CPU about a third less time than the same segments one by one (measured
here with the full-size model). And it never batches across recordings. So:

1. VAD runs on every recording (funasr's own call, as `generate()` makes it);
2. all segments of all recordings are sorted by length and recognised in batches under
   funasr's own rule (padded length x count <= `batch_size_s`; a segment of 60 s or more
   alone), each result and its confidence scores mapped back to (recording, segment);
3. each recording then goes through funasr's unchanged `generate()`, with the VAD and ASR
   models' `inference` answering from step 1 and 2 instead of running again, so merging
   segments, timestamps, punctuation and sentences are exactly funasr's.

Step 3 relies on funasr asking for a recording's segments in its own order (sorted by
length, stable): the precomputed results are handed out in that order. If it asks for more
than there are, that is a bug and raises.

Batched decoding pads the shorter segments of a batch; with trained weights the padding is
masked, but the arithmetic is not bit-identical to one-at-a-time decoding, so a segment's
text can differ slightly from funasr's CPU path (as funasr's own GPU batching does).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SAMPLES_PER_MS = 16
ALONE_MS = 60_000  # funasr's batch_size_threshold_s: longer segments are decoded alone


@dataclass
class Output:
    results: list[dict[str, Any]]  # what generate() returned for this recording
    confidence: float | None = None
    tokens: int = 0
    stage_ms: dict[str, int] = field(default_factory=dict)


@dataclass
class _Segment:
    rec: int
    rank: int  # position in the recording's own length order (funasr's order)
    start_ms: int
    end_ms: int

    @property
    def ms(self) -> int:
        return self.end_ms - self.start_ms


def batches(segments: list[_Segment], limit_ms: int) -> list[list[_Segment]]:
    """Length-sorted segments into batches: padded length (longest x count) <= limit_ms,
    anything of ALONE_MS or more on its own. Sorting first keeps padding small."""
    out: list[list[_Segment]] = []
    current: list[_Segment] = []
    for seg in sorted(segments, key=lambda s: s.ms):
        if current and (seg.ms >= ALONE_MS or seg.ms * (len(current) + 1) > limit_ms):
            out.append(current)
            current = []
        current.append(seg)
        if seg.ms >= ALONE_MS:
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out


def recognise_together(
    automodel: Any,
    recordings: list[np.ndarray],
    hotword: str | None,
    batch_size_s: int,
    scores: Any,
    stages: Any,
) -> list[Output]:
    """One Output per recording (16 kHz float32). `scores` is the confidence hook's
    TokenScores and `stages` the StageTimes of engine.recognition.model_hooks; the caller
    holds the model lock."""
    import math

    cfg = {
        "hotword": hotword,
        "sentence_timestamp": True,
        "return_raw_text": True,
        "batch_size_s": batch_size_s,
    }
    outputs = [Output(results=[]) for _ in recordings]
    vad_results: list[list[dict] | None] = [None] * len(recordings)
    segments: list[_Segment] = []
    asr_s = [0.0] * len(recordings)
    log_sum = [0.0] * len(recordings)
    counts = [0] * len(recordings)
    automodel._reset_runtime_configs()
    for r, samples in enumerate(recordings):
        if len(samples) == 0:
            continue
        started = time.perf_counter()
        vad = automodel.inference(
            samples, model=automodel.vad_model, kwargs=automodel.vad_kwargs, **cfg
        )
        outputs[r].stage_ms["vad"] = round((time.perf_counter() - started) * 1000)
        vad_results[r] = vad
        value = vad[0]["value"]
        order = sorted(range(len(value)), key=lambda i: value[i][1] - value[i][0])
        segments += [
            _Segment(r, rank, int(value[i][0]), int(value[i][1])) for rank, i in enumerate(order)
        ]

    recognised: dict[tuple[int, int], dict] = {}
    for batch in batches(segments, max(1, batch_size_s) * 1000):
        speech = [_slice(recordings[s.rec], s) for s in batch]
        kwargs = dict(automodel.kwargs)
        kwargs["batch_size"] = len(speech)
        scores.items = []
        started = time.perf_counter()
        results = automodel.inference(speech, model=automodel.model, kwargs=kwargs, **cfg)
        seconds = time.perf_counter() - started
        if len(results) != len(batch):
            raise RuntimeError(f"funasr returned {len(results)} results for {len(batch)} segments")
        per_row = scores.items if len(scores.items) == len(batch) else [(0.0, 0)] * len(batch)
        total_ms = sum(s.ms for s in batch) or 1
        for seg, result, (row_sum, row_count) in zip(batch, results, per_row, strict=True):
            recognised[(seg.rec, seg.rank)] = result
            asr_s[seg.rec] += seconds * seg.ms / total_ms  # the batch's time, shared by audio
            log_sum[seg.rec] += row_sum
            counts[seg.rec] += row_count

    for r, samples in enumerate(recordings):
        found = vad_results[r]
        if found is None:
            continue
        n = len(found[0]["value"])
        queue = [recognised[(r, rank)] for rank in range(n)]
        stages.reset()
        with _replaying(automodel, found, queue):
            outputs[r].results = automodel.generate(samples, **cfg)
        outputs[r].stage_ms["asr"] = round(asr_s[r] * 1000)
        if "punc" in stages.seconds:
            outputs[r].stage_ms["punc"] = round(stages.seconds["punc"] * 1000)
        outputs[r].tokens = counts[r]
        if counts[r]:
            outputs[r].confidence = min(1.0, max(0.0, math.exp(log_sum[r] / counts[r])))
    return outputs


def _slice(samples: np.ndarray, seg: _Segment) -> np.ndarray:
    """funasr's slice_padding_audio_samples for one segment."""
    return samples[seg.start_ms * SAMPLES_PER_MS : min(seg.end_ms * SAMPLES_PER_MS, len(samples))]


class _replaying:
    """Within the block, the VAD model answers `vad` and the ASR model hands out `queue`
    in order, instead of running (instance attributes only; restored on exit)."""

    def __init__(self, automodel: Any, vad: list[dict], queue: list[dict]) -> None:
        self.vad_model, self.model = automodel.vad_model, automodel.model
        self.vad = vad
        self.queue = list(queue)

    def _vad(self, *args, **kwargs):
        return copy.deepcopy(self.vad), {}

    def _asr(self, data_in=None, *args, **kwargs):
        n = len(data_in) if isinstance(data_in, (list, tuple)) else 1
        if n > len(self.queue):
            raise RuntimeError("funasr asked for more segments than VAD found")
        taken, self.queue = self.queue[:n], self.queue[n:]
        return taken, {}

    def __enter__(self) -> _replaying:
        self._saved = (
            self.vad_model.__dict__.get("inference"),
            self.model.__dict__.get("inference"),
        )
        self.vad_model.inference = self._vad
        self.model.inference = self._asr
        return self

    def __exit__(self, *exc: object) -> None:
        for module, saved in zip((self.vad_model, self.model), self._saved, strict=True):
            if saved is None:
                del module.inference
            else:
                module.inference = saved
