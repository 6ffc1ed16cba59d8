"""How fast an idle worker picks up a new job, and what the queue costs end to end.

Runs a real worker process over a real jobs.db with the tiny random-weight models, submits
short files one at a time (each after the previous one is done, so the worker is idle), and
reports submit-to-start latency (p50/p95) and queue end-to-end time against the same files
decoded and transcribed directly in this process (the baseline, measured in the same run).

    .venv/bin/python bench/idle_latency.py [--jobs 40]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import audio  # noqa: E402
from engine.intake import submit_upload  # noqa: E402
from engine.recognition.pipeline import AsrPipeline  # noqa: E402
from engine.recognition.random_models import build_test_models  # noqa: E402
from engine.store import open_store  # noqa: E402
from tests.audio_fixtures import speech  # noqa: E402
from tests.conftest import make_settings, model_overrides  # noqa: E402
from tests.procs import start, stop, wait_for  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=40)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="seaco-bench-"))
    models = build_test_models(tmp / "models", size="tiny")
    settings = make_settings(
        tmp / "data", **model_overrides(models), device="cpu", ncpu="1", queue_max="1000",
    )  # fmt: skip
    settings.ensure_dirs()
    clip = speech(tmp / "clip.wav", "jin1 tian1 tian1 qi4 hen3 hao3")

    # baseline: decode + transcribe in this process
    pipeline = AsrPipeline.load(settings.asr_model, settings.vad_model, settings.punc_model,
                                device="cpu", ncpu=1)  # fmt: skip
    direct = []
    for _ in range(args.jobs):
        t0 = time.perf_counter()
        samples, _ = audio.decode(clip)
        pipeline.transcribe(samples)
        direct.append((time.perf_counter() - t0) * 1000)

    store = open_store(settings.db_path)
    worker = start(["worker"], settings, tmp / "worker.log")
    try:
        wait_for(lambda: (w := store.latest_worker()) and w["model_loaded"], timeout=120)
        latency, end_to_end = [], []
        for _ in range(args.jobs):
            t0 = time.perf_counter()
            with open(clip, "rb") as stream:
                job = submit_upload(store, settings, stream, "clip.wav")
            done = wait_for(lambda j=job.id: (x := store.get(j)).state.is_final and x,
                            timeout=60)  # fmt: skip
            end_to_end.append((time.perf_counter() - t0) * 1000)
            latency.append(done.started_at - done.submitted_at)
    finally:
        stop(worker)

    print(f"jobs: {args.jobs} x {audio.probe(clip).duration_ms / 1000:.1f} s clip, tiny models,"
          f" SEACO_IDLE_POLL_MS={settings.idle_poll_ms}")  # fmt: skip
    print(f"idle submit-to-start: p50 {pct(latency, 0.5):.0f} ms, p95 {pct(latency, 0.95):.0f} ms")
    print(f"direct decode+transcribe (baseline): median {statistics.median(direct):.0f} ms")
    print(f"through upload+queue+worker:         median {statistics.median(end_to_end):.0f} ms")
    print(f"ratio queue/direct: {statistics.median(end_to_end) / statistics.median(direct):.2f}x")


if __name__ == "__main__":
    main()
