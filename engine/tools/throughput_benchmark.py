"""Throughput benchmark: the whole service against a plain FunASR loop, in one run.

`seaco bench` (or `bench/throughput.py`) builds a corpus (engine/tools/benchmark_corpus.py), then:

1. decode speed: every corpus file through `engine.audio.decode`, CPU seconds per audio
   second, one core (PyAV decodes on one thread);
2. baseline: a separate process loads the same three models with `AutoModel` and runs
   `generate(input=path, hotword=...)` over the corpus in a plain loop, the way a script
   would use funasr (funasr decodes the files itself). VAD/ASR/punctuation times come from
   the same timers the service uses (`engine.recognition.model_hooks.install_stage_timers`);
3. system: `seaco serve` (web + worker) on a fresh data dir; once the models are loaded every
   file is uploaded through `POST /api/v1/jobs` and the clock runs until the last job is
   done; then short jobs are submitted one at a time to an idle worker for the idle
   submit-to-start latency.

Model loading is outside both clocks. Both sides use the same models, device, torch threads
and hotwords, and produce the same kind of output (punctuated text with sentence times).
The report gives audio seconds per wall second for each and their ratio, per-stage totals,
peak RSS, and the idle latency percentiles.

With `--layout` (twice or more) it compares worker layouts instead of the baseline: the
system step (3.) once per SEACO_WORKERS value per round, same corpus, the layouts' order
alternating from round to round (A B, B A, ...) so that other work on a shared machine falls
on each alike; each run gets wall time, CPU time of every process and the real-time factor.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from engine.tools.benchmark_corpus import DEFAULT_LENGTHS_S, build_corpus
from engine.tools.benchmark_report import format_backlog, format_layouts, format_report
from engine.waiting import free_port, wait_for

DEFAULT_HOTWORDS = "科哥,阿里巴巴,达摩院"
ROOT = Path(__file__).resolve().parent.parent


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --- decode speed ---------------------------------------------------------------------------
def decode_speed(paths: list[Path]) -> dict[str, dict[str, float]]:
    """Audio seconds decoded per CPU second, per format (x real time on one core)."""
    from engine.audio import decode

    out: dict[str, dict[str, float]] = {}
    for path in paths:
        started = time.process_time()
        samples, _info = decode(path)
        cpu = time.process_time() - started
        entry = out.setdefault(path.suffix.lstrip("."), {"audio_s": 0.0, "cpu_s": 0.0})
        entry["audio_s"] += len(samples) / 16000
        entry["cpu_s"] += cpu
    for entry in out.values():
        entry["x_realtime_per_core"] = entry["audio_s"] / max(entry["cpu_s"], 1e-9)
    return out


# --- baseline: plain funasr in its own process -----------------------------------------------
def baseline_child(spec_path: Path, out_path: Path) -> None:
    """Runs in a fresh interpreter:
    `python -m engine.tools.throughput_benchmark baseline SPEC OUT`."""
    import logging
    import resource

    spec = json.loads(Path(spec_path).read_text())
    from funasr import AutoModel

    logging.getLogger().setLevel(logging.WARNING)  # funasr logs every hotword parse at INFO
    from engine.recognition.model_hooks import install_stage_timers

    model = AutoModel(
        model=spec["asr"],
        vad_model=spec["vad"],
        punc_model=spec["punc"],
        device=spec["device"],
        ncpu=spec["ncpu"],
        disable_update=True,
        disable_pbar=True,
    )
    times = install_stage_timers(model)
    hotword = " ".join(spec["hotwords"]) or None
    # Warm up once per format, as the worker warms up once at load: funasr's first resample
    # of a 44.1 kHz mp3 (librosa/soxr) costs seconds that no later file pays.
    for fmt in sorted({f["fmt"] for f in spec["files"]}):
        warm = min((f for f in spec["files"] if f["fmt"] == fmt), key=lambda f: f["seconds"])
        model.generate(input=warm["path"], hotword=hotword)
    times.reset()
    per_file = []
    cpu_started = time.process_time()  # every thread of this process
    started = time.perf_counter()
    for f in spec["files"]:
        t0 = time.perf_counter()
        result = model.generate(
            input=f["path"],
            hotword=hotword,
            sentence_timestamp=True,
            batch_size_s=spec["batch_size_s"],
        )
        per_file.append(
            {
                "path": f["path"],
                "seconds": f["seconds"],
                "wall_s": time.perf_counter() - t0,
                "chars": len(result[0].get("text", "")) if result else 0,
            }
        )
    wall = time.perf_counter() - started
    out = {
        "wall_s": wall,
        "cpu_s": time.process_time() - cpu_started,
        "stage_s": dict(times.seconds),
        "stage_calls": dict(times.calls),
        "files": per_file,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    Path(out_path).write_text(json.dumps(out, indent=1))


def run_baseline(spec: dict[str, Any], work: Path, log: Path) -> dict[str, Any]:
    spec_path, out_path = work / "baseline-spec.json", work / "baseline-out.json"
    spec_path.write_text(json.dumps(spec))
    out_path.unlink(missing_ok=True)
    with open(log, "ab") as stream:
        code = subprocess.call(
            [
                sys.executable,
                "-m",
                "engine.tools.throughput_benchmark",
                "baseline",
                str(spec_path),
                str(out_path),
            ],
            cwd=ROOT,
            stdout=stream,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    if code != 0 or not out_path.is_file():
        raise RuntimeError(f"the baseline process failed (exit {code}); see {log}")
    return json.loads(out_path.read_text())


# --- the system: seaco serve, jobs through the API -------------------------------------------
def _peak_rss_mb(pid: int) -> float | None:
    """VmHWM: the most resident memory the process ever had (Linux)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@contextmanager
def serving(
    spec: dict[str, Any], work: Path, log: Path, overrides: dict[str, str], queue_max: int
) -> Iterator[dict[str, Any]]:
    """`seaco serve` on a fresh data dir under `work`, models loaded and the web process up;
    yields settings, store, client, the worker's pid and the settings given. SIGTERM after."""
    from engine.config import load_settings
    from engine.store import open_store
    from engine.tools.submit_client import ApiClient

    data = work / "data"
    shutil.rmtree(data, ignore_errors=True)
    env_settings = {
        "SEACO_DATA_DIR": str(data),
        "SEACO_HOST": "127.0.0.1",
        "SEACO_PORT": str(free_port()),
        "SEACO_ASR_MODEL": spec["asr"],
        "SEACO_VAD_MODEL": spec["vad"],
        "SEACO_PUNC_MODEL": spec["punc"],
        "SEACO_DEVICE": spec["device"],
        "SEACO_NCPU": str(spec["ncpu"]),
        "SEACO_BATCH_SIZE_S": str(spec["batch_size_s"]),
        "SEACO_HOTWORDS": "",
        "SEACO_QUEUE_MAX": str(queue_max),
        "SEACO_LOG_LEVEL": "WARNING",
        "SEACO_JOB_TIMEOUT_S": "3600",
        **{f"SEACO_{k.upper()}": v for k, v in overrides.items()},
    }
    settings = load_settings(env_settings, env_file=None)
    settings.ensure_dirs()
    out = open(log, "ab")  # closed below with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "serve"],
        cwd=ROOT,
        env=settings.child_env(),
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    store = open_store(settings.db_path)
    client = ApiClient(f"http://127.0.0.1:{settings.port}", timeout_s=600)

    def loaded_workers() -> list[dict[str, Any]] | None:
        """Every configured worker's row once each is alive with its models loaded."""
        from engine.ops.health import worker_states
        from engine.store import now_ms

        states = worker_states(store.workers(), settings, now_ms())
        ready = all(w.alive and w.fields.get("model_loaded") for w in states if w.configured)
        return [w.fields for w in states] if proc.poll() is None and ready else None

    try:
        workers = wait_for(loaded_workers, 1200, "the workers to load the models")
        wait_for(_reachable(client), 300, "the web process")
        yield {
            "settings": settings,
            "store": store,
            "client": client,
            "worker_pid": int(workers[0]["pid"]),
            "worker_pids": [int(w["pid"]) for w in workers],
            "serve_pid": proc.pid,
            "given": {k: v for k, v in env_settings.items() if k != "SEACO_DATA_DIR"},
        }
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        out.close()
        store.close()


def run_system(
    spec: dict[str, Any], work: Path, log: Path, overrides: dict[str, str], idle_jobs: int
) -> dict[str, Any]:
    hotwords = ",".join(spec["hotwords"]) or None
    with serving(spec, work, log, overrides, max(100, 2 * len(spec["files"]))) as served:
        store, client = served["store"], served["client"]
        cpu_started = _tree_cpu_s(served["serve_pid"])
        started_ms = time.time() * 1000
        ids = [client.submit(Path(f["path"]), hotwords) for f in spec["files"]]
        submitted_ms = time.time() * 1000
        jobs = wait_for(lambda: _all_final(store, ids), 24 * 3600, "the corpus jobs")
        cpu_s = _tree_cpu_s(served["serve_pid"]) - cpu_started
        wall_s = (max(j.finished_at for j in jobs) - started_ms) / 1000
        failed = [f"{j.id}: {j.error}" for j in jobs if j.state.value != "done"]
        # idle pickup: one short job at a time, each after the previous one is done
        short = min(spec["files"], key=lambda f: f["seconds"])
        latency = []
        for _ in range(idle_jobs):
            job_id = client.submit(Path(short["path"]), hotwords)
            (done,) = wait_for(partial(_all_final, store, [job_id]), 600, "an idle job")
            latency.append(done.started_at - done.submitted_at)
        peak_rss = _peak_rss_mb(served["worker_pid"])
        peaks = [_peak_rss_mb(pid) for pid in served["worker_pids"]]
    return {
        "wall_s": wall_s,
        "cpu_s": cpu_s,
        "workers": len(served["worker_pids"]),
        "workers_peak_rss_mb": peaks,
        "upload_s": (submitted_ms - started_ms) / 1000,
        "failed": failed,
        "stage_ms": _stage_totals(jobs, wall_s),
        "worker_peak_rss_mb": peak_rss,
        "idle_latency_ms": latency,
        "settings": served["given"],
        "jobs": [
            {
                "id": j.id,
                "name": j.original_name,
                "audio_ms": j.duration_ms,
                "queue_wait_ms": j.queue_wait_ms,
                "decode_ms": j.decode_ms,
                "inference_ms": j.inference_ms,
                "total_ms": j.total_ms,
                "vad_ms": j.vad_ms,
                "asr_ms": j.asr_ms,
                "punc_ms": j.punc_ms,
            }
            for j in jobs
        ],
    }


def run_backlog(
    spec: dict[str, Any], work: Path, log: Path, overrides: dict[str, str], n_jobs: int
) -> dict[str, Any]:
    """The worker's RSS while it works through `n_jobs` short files queued at once: sampled
    with the number of jobs finished, so growth per job shows as a slope."""
    import psutil

    short = [f for f in spec["files"] if f["seconds"] <= 12] or spec["files"][:1]
    hotwords = ",".join(spec["hotwords"]) or None
    samples: list[tuple[int, float]] = []
    with serving(spec, work, log, overrides, n_jobs + 10) as served:
        store, client = served["store"], served["client"]
        worker = psutil.Process(served["worker_pid"])

        def sample() -> int:
            counts = store.counts_by_state()
            finished = counts["done"] + counts["failed"] + counts["cancelled"]
            samples.append((finished, worker.memory_info().rss / 2**20))
            return finished

        started = time.monotonic()
        for i in range(n_jobs):
            client.submit(Path(short[i % len(short)]["path"]), hotwords)
            if i % 20 == 0:
                sample()
        wait_for(lambda: sample() >= n_jobs, 24 * 3600, "the backlog")
        wall_s = time.monotonic() - started
        counts = store.counts_by_state()
        vram = (store.latest_worker() or {}).get("info", {}).get("vram_mb")
        same_worker = int(store.latest_worker()["pid"]) == served["worker_pid"]
    warm = [(n, rss) for n, rss in samples if n >= n_jobs // 10] or samples
    xs, ys = [n for n, _ in warm], [rss for _, rss in warm]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mean_x) ** 2 for x in xs)
    slope = (
        sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / var if var else 0
    )
    return {
        "jobs": n_jobs,
        "done": counts["done"],
        "failed": counts["failed"],
        "wall_s": wall_s,
        "files": [Path(f["path"]).name for f in short],
        "rss_mb_after_10pct": warm[0][1],
        "rss_mb_final": samples[-1][1],
        "rss_mb_max": max(rss for _, rss in samples),
        "rss_mb_per_1000_jobs": slope * 1000,
        "vram_mb": vram,
        "same_worker_process": same_worker,
        "samples": samples,
    }


def _machine(device: str) -> str:
    """What the report says the run used."""
    cores = f"{os.cpu_count()} CPU cores"
    if not device.startswith("cuda"):
        return f"{cores}, no GPU used (device {device})"
    import torch

    index = int(device.split(":")[1]) if ":" in device else 0
    return f"{cores}, GPU {torch.cuda.get_device_name(index)} (device {device})"


def _tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and all its descendants: every
    process of `seaco serve` (supervisor, web, worker, decode-ahead). Less disturbed than
    wall time by other work on a shared machine."""
    import psutil

    total = 0.0
    root = psutil.Process(pid)
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def _reachable(client) -> Any:
    def check() -> bool:
        try:
            return client.session.get(client.base_url + "/health", timeout=5).status_code < 600
        except OSError:
            return False

    return check


def _all_final(store, ids: list[int]) -> list | None:
    jobs = [store.get(i) for i in ids]
    return jobs if all(j.state.is_final for j in jobs) else None


def _stage_totals(jobs: list, wall_s: float) -> dict[str, float]:
    """Summed stage times. Jobs batched together overlap in time, so the worker's busy time
    is the union of the jobs' [started, finished] spans, not the sum of their total_ms."""

    def total(attr: str) -> float:
        return float(sum(getattr(j, attr) or 0 for j in jobs))

    inference, decode = total("inference_ms"), total("decode_ms")
    stages = {k: total(f"{k}_ms") for k in ("vad", "asr", "punc")}
    busy, end = 0.0, None
    for start, finish in sorted((j.started_at, j.finished_at) for j in jobs if j.started_at):
        if end is None or start > end:
            busy += finish - start
            end = finish
        elif finish > end:
            busy += finish - end
            end = finish
    return {
        "decode": decode,
        **stages,
        "funasr_glue": inference - sum(stages.values()),
        "store_and_bookkeeping": busy - decode - inference,
        "between_jobs": wall_s * 1000 - busy,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(args.work or tempfile.mkdtemp(prefix="seaco-bench-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    if args.models:
        models = {
            k: Path(args.models) / d
            for k, d in (("asr", "seaco-asr"), ("vad", "fsmn-vad"), ("punc", "ct-punc"))
        }
    else:
        from engine.recognition.random_models import build_test_models

        models = build_test_models(work / f"models-{args.size}", size=args.size, seed=0)
    lengths = tuple(float(x) for x in args.lengths.split(","))
    files = build_corpus(work / "corpus", lengths, seed=args.seed)
    hotwords = [w for w in args.hotwords.replace(",", " ").split() if w]
    spec = {
        "asr": str(models["asr"]),
        "vad": str(models["vad"]),
        "punc": str(models["punc"]),
        "device": args.device,
        "ncpu": args.ncpu,
        "batch_size_s": args.batch_size_s,
        "hotwords": hotwords,
        "files": [f.to_dict() for f in files],
    }
    overrides = dict(item.split("=", 1) for item in args.set)
    audio_s = sum(f.seconds for f in files)
    _say(f"corpus: {len(files)} files, {audio_s:.0f} s of audio in {work / 'corpus'}")
    speed = decode_speed([f.path for f in files])
    _say(
        "decode speed: "
        + ", ".join(f"{k} {v['x_realtime_per_core']:.0f}x" for k, v in speed.items())
    )
    if args.backlog:
        _say(f"backlog: {args.backlog} jobs queued at once, worker RSS sampled ...")
        backlog = run_backlog(spec, work, work / "serve.log", overrides, args.backlog)
        label = Path(args.models).name if args.models else args.size  # which models ran
        json_path = Path(args.json) if args.json else work / f"backlog-{label}.json"
        report = {
            "command": " ".join(sys.argv),
            "models": args.models or args.size,
            "overrides": overrides,
            "backlog": backlog,
        }
        json_path.write_text(json.dumps(report, indent=1))
        _say(f"report: {json_path}")
        return report
    if len(args.layout) >= 2:
        return run_layouts(args, spec, work, overrides, files, lengths, audio_s, speed)
    # Rounds alternate baseline and system, so that other work on a shared machine falls
    # on both sides alike; the detailed tables are the last round's.
    rounds = []
    for i in range(args.rounds):
        _say(f"round {i + 1}: baseline: plain AutoModel.generate loop ...")
        baseline = run_baseline(spec, work, work / "baseline.log")
        _say(f"baseline: {baseline['wall_s']:.1f} s")
        _say(f"round {i + 1}: system: seaco serve, every file through the API ...")
        idle = args.idle_jobs if i == args.rounds - 1 else 0
        system = run_system(spec, work, work / "serve.log", overrides, idle)
        _say(f"system: {system['wall_s']:.1f} s")
        rounds.append(
            {
                "baseline_wall_s": baseline["wall_s"],
                "system_wall_s": system["wall_s"],
                "ratio": baseline["wall_s"] / system["wall_s"],
                "baseline_cpu_s": baseline["cpu_s"],
                "system_cpu_s": system["cpu_s"],
                "cpu_ratio": baseline["cpu_s"] / system["cpu_s"],
            }
        )
    report = {
        **_report_head(args, files, lengths, audio_s),
        "ncpu": args.ncpu,
        "hotwords": hotwords,
        "overrides": overrides,
        "decode_speed": speed,
        "baseline": {**baseline, "audio_s_per_s": audio_s / baseline["wall_s"]},
        "system": {**system, "audio_s_per_s": audio_s / system["wall_s"]},
        "rounds": rounds,
    }
    report["ratio_system_to_baseline"] = baseline["wall_s"] / system["wall_s"]
    report["cpu_ratio_system_to_baseline"] = baseline["cpu_s"] / system["cpu_s"]
    lat = system["idle_latency_ms"]
    report["idle_latency"] = (
        {"p50_ms": pct(lat, 0.5), "p95_ms": pct(lat, 0.95), "n": len(lat)} if lat else None
    )
    json_path = Path(args.json) if args.json else work / f"report-{args.size}.json"
    json_path.write_text(json.dumps(report, indent=1, ensure_ascii=False))
    _say(f"report: {json_path}")
    return report


def run_layouts(
    args: argparse.Namespace,
    spec: dict[str, Any],
    work: Path,
    overrides: dict[str, str],
    files: list,
    lengths: tuple[float, ...],
    audio_s: float,
    speed: dict[str, dict[str, float]],
) -> dict[str, Any]:
    """The system step once per worker layout (SEACO_WORKERS value) per round, the layouts'
    order reversed every other round; the report has every run and each layout's median."""
    runs = []
    for i in range(args.rounds):
        order = args.layout if i % 2 == 0 else list(reversed(args.layout))
        for layout in order:
            _say(f"round {i + 1}: SEACO_WORKERS={layout}: seaco serve, every file through the API")
            system = run_system(
                spec, work, work / "serve.log", {**overrides, "workers": layout}, idle_jobs=0
            )
            _say(
                f"SEACO_WORKERS={layout}: {system['wall_s']:.1f} s wall, "
                f"{system['cpu_s']:.1f} s CPU, {system['workers']} worker(s)"
            )
            runs.append(
                {
                    "round": i + 1,
                    "layout": layout,
                    "workers": system["workers"],
                    "wall_s": system["wall_s"],
                    "cpu_s": system["cpu_s"],
                    "rtf": system["wall_s"] / audio_s,
                    "audio_s_per_s": audio_s / system["wall_s"],
                    "cores_busy": system["cpu_s"] / system["wall_s"],
                    "workers_peak_rss_mb": system["workers_peak_rss_mb"],
                    "failed": system["failed"],
                }
            )
    medians = {}
    for layout in args.layout:
        mine = [r for r in runs if r["layout"] == layout]
        medians[layout] = {
            key: _median([r[key] for r in mine])
            for key in ("wall_s", "cpu_s", "rtf", "audio_s_per_s", "cores_busy")
        }
    fastest = min(args.layout, key=lambda layout: medians[layout]["wall_s"])
    report = {
        **_report_head(args, files, lengths, audio_s),
        "hotwords": spec["hotwords"],
        "overrides": overrides,
        "decode_speed": speed,
        "layouts": args.layout,
        "runs": runs,
        "medians": medians,
        "fastest": fastest,
    }
    json_path = Path(args.json) if args.json else work / f"layouts-{args.size}.json"
    json_path.write_text(json.dumps(report, indent=1, ensure_ascii=False))
    _say(f"report: {json_path}")
    return report


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _report_head(args: argparse.Namespace, files: list, lengths: Any, audio_s: float) -> dict:
    """What every benchmark report starts with: when, on what machine (CPU flags included),
    with which models and command, over which corpus."""
    return {
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "machine": _machine(args.device),
        "cpu_flags": _cpu_flags(),
        "models": args.models or f"random-weight {args.size} test models",
        "command": " ".join(sys.argv),
        "corpus": {
            "files": len(files),
            "audio_s": audio_s,
            "lengths_s": list(lengths),
            "formats": sorted({f.fmt for f in files}),
        },
    }


def _cpu_flags() -> list[str]:
    """The vector-instruction flags of this CPU that matter for inference speed (AVX*, AMX*,
    FMA), from /proc/cpuinfo; empty where it cannot be read."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    words = set(text.split())
    return sorted(w for w in words if w.startswith(("avx", "amx")) or w == "fma")


def _say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="seaco bench", description=__doc__)
    parser.add_argument(
        "--size",
        choices=["tiny", "full"],
        default="tiny",
        help="random-weight test models to build (ignored with --models)",
    )
    parser.add_argument(
        "--models",
        default=None,
        help="a directory with seaco-asr/, fsmn-vad/, ct-punc/ (build-test layout)",
    )
    parser.add_argument("--work", default=None, help="working directory (default: a new temp dir)")
    parser.add_argument(
        "--lengths",
        default=",".join(str(x) for x in DEFAULT_LENGTHS_S),
        help="corpus file lengths in seconds, comma separated",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hotwords", default=DEFAULT_HOTWORDS)
    parser.add_argument(
        "--device", default="cpu", help="cpu or cuda[:N], for the baseline and the service alike"
    )
    parser.add_argument("--ncpu", type=int, default=min(os.cpu_count() or 1, 8))
    parser.add_argument("--batch-size-s", type=int, default=300)
    parser.add_argument("--idle-jobs", type=int, default=20)
    parser.add_argument(
        "--rounds", type=int, default=1, help="alternate baseline and system this many times"
    )
    parser.add_argument(
        "--layout",
        action="append",
        default=[],
        metavar="SEACO_WORKERS",
        help="twice or more: compare these worker layouts (e.g. --layout cpu/2 --layout "
        "'cpu*2/1') instead of the baseline, in alternating order each round",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the service, e.g. --set decode_ahead=0",
    )
    parser.add_argument("--json", default=None, help="write the report here")
    parser.add_argument(
        "--backlog",
        type=int,
        default=0,
        help="instead: queue this many short files at once and follow the worker's RSS",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["baseline"]:
        baseline_child(Path(argv[1]), Path(argv[2]))
        return 0
    args = build_parser().parse_args(argv)
    if len(args.layout) == 1:
        print("error: --layout compares layouts: give it at least twice", file=sys.stderr)
        return 2
    report = run(args)
    if "backlog" in report:
        print(format_backlog(report["backlog"]))
        return 0 if not report["backlog"]["failed"] else 1
    if "layouts" in report:
        print(format_layouts(report))
        return 0 if not any(r["failed"] for r in report["runs"]) else 1
    print(format_report(report))
    return 0 if not report["system"]["failed"] else 1


if __name__ == "__main__":
    sys.exit(main())
