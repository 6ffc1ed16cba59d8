"""Soak harness: replay the article's load shapes against a running seaco-asr service.

Scenarios (MISSION.md, "The article's test scenarios"):

- A  frequent single files: 5 clients, each submits a 2-min WAV every 3 s (10 each, 50 jobs);
- B  mixed: per round 1 batch client (5 files), 2 single-file clients, 1 live recording
     (priority 20) and 2 clients refreshing system info (/health, /metrics, job list)
     every 2 s; 8 rounds (64 jobs);
- C  long-audio saturation: 3 clients each submit a 4 min 30 s MP3 at once, 10 rounds
     (30 jobs), each round after the previous one finished;
- soak  the 72-hour pattern: every hour 2 single files and 1 batch of 3, system info every
     6 hours.

`--compress F` divides every pause of the load by F (72 runs the 72-hour pattern in one
hour); `--audio-scale S` multiplies the audio lengths (e.g. 0.1 on a CPU box, where a 2-min
clip takes a full-size model ~15 s). Throughout, a prober reads /health every `--probe-s`
seconds: availability is the share of probes answered 200 (and of those saying "ok"), and
the worker's RSS/VRAM from each probe give the memory slope (least squares, MB per hour of
run time, per worker process, since a recycled worker starts afresh). Latencies come from
the service's own job timestamps (`finished_at - submitted_at`, `queue_wait_ms`,
`total_ms`), so the client's polling interval does not blur them.

    .venv/bin/python bench/soak.py --url http://127.0.0.1:7860 --scenarios A,B,C \
        --audio-scale 0.1 --out bench/results/abc
    .venv/bin/python bench/soak.py --url http://127.0.0.1:7860 --scenarios soak \
        --compress 72 --out bench/results/soak-72x

Writes `report.json` (every job, probe and request) and `report.md` (the summary) to --out.
Needs espeak-ng for speech (otherwise a synthetic voiced signal is used, as in the tests).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.audio_fixtures import speech_samples, write_audio

FINAL = ("done", "failed", "cancelled")
SENTENCE = "jin1 tian1 tian1 qi4 hen3 hao3 wo3 men5 qu4 gong1 yuan2 san4 bu4"


@dataclass
class JobRecord:
    scenario: str
    kind: str  # single | batch | live
    client: str
    sent_at: float  # epoch s, when the client sent it
    http_status: int | None = None
    refusals: int = 0  # 503 answers waited out before it was accepted
    job_id: int | None = None
    state: str | None = None
    error: str | None = None
    audio_ms: int | None = None
    e2e_ms: int | None = None  # finished_at - submitted_at
    queue_wait_ms: int | None = None
    processing_ms: int | None = None  # total_ms: started to finished


@dataclass
class Probe:
    at: float
    status: int  # 0: no answer
    health: str | None
    latency_ms: float
    worker_pid: int | None = None
    rss_mb: float | None = None
    vram_mb: float | None = None


@dataclass
class Run:
    url: str
    token: str | None
    compress: float
    job_timeout_s: float = 3600.0
    records: list[JobRecord] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)
    sysinfo: list[tuple[float, str, int]] = field(default_factory=list)  # (at, path, status)
    phases: list[tuple[str, float, float]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    followers: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(64))
    pending: list[Future] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def pause(self, seconds: float) -> None:
        """A pause of the load pattern, compressed."""
        time.sleep(seconds / self.compress)


# --- audio --------------------------------------------------------------------------------
def make_audio(out: Path, seconds: float, fmt: str) -> Path:
    """Mandarin-like speech (espeak-ng) of about `seconds`, cached under `out`."""
    path = out / f"speech-{seconds:.0f}s.{fmt}"
    if path.exists():
        return path
    import numpy as np

    one = speech_samples(out / "sentence.wav", SENTENCE)
    reps = max(1, math.ceil(seconds * 16000 / len(one)))
    samples = np.tile(np.concatenate([one, np.zeros(4000, np.float32)]), reps)
    write_audio(path, samples[: max(1600, int(seconds * 16000))], 16000, fmt)
    return path


# --- the client side ----------------------------------------------------------------------
def post(run: Run, path: str, files: list, data: dict, record: list[JobRecord]) -> Any:
    """POST with a patient client's manners: a 503 is waited out (Retry-After), 5 times."""
    for _attempt in range(6):
        try:
            r = requests.post(
                run.url + path, files=files, data=data, headers=run.headers, timeout=600
            )
        except requests.RequestException as exc:
            for rec in record:
                rec.error = f"request failed: {exc}"
            return None
        for rec in record:
            rec.http_status = r.status_code
        if r.status_code != 503:
            return r
        for rec in record:
            rec.refusals += 1
        time.sleep(min(60, float(r.headers.get("Retry-After", "5"))))
    return r


def follow(run: Run, rec: JobRecord) -> None:
    """Poll the job until it is final; one that never gets there within --job-timeout-s is
    recorded as such (a stuck queue must show up as failures, not hang the harness)."""
    deadline = time.monotonic() + run.job_timeout_s
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            r = requests.get(f"{run.url}/api/v1/jobs/{rec.job_id}", headers=run.headers, timeout=30)
            job = r.json()
        except (requests.RequestException, ValueError):
            time.sleep(1)
            continue
        if job.get("state") in FINAL:
            break
        time.sleep(0.5)
    else:
        rec.state = f"unfinished ({job.get('state')})"
        rec.error = f"not final after {run.job_timeout_s:.0f} s (still {job.get('state')})"
        return
    rec.state, rec.error = job["state"], job.get("error")
    rec.audio_ms, rec.queue_wait_ms = job.get("duration_ms"), job.get("queue_wait_ms")
    rec.processing_ms = job.get("total_ms")
    if job.get("finished_at") and job.get("submitted_at"):
        rec.e2e_ms = job["finished_at"] - job["submitted_at"]


def accept(run: Run, rec: JobRecord, job: dict) -> None:
    rec.job_id = job["id"]
    run.pending.append(run.followers.submit(follow, run, rec))


def submit_single(run: Run, scenario: str, client: str, audio: Path, priority: int = 10) -> None:
    rec = JobRecord(scenario, "live" if priority == 20 else "single", client, time.time())
    with run.lock:
        run.records.append(rec)
    with open(audio, "rb") as f:
        files = [("file", (audio.name, f.read()))]
    r = post(run, "/api/v1/jobs", files, {"priority": str(priority)}, [rec])
    if r is not None and r.status_code == 202:
        accept(run, rec, r.json())
    elif r is not None:
        rec.error = r.text[:300]


def submit_batch(run: Run, scenario: str, client: str, audio: list[Path]) -> None:
    recs = [JobRecord(scenario, "batch", client, time.time()) for _ in audio]
    with run.lock:
        run.records.extend(recs)
    files = [("files", (p.name, p.read_bytes())) for p in audio]
    r = post(run, "/api/v1/batches", files, {}, recs)
    if r is None or r.status_code != 202:
        for rec in recs:
            rec.error = rec.error or (r.text[:300] if r is not None else "no answer")
        return
    body = r.json()
    for rec, job in zip(recs, body["jobs"], strict=False):
        accept(run, rec, job)
    for rec, rejected in zip(recs[len(body["jobs"]) :], body["rejected"], strict=False):
        rec.error = rejected["error"]["message"]


def system_info(run: Run) -> None:
    for path in ("/health", "/metrics", "/api/v1/jobs?limit=50"):
        try:
            status = requests.get(run.url + path, headers=run.headers, timeout=30).status_code
        except requests.RequestException:
            status = 0
        with run.lock:
            run.sysinfo.append((time.time(), path, status))


def drain(run: Run) -> None:
    """Wait until every accepted job of the phase so far is final."""
    for future in list(run.pending):
        future.result()


def prober(run: Run, interval_s: float, stop: threading.Event) -> None:
    while not stop.is_set():
        t0 = time.perf_counter()
        probe = Probe(time.time(), 0, None, 0.0)
        try:
            r = requests.get(run.url + "/health", timeout=10)
            probe.status = r.status_code
            report = r.json()
            probe.health = report.get("status")
            worker = report.get("checks", {}).get("worker", {})
            probe.worker_pid, probe.rss_mb = worker.get("pid"), worker.get("rss_mb")
            probe.vram_mb = worker.get("vram_mb")
        except (requests.RequestException, ValueError):
            pass
        probe.latency_ms = (time.perf_counter() - t0) * 1000
        with run.lock:
            run.probes.append(probe)
        stop.wait(interval_s)


# --- the scenarios ----------------------------------------------------------------------------
def scenario_a(run: Run, audio: dict[str, Path]) -> None:
    def client(n: int) -> None:
        for _ in range(10):
            started = time.monotonic()
            submit_single(run, "A", f"a{n}", audio["2min_wav"])
            run.pause(max(0.0, 3 - (time.monotonic() - started) * run.compress))

    with ThreadPoolExecutor(5) as pool:
        list(pool.map(client, range(5)))


def scenario_b(run: Run, audio: dict[str, Path], rounds: int = 8) -> None:
    stop = threading.Event()

    def refresher() -> None:
        while not stop.is_set():
            system_info(run)
            stop.wait(2 / run.compress)

    with ThreadPoolExecutor(8) as pool:
        refreshers = [pool.submit(refresher) for _ in range(2)]
        for n in range(rounds):
            work = [
                pool.submit(submit_batch, run, "B", "batch", [audio["2min_wav"]] * 5),
                pool.submit(submit_single, run, "B", "s1", audio["2min_wav"]),
                pool.submit(submit_single, run, "B", "s2", audio["2min_mp3"]),
                pool.submit(submit_single, run, "B", "live", audio["live_wav"], 20),
            ]
            for w in work:
                w.result()
            drain(run)
            if n < rounds - 1:
                run.pause(3)
        stop.set()
        for r in refreshers:
            r.result()


def scenario_c(run: Run, audio: dict[str, Path], rounds: int = 10) -> None:
    with ThreadPoolExecutor(3) as pool:
        for _ in range(rounds):
            list(pool.map(lambda n: submit_single(run, "C", f"c{n}", audio["long_mp3"]), range(3)))
            drain(run)


def scenario_soak(run: Run, audio: dict[str, Path], hours: int) -> None:
    start = time.monotonic()
    for hour in range(hours):
        due = start + hour * 3600 / run.compress
        time.sleep(max(0.0, due - time.monotonic()))
        if hour % 6 == 0:
            system_info(run)
        for n in range(2):
            submit_single(run, "soak", f"single{n}", audio["2min_wav"])
        submit_batch(
            run, "soak", "batch", [audio["2min_wav"], audio["2min_mp3"], audio["2min_wav"]]
        )
    time.sleep(max(0.0, start + hours * 3600 / run.compress - time.monotonic()))


# --- the report ----------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (epoch s, MB) in MB per hour; None for fewer than 3 points."""
    if len(points) < 3:
        return None
    xs = [(t - points[0][0]) / 3600 for t, _ in points]
    ys = [v for _, v in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    return None if sxx == 0 else sxy / sxx


def memory_summary(probes: list[Probe], key: str) -> dict[str, Any]:
    by_pid: dict[int, list[tuple[float, float]]] = {}
    for p in probes:
        value = getattr(p, key)
        if p.worker_pid is not None and value is not None:
            by_pid.setdefault(p.worker_pid, []).append((p.at, value))
    if not by_pid:
        return {"samples": 0}
    longest = max(by_pid.values(), key=len)
    return {
        "samples": sum(len(v) for v in by_pid.values()),
        "worker_processes": len(by_pid),
        "first_mb": longest[0][1],
        "last_mb": longest[-1][1],
        "max_mb": max(v for pts in by_pid.values() for _, v in pts),
        "slope_mb_per_hour_longest_worker": slope_per_hour(longest),
        "longest_worker_hours": (longest[-1][0] - longest[0][0]) / 3600,
    }


def summarize(run: Run) -> dict[str, Any]:
    scenarios: dict[str, Any] = {}
    for name in dict.fromkeys(r.scenario for r in run.records):
        recs = [r for r in run.records if r.scenario == name]
        done = [r for r in recs if r.state == "done"]
        e2e = [r.e2e_ms / 1000 for r in done if r.e2e_ms is not None]
        wait = [r.queue_wait_ms / 1000 for r in done if r.queue_wait_ms is not None]
        proc = [r.processing_ms / 1000 for r in done if r.processing_ms is not None]
        audio_s = [r.audio_ms / 1000 for r in done if r.audio_ms]
        scenarios[name] = {
            "submitted": len(recs),
            "done": len(done),
            "failed_or_refused": len(recs) - len(done),
            "refusals_503_waited_out": sum(r.refusals for r in recs),
            "errors": sorted({r.error for r in recs if r.error and r.state != "done"})[:10],
            "audio_s_mean": statistics.fmean(audio_s) if audio_s else None,
            "e2e_s": {
                "mean": statistics.fmean(e2e) if e2e else None,
                "sd": statistics.stdev(e2e) if len(e2e) > 1 else None,
                "p50": pct(e2e, 0.5),
                "p95": pct(e2e, 0.95),
                "p99": pct(e2e, 0.99),
                "max": max(e2e) if e2e else None,
            },
            "queue_wait_s": {
                "p50": pct(wait, 0.5),
                "p95": pct(wait, 0.95),
                "max": max(wait) if wait else None,
            },
            "processing_s": {"p50": pct(proc, 0.5), "p95": pct(proc, 0.95)},
            "rtf_p50": pct([p / a for p, a in zip(proc, audio_s, strict=False) if a], 0.5),
        }
    probes = run.probes
    answered = [p for p in probes if p.status == 200]
    return {
        "scenarios": scenarios,
        "availability": {
            "probes": len(probes),
            "http_200_share": len(answered) / len(probes) if probes else None,
            "status_ok_share": sum(p.health == "ok" for p in probes) / len(probes)
            if probes
            else None,
            "statuses_seen": sorted({str(p.health) for p in probes}),
            "probe_latency_ms_p95": pct([p.latency_ms for p in answered], 0.95),
        },
        "system_info_requests": {
            "count": len(run.sysinfo),
            "non_200": sum(s != 200 for _, _, s in run.sysinfo),
        },
        "rss": memory_summary(probes, "rss_mb"),
        "vram": memory_summary(probes, "vram_mb"),
    }


def markdown(run: Run, summary: dict[str, Any], meta: dict[str, Any]) -> str:
    def f(v: Any, digits: int = 1) -> str:
        return "-" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)

    lines = [
        "# Soak report",
        "",
        f"- started {meta['started']}, ran {meta['duration_s'] / 60:.1f} min; command: "
        f"`{meta['command']}`",
        f"- service {run.url}, compression {run.compress:g}x, audio scale {meta['audio_scale']:g}",
        f"- machine: {meta['machine']}",
        "",
        "| scenario | jobs | done | failed/refused | 503s waited out | audio s | e2e s mean ± sd "
        "| e2e p50/p95/p99 | queue wait p95/max | processing p50 | RTF p50 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in summary["scenarios"].items():
        e, w = s["e2e_s"], s["queue_wait_s"]
        lines.append(
            f"| {name} | {s['submitted']} | {s['done']} | {s['failed_or_refused']} | "
            f"{s['refusals_503_waited_out']} | {f(s['audio_s_mean'])} | "
            f"{f(e['mean'])} ± {f(e['sd'])} | {f(e['p50'])}/{f(e['p95'])}/{f(e['p99'])} | "
            f"{f(w['p95'])}/{f(w['max'])} | {f(s['processing_s']['p50'])} | "
            f"{f(s['rtf_p50'], 3)} |"
        )
    a, rss, vram = summary["availability"], summary["rss"], summary["vram"]
    lines += [
        "",
        f"- availability: {a['probes']} /health probes, {f(a['http_200_share'], 4)} answered "
        f"200, {f(a['status_ok_share'], 4)} said ok (statuses seen: "
        f"{', '.join(a['statuses_seen'])}); probe p95 {f(a['probe_latency_ms_p95'])} ms",
        f"- system-info requests: {summary['system_info_requests']['count']}, "
        f"non-200: {summary['system_info_requests']['non_200']}",
        f"- worker RSS: {rss.get('samples', 0)} samples over {rss.get('worker_processes', 0)} "
        f"worker process(es); longest-lived worker {f(rss.get('first_mb'))} -> "
        f"{f(rss.get('last_mb'))} MB over {f(rss.get('longest_worker_hours'), 2)} h, slope "
        f"{f(rss.get('slope_mb_per_hour_longest_worker'), 2)} MB/h"
        + (" (too short to judge a trend)" if (rss.get("longest_worker_hours") or 0) < 0.5 else "")
        + f"; max {f(rss.get('max_mb'))} MB",
        f"- VRAM: {'no GPU readings' if not vram.get('samples') else vram}",
    ]
    errors = {n: s["errors"] for n, s in summary["scenarios"].items() if s["errors"]}
    if errors:
        lines += ["", "Errors:", *[f"- {n}: {e}" for n, es in errors.items() for e in es]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:7860")
    parser.add_argument("--token", default=None, help="API token, if SEACO_API_TOKENS is set")
    parser.add_argument("--scenarios", default="A,B,C,soak")
    parser.add_argument("--compress", type=float, default=1.0, help="divide pauses by this")
    parser.add_argument("--audio-scale", type=float, default=1.0, help="multiply audio lengths")
    parser.add_argument("--soak-hours", type=int, default=72)
    parser.add_argument("--rounds-b", type=int, default=8)
    parser.add_argument("--rounds-c", type=int, default=10)
    parser.add_argument("--probe-s", type=float, default=5.0)
    parser.add_argument(
        "--job-timeout-s",
        type=float,
        default=3600.0,
        help="a job not final this long after it was accepted counts as failed",
    )
    parser.add_argument("--out", default="bench/results/soak")
    args = parser.parse_args(argv)

    out = Path(args.out)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    s = args.audio_scale
    audio = {
        "2min_wav": make_audio(out / "audio", 120 * s, "wav"),
        "2min_mp3": make_audio(out / "audio", 120 * s, "mp3"),
        "live_wav": make_audio(out / "audio", 8, "wav"),
        "long_mp3": make_audio(out / "audio", 270 * s, "mp3"),
    }
    run = Run(args.url.rstrip("/"), args.token, args.compress, args.job_timeout_s)
    requests.get(run.url + "/health", timeout=10)  # fail early when nothing listens
    stop = threading.Event()
    probe_thread = threading.Thread(target=prober, args=(run, args.probe_s, stop), daemon=True)
    started = time.time()
    probe_thread.start()
    phases = {
        "A": lambda: scenario_a(run, audio),
        "B": lambda: scenario_b(run, audio, args.rounds_b),
        "C": lambda: scenario_c(run, audio, args.rounds_c),
        "soak": lambda: scenario_soak(run, audio, args.soak_hours),
    }
    try:
        for name in args.scenarios.split(","):
            t0 = time.time()
            print(f"scenario {name} ...", flush=True)
            phases[name.strip()]()
            drain(run)
            run.phases.append((name, t0, time.time()))
    finally:
        stop.set()
        probe_thread.join()
        run.followers.shutdown(wait=False, cancel_futures=True)
    meta = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(started)),
        "duration_s": time.time() - started,
        "command": " ".join(["bench/soak.py", *(argv if argv is not None else sys.argv[1:])]),
        "audio_scale": s,
        "machine": f"{platform.node()}, {platform.machine()}, {_cpus()} CPUs",
    }
    summary = summarize(run)
    report = {
        "meta": meta,
        "summary": summary,
        "phases": run.phases,
        "jobs": [asdict(r) for r in run.records],
        "probes": [asdict(p) for p in run.probes],
        "system_info": run.sysinfo,
    }
    (out / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False))
    text = markdown(run, summary, meta)
    (out / "report.md").write_text(text)
    print(text)
    bad = sum(s["failed_or_refused"] for s in summary["scenarios"].values())
    return 1 if bad else 0


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    sys.exit(main())
