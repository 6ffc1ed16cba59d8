"""Crash safety with real processes: SIGKILL the worker at random moments while it works
through a stocked queue, twenty times and more, and SIGKILL the web process while uploads are
in flight. Every accepted job must end `done` exactly once or `failed` with a reason, no row
may stay `running`, no result may be written twice, and no upload that got its 202 may be
lost. A trigger installed in the real jobs.db records every transition to a final state.
No process outlives a killed worker: its decode-ahead process ends by itself, quietly."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
import requests

from engine.intake import submit_upload
from engine.jobs import JobState
from engine.store import now_ms, open_store
from engine.worker.decode_ahead import HELPER, PARENT_ENV, ROOT
from engine.worker.watchdog import Watchdog
from tests.audio_fixtures import speech_file
from tests.conftest import make_settings, model_overrides
from tests.procs import decode_helpers_of, fork_worker, get_health, serve, start, stop, wait_for

pytestmark = pytest.mark.slow
MID_JOB_KILLS = 20

AUDIT = """
CREATE TABLE test_audit (job_id INTEGER NOT NULL, state TEXT NOT NULL);
CREATE TRIGGER test_audit_final AFTER UPDATE OF state ON jobs
WHEN NEW.state IN ('done', 'failed', 'cancelled') AND OLD.state <> NEW.state
BEGIN
    INSERT INTO test_audit (job_id, state) VALUES (NEW.id, NEW.state);
END;
"""


def held_jobs(store, pid: int, since_ms: int) -> list:
    return store.running_jobs_of(store.worker_ids_for_pid(pid, socket.gethostname(), since_ms))


def test_killing_the_worker_mid_job_twenty_times_loses_and_duplicates_nothing(
    tmp_path, tiny_models
):
    settings = make_settings(
        tmp_path / "data", device="cpu", ncpu="1", lease_s="5", heartbeat_s="1",
        max_attempts="3", queue_max="100",
        **{f"{k}_model": str(v) for k, v in tiny_models.items()},
    )  # fmt: skip
    settings.ensure_dirs()
    store = open_store(settings.db_path)
    store.conn.executescript(AUDIT)
    # three clips of different lengths, so kills land in decoding, recognition and saving
    clips = [
        speech_file(tmp_path / f"c{n}", "wav", " ".join(["jin1 tian1 tian1 qi4 hen3 hao3"] * n))
        for n in (2, 4, 6)
        if (tmp_path / f"c{n}").mkdir() is None
    ]
    jobs: dict[int, int] = {}  # job id -> clip index

    def stock_queue() -> None:
        while store.counts_by_state()["queued"] < 4:
            n = len(jobs) % len(clips)
            with open(clips[n], "rb") as stream:
                jobs[submit_upload(store, settings, stream, clips[n].name).id] = n

    rng = random.Random(20240607)
    watchdog = Watchdog(settings)
    kills = mid_job = lease_expiries = with_helper = 0
    log = tmp_path / "workers.log"
    while mid_job < MID_JOB_KILLS:
        stock_queue()
        started = now_ms()
        worker = fork_worker(settings, log)
        pid = worker.pid
        try:
            wait_for(lambda p=pid, s=started: held_jobs(store, p, s), timeout=60,
                     what=f"worker {pid} to take a job")  # fmt: skip
            time.sleep(rng.uniform(0, 0.3))  # the random moment: chaos, not synchronisation
            with_helper += bool(decode_helpers_of(pid))
        finally:
            os.kill(pid, signal.SIGKILL)
            worker.join()
        kills += 1
        # its decode-ahead process (started or starting at the kill) does not outlive it
        wait_for(lambda p=pid: not decode_helpers_of(p), timeout=30,
                 what=f"the decode-ahead process of killed worker {pid} to end")  # fmt: skip
        if held_jobs(store, pid, started):  # the row still says this dead worker had a job
            mid_job += 1
        # Recover as `seaco serve` does on seeing the exit; every fourth time leave it to the
        # next worker's lease sweep instead, as after a crash of the whole machine.
        if kills % 4:
            watchdog.worker_exited(pid, started, -signal.SIGKILL)
        else:
            lease_expiries += 1

    # one last worker, left alone, finishes everything (including jobs whose leases must
    # expire first)
    last = fork_worker(settings, log)
    try:
        wait_for(lambda: all(store.get(j).state.is_final for j in jobs), timeout=180,
                 what="every job to finish")  # fmt: skip
    finally:
        os.kill(last.pid, signal.SIGTERM)
        last.join()

    counts = store.counts_by_state()
    assert counts["running"] == 0 and counts["queued"] == 0, counts
    audit: dict[int, list[str]] = {}
    for job_id, state in store.conn.execute("SELECT job_id, state FROM test_audit"):
        audit.setdefault(job_id, []).append(state)
    texts: dict[int, set[str]] = {}
    for job_id, clip in jobs.items():
        job = store.get(job_id)
        assert audit.get(job_id) == [job.state.value], (job_id, audit.get(job_id))
        assert job.attempts <= job.max_attempts
        if job.state is JobState.DONE:
            fts = store.conn.execute(
                "SELECT count(*) FROM transcript_fts WHERE job_id = ?", (job_id,)
            ).fetchone()[0]
            assert len(job.sentences) == job.sentence_count == fts
            texts.setdefault(clip, set()).add(job.text)
        else:
            assert job.state is JobState.FAILED and job.error_class == "PoisonJob" and job.error
    # the same audio always gives the same text: no result is partial or mixed up
    assert all(len(t) == 1 for t in texts.values()), texts
    assert sum(store.get(j).state is JobState.DONE for j in jobs) >= len(jobs) // 2
    assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert kills >= mid_job >= MID_JOB_KILLS and lease_expiries >= 1
    assert with_helper >= 1  # the kills did catch decode-ahead processes running
    assert "Traceback" not in log.read_text()


def test_a_killed_worker_leaves_no_process_behind(tmp_path, tiny_models):
    """`seaco worker` (its own process group, as `seaco serve` starts it) SIGKILLed alone, as
    the OOM killer would, with jobs queued so that its decode-ahead process is running: that
    process, and anything else the worker started, ends by itself, without a traceback."""
    settings = make_settings(
        tmp_path / "data", **model_overrides(tiny_models), device="cpu", ncpu="1",
        lease_s="5", heartbeat_s="1", decode_ahead="2", queue_max="100",
    )  # fmt: skip
    settings.ensure_dirs()
    store = open_store(settings.db_path)
    long_clip = speech_file(tmp_path, "wav", " ".join(["jin1 tian1 tian1 qi4 hen3 hao3"] * 12))
    for _ in range(3):  # each job after the first is decoded ahead
        with open(long_clip, "rb") as stream:
            submit_upload(store, settings, stream, long_clip.name)
    log = tmp_path / "worker.log"
    worker = start(["worker"], settings, log)
    try:
        helpers = wait_for(lambda: decode_helpers_of(worker.pid), timeout=120,
                           what="the worker's decode-ahead process")  # fmt: skip
        started = psutil.Process(worker.pid).children(recursive=True)
        assert {h.pid for h in helpers} <= {c.pid for c in started}
        os.kill(worker.pid, signal.SIGKILL)  # the worker alone, not its group
        worker.wait()
    finally:
        stop(worker)

    def alive(process: psutil.Process) -> bool:
        try:
            return process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    wait_for(lambda: not any(alive(c) for c in started), timeout=30,
             what="every process the killed worker started to end")  # fmt: skip
    assert not decode_helpers_of(worker.pid)
    assert "Traceback" not in log.read_text()


def test_a_decode_ahead_process_whose_worker_is_already_gone_exits_quietly(tmp_path):
    """The start-up half of the same promise: a decode-ahead process whose worker died while
    it was starting (its recorded parent is not its parent) exits at once with status 0 and
    prints nothing, where multiprocessing's spawn printed `EOFError: Ran out of input`."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid that is no longer anyone's parent
    helper = subprocess.Popen(
        [sys.executable, "-c", HELPER], cwd=ROOT, env={**os.environ, PARENT_ENV: str(gone.pid)},
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        code = helper.wait(timeout=60)  # its stdin stays open: only the parent check ends it
    finally:
        helper.kill()
        out, err = helper.communicate()
    assert (code, out, err) == (0, b"", b"")


def test_killing_the_web_process_loses_no_accepted_upload(tmp_path, tiny_models):
    settings, proc, base = serve(
        tmp_path, "data", queue_max="100", **{f"{k}_model": str(v) for k, v in tiny_models.items()}
    )
    store = open_store(settings.db_path)
    try:
        wait_for(lambda: get_health(base)[1].get("status") == "ok", timeout=180)
        web = next(c for c in psutil.Process(proc.pid).children() if "streamlit" in c.cmdline())
        # uploads big enough to be in flight when the web process dies (about 3 MB each)
        clip = speech_file(tmp_path, "wav", " ".join(["jin1 tian1 tian1 qi4 hen3 hao3"] * 24))
        body = clip.read_bytes()

        def post(i: int):
            payload = body + bytes(i)  # a different file each time: its own content hash
            try:
                r = requests.post(f"{base}/api/v1/jobs", timeout=60,
                                  files={"file": (f"{i}.wav", payload)})  # fmt: skip
            except requests.ConnectionError as exc:
                return i, None, exc
            return i, r, hashlib.sha256(payload).hexdigest()

        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(post, i) for i in range(16)]
            wait_for(lambda: store.count_jobs() >= 3, timeout=120, what="the first uploads")
            web.kill()
            answers = [f.result() for f in futures]
        accepted = [(r.json()["id"], sha) for _i, r, sha in answers if r is not None
                    and r.status_code == 202]  # fmt: skip
        assert accepted, "no upload was accepted before the kill"
        assert all(r is None or r.status_code in (202, 502, 503) for _i, r, _ in answers)

        # the supervisor starts a new web process; every accepted job is there with its file
        wait_for(lambda: get_health(base)[0] == 200, timeout=120, what="the web process back")
        for job_id, sha in accepted:
            job = store.get(job_id)
            assert job.audio_sha256 == sha
            data = (settings.data_dir / job.audio_path).read_bytes()
            assert hashlib.sha256(data).hexdigest() == sha
        for job_id, _sha in accepted:
            wait_for(lambda j=job_id: store.get(j).state is JobState.DONE, timeout=180)
        # uploads cut off by the kill left no partial files behind
        assert not list(settings.tmp_dir.glob("upload-*.part"))
        r = requests.post(f"{base}/api/v1/jobs", files={"file": ("after.wav", body)}, timeout=60)
        assert r.status_code == 202
    finally:
        assert stop(proc) == 0
