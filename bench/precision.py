"""SEACO_PRECISION: recognition time and agreement of fp16/bf16 against fp32, in one run.

Loads the service's pipeline (engine.recognition.pipeline.pipeline_for, as the worker does) once per
precision, then transcribes the same espeak-ng corpus with each, alternating the order in
every round (other work on a shared machine falls on both sides), and reports per-round wall
times, the ratio to fp32, and how far each precision's text is from fp32's (character edit
rate: with random weights that is the only "accuracy" there is to compare).

    .venv/bin/python bench/precision.py --models /tmp/seaco-full-models --device cpu
    .venv/bin/python bench/precision.py --models /models --device cuda --precisions fp32,fp16,bf16

`--models DIR` holds seaco-asr/, fsmn-vad/ and ct-punc/ (`seaco models build-test DIR
[--size full]`). fp16 needs CUDA; bf16 on CPU runs, usually slower than fp32.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import audio
from engine.accuracy import edit_counts
from engine.config import load_settings
from engine.recognition.pipeline import pipeline_for
from engine.tools.benchmark_corpus import build_corpus


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=Path, required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--lengths", default="20,60,120", help="corpus file lengths, seconds")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ncpu", default="0")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "seaco-prec")
    args = parser.parse_args()
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    if precisions[0] != "fp32":
        precisions.insert(0, "fp32")  # the baseline
    lengths = tuple(float(x) for x in args.lengths.split(","))
    corpus = build_corpus(args.work / "corpus", lengths)
    samples = [audio.decode(f.path)[0] for f in corpus]
    audio_s = sum(len(s) for s in samples) / 16_000

    pipelines = {}
    for precision in precisions:
        settings = load_settings(
            {
                "SEACO_ASR_MODEL": str(args.models / "seaco-asr"),
                "SEACO_VAD_MODEL": str(args.models / "fsmn-vad"),
                "SEACO_PUNC_MODEL": str(args.models / "ct-punc"),
                "SEACO_DEVICE": args.device,
                "SEACO_NCPU": args.ncpu,
                "SEACO_PRECISION": precision,
            },
            env_file=None,
        )
        pipelines[precision] = pipeline_for(settings)
    info = pipelines["fp32"].info()
    print(
        f"device {info['device']}, {len(corpus)} files, {audio_s:.0f} s of audio, "
        f"random weights: {all(info['random_weights'].values())}"
    )

    walls: dict[str, list[float]] = {p: [] for p in precisions}
    texts: dict[str, list[str]] = {}
    for r in range(args.rounds):
        order = precisions if r % 2 == 0 else precisions[::-1]
        for precision in order:
            started = time.perf_counter()
            out = [pipelines[precision].transcribe(s).text for s in samples]
            walls[precision].append(time.perf_counter() - started)
            texts.setdefault(precision, out)
        print(f"round {r + 1}: " + ", ".join(f"{p} {walls[p][-1]:.2f} s" for p in precisions))

    base = statistics.median(walls["fp32"])
    print("\n| precision | median wall (s) | audio s / wall s | vs fp32 | text edits vs fp32 |")
    print("|---|---|---|---|---|")
    for precision in precisions:
        median = statistics.median(walls[precision])
        counts = [edit_counts(a, b) for a, b in zip(texts["fp32"], texts[precision], strict=True)]
        edits, units = sum(c.errors for c in counts), sum(c.ref_units for c in counts) or 1
        print(
            f"| {precision} | {median:.2f} | {audio_s / median:.1f} | {base / median:.2f}x "
            f"| {100 * edits / units:.1f} % |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
