"""How fast an idle worker picks up a new job, and what the queue costs end to end.

Runs a real worker process over a real jobs.db with the tiny random-weight models, submits
short files one at a time (each after the previous one is done, so the worker is idle, and
after a random pause of up to twice SEACO_IDLE_POLL_MS, the same pauses for every worker, so
a submission lands at any moment of the worker's idle poll rather than in step with it), and
reports submit-to-start latency (p50/p95) and queue end-to-end time against the same files
decoded and transcribed directly in this process (the baseline, measured in the same run).

`--against DIR` also runs the worker of another checkout of this project (e.g. the previous
commit: `git worktree add /tmp/before HEAD~1`) in the same run: `--rounds` rounds, each
measuring both workers one after the other (the order alternating), each with a data dir of
its own, so a before/after comparison shares the machine's state of the moment.

    .venv/bin/python bench/idle_latency.py [--jobs 40] [--against /tmp/before --rounds 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import audio  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.intake import submit_upload  # noqa: E402
from engine.recognition.pipeline import AsrPipeline  # noqa: E402
from engine.recognition.random_models import build_test_models  # noqa: E402
from engine.store import open_store  # noqa: E402
from tests.audio_fixtures import speech  # noqa: E402
from tests.conftest import make_settings, model_overrides  # noqa: E402
from tests.procs import env_for, stop, wait_for  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def engine_of(tree: Path) -> Path:
    """Where `python -m engine.cli` run in `tree` imports `engine` from (checked, so a
    comparison never measures the same code twice)."""
    out = subprocess.run(
        [sys.executable, "-c", "import engine; print(engine.__file__)"], cwd=tree,
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return Path(out.stdout.strip()).resolve().parent


def measure(tree: Path, settings: Settings, clip: Path, jobs: int, log: Path):
    """Start `tree`'s worker on `settings`, submit `jobs` clips one after another; returns
    (submit-to-start ms, start-to-finish ms, submit-to-result-seen ms) per job."""
    store = open_store(settings.db_path)
    with open(log, "ab") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", "worker"], cwd=tree, env=env_for(settings),
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_for(lambda: (w := store.latest_worker()) and w["pid"] == worker.pid
                 and w["model_loaded"], timeout=120, what=f"the worker of {tree}")  # fmt: skip
        latency, running, end_to_end = [], [], []
        pauses = random.Random(7)  # the same pauses for every worker measured
        for _ in range(jobs):
            time.sleep(pauses.uniform(0, 2 * settings.idle_poll_ms / 1000))
            t0 = time.perf_counter()
            with open(clip, "rb") as stream:
                job = submit_upload(store, settings, stream, "clip.wav")
            done = wait_for(lambda j=job.id: (x := store.get(j)).state.is_final and x,
                            timeout=60)  # fmt: skip
            end_to_end.append((time.perf_counter() - t0) * 1000)
            latency.append(done.started_at - done.submitted_at)
            running.append(done.finished_at - done.started_at)
    finally:
        stop(worker)
    return latency, running, end_to_end


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=40, help="jobs per worker per round")
    parser.add_argument("--against", type=Path, help="another checkout whose worker to compare")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of (this, --against)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="seaco-bench-"))
    models = build_test_models(tmp / "models", size="tiny")
    trees = {"this checkout": ROOT}
    if args.against is not None:
        trees["--against " + str(args.against)] = args.against.resolve()
    engines = {name: engine_of(tree) for name, tree in trees.items()}
    if len(set(engines.values())) != len(engines):
        raise SystemExit(f"both checkouts import the same engine package: {engines}")
    settings = {
        name: make_settings(
            tmp / f"data{i}", **model_overrides(models), device="cpu", ncpu="1", queue_max="1000"
        )  # fmt: skip
        for i, name in enumerate(trees)
    }
    for s in settings.values():
        s.ensure_dirs()
    clip = speech(tmp / "clip.wav", "jin1 tian1 tian1 qi4 hen3 hao3")

    # baseline: decode + transcribe in this process
    first = next(iter(settings.values()))
    pipeline = AsrPipeline.load(first.asr_model, first.vad_model, first.punc_model,
                                device="cpu", ncpu=1)  # fmt: skip
    direct = []
    for _ in range(args.jobs):
        t0 = time.perf_counter()
        samples, _ = audio.decode(clip)
        pipeline.transcribe(samples)
        direct.append((time.perf_counter() - t0) * 1000)

    latency: dict[str, list[float]] = {name: [] for name in trees}
    running: dict[str, list[float]] = {name: [] for name in trees}
    end_to_end: dict[str, list[float]] = {name: [] for name in trees}
    for round_ in range(args.rounds):
        order = list(trees) if round_ % 2 == 0 else list(trees)[::-1]
        for name in order:
            lat, run, e2e = measure(trees[name], settings[name], clip, args.jobs,
                               tmp / f"worker{list(trees).index(name)}.log")  # fmt: skip
            latency[name] += lat
            running[name] += run
            end_to_end[name] += e2e

    print(f"jobs: {args.jobs} x {audio.probe(clip).duration_ms / 1000:.1f} s clip per worker and"
          f" round, {args.rounds} round(s), tiny models,"
          f" SEACO_IDLE_POLL_MS={first.idle_poll_ms}")  # fmt: skip
    print(f"direct decode+transcribe (baseline): median {statistics.median(direct):.0f} ms")
    for name in trees:
        lat, e2e = latency[name], end_to_end[name]
        print(f"{name} ({engines[name]}):")
        print(f"  idle submit-to-start: p50 {pct(lat, 0.5):.0f} ms, p95 {pct(lat, 0.95):.0f} ms,"
              f" mean {statistics.mean(lat):.1f} ms")  # fmt: skip
        print(f"  the job in the worker (start to finish): median"
              f" {statistics.median(running[name]):.0f} ms")  # fmt: skip
        print(
            f"  through upload+queue+worker: median {statistics.median(e2e):.0f} ms,"
            f" ratio queue/direct {statistics.median(e2e) / statistics.median(direct):.2f}x"
        )


if __name__ == "__main__":
    main()
