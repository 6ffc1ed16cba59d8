"""Several workers on one machine: `seaco serve` with SEACO_WORKERS=cpu*2 runs two worker
processes (slots w0 and w1), each with its own models, heartbeat and leases, as real
processes. Jobs are claimed exclusively and both workers do some of them: every job runs
behind a gate (tests/worker/gated_pipeline.py) that the test opens only once each worker
holds a job. A SIGKILLed worker makes /health degraded, naming it; the supervisor restarts
that slot only and the job it held is done. /metrics has one series per worker."""

from __future__ import annotations

import os
import re
import signal
import socket
from pathlib import Path

import pytest

from engine.config import load_settings
from engine.intake import submit_upload
from engine.jobs import JobState
from engine.ops.health import configured_workers
from engine.store import Store, now_ms, open_store
from tests.audio_fixtures import tone, write_audio
from tests.conftest import model_overrides
from tests.procs import get_health, serve, stop, wait_for
from tests.worker.gated_pipeline import GATE_ENV, SPEC

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory, tiny_models):
    """`seaco serve` with SEACO_WORKERS=cpu*2 behind an open gate, both workers' models
    loaded. Yields (settings, proc, base_url, tmp_path, gate)."""
    tmp_path = tmp_path_factory.mktemp("slots")
    gate = tmp_path / "gate"
    gate.touch()
    settings, proc, base_url = serve(
        tmp_path, "data", extra_env={"SEACO_TEST_PIPELINE": SPEC, GATE_ENV: str(gate)},
        workers="cpu*2", queue_max="50", **model_overrides(tiny_models),
    )  # fmt: skip
    try:
        wait_for(lambda: get_health(base_url)[1].get("status") == "ok", timeout=240,
                 what="/health to say ok with both workers' models loaded")  # fmt: skip
        yield settings, proc, base_url, tmp_path, gate
    finally:
        os.kill(proc.pid, signal.SIGCONT)  # in case a test stopped it and failed meanwhile
        gate.touch()
        assert stop(proc) == 0
        assert "Traceback" not in (tmp_path / "data.log").read_text()


def newest_by_slot(store: Store) -> dict[int, dict]:
    rows: dict[int, dict] = {}
    for row in store.workers():
        if row["slot"] not in rows or row["started_at"] > rows[row["slot"]]["started_at"]:
            rows[row["slot"]] = row
    return rows


def submit(store: Store, settings, tmp_path: Path, n: int, tag: str) -> list[int]:
    ids = []
    for i in range(n):
        clip = write_audio(tmp_path / f"{tag}-{i}.wav", tone(0.5, freq=200 + 10 * i), 16000, "wav")
        with open(clip, "rb") as stream:
            ids.append(submit_upload(store, settings, stream, clip.name).id)
    return ids


def both_hold_a_job(store: Store) -> dict[int, int] | None:
    """{slot: job id} once each of the two live workers holds a running job."""
    rows = newest_by_slot(store)
    held = {
        slot: row["current_job_id"]
        for slot, row in rows.items()
        if row["state"] == "busy" and row["current_job_id"] is not None
    }
    running = {j.id for j in store.list_jobs(state="running", limit=100)}
    return held if set(held) == {0, 1} and set(held.values()) <= running else None


def test_the_configured_layout_is_two_cpu_workers_of_one_thread(two_workers):
    settings = two_workers[0]
    slots = configured_workers(load_settings(settings.child_env(), env_file=None))
    assert [(s.name, s.device, s.threads) for s in slots] == [("w0", "cpu", 1), ("w1", "cpu", 1)]


def test_two_worker_processes_with_distinct_ids_heartbeat(two_workers):
    settings, _proc, base_url, _tmp, _gate = two_workers
    store = open_store(settings.db_path)
    first = newest_by_slot(store)
    assert set(first) == {0, 1}
    assert first[0]["id"] != first[1]["id"] and first[0]["pid"] != first[1]["pid"]
    assert "-w0-" in first[0]["id"] and "-w1-" in first[1]["id"]
    assert all(r["device"] == "cpu" and r["threads"] == 1 for r in first.values())
    wait_for(
        lambda: all(
            newest_by_slot(store)[s]["heartbeat_at"] > first[s]["heartbeat_at"] for s in (0, 1)
        ),
        timeout=30, what="a fresh heartbeat from each worker",
    )  # fmt: skip
    assert newest_by_slot(store)[0]["id"] == first[0]["id"]  # the same processes
    report = get_health(base_url)[1]["checks"]["worker"]
    assert report["alive"] == report["configured"] == 2
    assert [w["worker"] for w in report["workers"]] == ["w0", "w1"]


def test_ten_jobs_are_each_done_exactly_once_and_both_workers_do_some(two_workers):
    settings, _proc, _url, tmp_path, gate = two_workers
    store = open_store(settings.db_path)
    before = {r["id"]: r["jobs_done"] for r in store.workers()}
    gate.unlink()
    ids = submit(store, settings, tmp_path, 10, "ten")
    wait_for(lambda: both_hold_a_job(store), timeout=60, what="each worker to hold a job")
    gate.touch()
    wait_for(lambda: all(store.get(j).state.is_final for j in ids), timeout=180,
             what="the ten jobs")  # fmt: skip

    jobs = [store.get(j) for j in ids]
    assert [j.state for j in jobs] == [JobState.DONE] * 10
    assert [j.attempts for j in jobs] == [1] * 10  # claimed once each
    finished = {r["id"]: r for r in store.finished_jobs_between(0, now_ms() + 1)}
    by_slot = [finished[j]["worker_slot"] for j in ids]
    assert set(by_slot) == {0, 1}, by_slot
    assert {finished[j]["worker_host"] for j in ids} == {socket.gethostname()}
    done_now = sum(r["jobs_done"] - before.get(r["id"], 0) for r in store.workers())
    assert done_now == 10  # each result written once (complete() returned True once per job)
    log = (settings.log_dir / "app.log").read_text()  # every process of the instance logs here
    for job_id in ids:  # and each recognised once, by one worker
        assert len(re.findall(rf"job {job_id}: done in ", log)) == 1, job_id
    assert "result discarded" not in log


def test_a_killed_worker_makes_health_degraded_and_only_its_slot_restarts(two_workers):
    settings, proc, base_url, tmp_path, gate = two_workers
    store = open_store(settings.db_path)
    gate.unlink()
    ids = submit(store, settings, tmp_path, 3, "kill")
    held = wait_for(lambda: both_hold_a_job(store), timeout=60, what="each worker to hold a job")
    before = newest_by_slot(store)
    victim, survivor = before[1], before[0]
    # Freeze the supervisor so that the dead worker stays dead while /health is read: it
    # would otherwise start a new w1 after a second. SIGCONT lets it notice and restart.
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        os.kill(victim["pid"], signal.SIGKILL)
        status, report = wait_for(
            lambda: (r := get_health(base_url))[1].get("checks", {}).get("worker", {})
            .get("alive") == 1 and r,
            timeout=60, what="/health to see one worker alive",
        )  # fmt: skip
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    assert status == 200 and report["status"] == "degraded"
    detail = report["checks"]["worker"]["detail"]
    assert detail.startswith("1 of 2 workers alive; not alive: w1 (cpu)"), detail
    assert "w0" not in detail
    assert any(r.startswith("worker: 1 of 2 workers alive") for r in report["reasons"])

    restarted = wait_for(
        lambda: (r := newest_by_slot(store)[1])["pid"] != victim["pid"] and r["model_loaded"]
        and r["state"] != "stopped" and r,
        timeout=120, what="a new w1 with its models loaded",
    )  # fmt: skip
    assert "-w1-" in restarted["id"]
    gate.touch()
    wait_for(lambda: all(store.get(j).state.is_final for j in ids), timeout=180,
             what="the jobs, the killed worker's included")  # fmt: skip
    assert [store.get(j).state for j in ids] == [JobState.DONE] * 3
    assert store.get(held[1]).attempts == 2  # the killed worker's job, claimed again
    now = newest_by_slot(store)
    assert now[0]["id"] == survivor["id"] and now[0]["pid"] == survivor["pid"]  # untouched
    exits = [e for e in store.events(200) if e["kind"] == "worker.exit"]
    assert len(exits) == 1 and f"pid {victim['pid']}" in exits[0]["message"]
    assert "worker w1" in exits[0]["message"]
    wait_for(lambda: get_health(base_url)[1].get("status") == "ok", timeout=60,
             what="/health to be ok again")  # fmt: skip


def test_metrics_have_a_series_per_worker(two_workers):
    import requests
    from prometheus_client.parser import text_string_to_metric_families

    settings, _proc, base_url, tmp_path, gate = two_workers
    store = open_store(settings.db_path)
    gate.unlink()
    ids = submit(store, settings, tmp_path, 2, "metrics")
    wait_for(lambda: both_hold_a_job(store), timeout=60, what="each worker to hold a job")
    gate.touch()
    wait_for(lambda: all(store.get(j).state.is_final for j in ids), timeout=120,
             what="the jobs")  # fmt: skip

    text = requests.get(f"{base_url}/metrics", timeout=10).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    host = socket.gethostname()
    up = {s.labels["worker"]: s for s in families["seaco_worker_up"].samples}
    assert set(up) == {"w0", "w1"}
    for sample in up.values():
        assert sample.value == 1
        assert sample.labels["host"] == host and sample.labels["device"] == "cpu"
    busy = {s.labels["worker"] for s in families["seaco_worker_busy"].samples}
    assert busy == {"w0", "w1"}
    done = {
        s.labels["worker"]: s.value
        for s in families["seaco_worker_jobs"].samples
        if s.labels["state"] == "done" and s.name == "seaco_worker_jobs_total"
    }
    assert set(done) == {"w0", "w1"} and all(v >= 1 for v in done.values())
    assert families["seaco_workers_configured"].samples[0].value == 2
    assert families["seaco_workers_alive"].samples[0].value == 2


def test_seaco_bench_compares_worker_layouts_in_alternating_rounds(tmp_path, tiny_models):
    """The harness of BENCHMARKS.md's layout comparison, on the tiny models (their numbers
    mean nothing): each layout once per round, the order reversed every other round."""
    import json
    import subprocess
    import sys

    from tests.procs import ROOT

    report_path = tmp_path / "layouts.json"
    models = tiny_models["asr"].parent
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", "bench", "--models", str(models),
         "--work", str(tmp_path / "work"), "--lengths", "5", "--rounds", "2",
         "--layout", "1", "--layout", "cpu*2/1", "--json", str(report_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(report_path.read_text())
    runs = [(r["round"], r["layout"], r["workers"]) for r in report["runs"]]
    assert runs == [(1, "1", 1), (1, "cpu*2/1", 2), (2, "cpu*2/1", 2), (2, "1", 1)]
    assert all(r["failed"] == [] and r["wall_s"] > 0 and r["cpu_s"] > 0 for r in report["runs"])
    assert set(report["medians"]) == {"1", "cpu*2/1"} and report["fastest"] in report["medians"]
    assert "| SEACO_WORKERS | median wall s |" in done.stdout
