"""Disk and database faults against a real `seaco serve`: a full disk while an upload is
stored, and a database locked by another process for short and for long, are answered with
clean 507/503 errors; nothing is half-written (`PRAGMA integrity_check` is ok), the worker is
the same process throughout, and everything works again once the fault is gone.

The full disk is real: the data directory is a small tmpfs mounted for the test (root only;
elsewhere that test is skipped and says why)."""

from __future__ import annotations

import sqlite3
import subprocess
import threading

import pytest
import requests

from engine.store import open_store
from tests.audio_fixtures import tone, write_audio
from tests.procs import serve, stop, wait_for

pytestmark = pytest.mark.slow
BUSY_TIMEOUT_S = 5


@pytest.fixture(scope="module")
def svc(tmp_path_factory, tiny_models):
    tmp = tmp_path_factory.mktemp("faults")
    disk = tmp / "disk"
    disk.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(disk)]
    mounted = subprocess.run(mount, capture_output=True, check=False).returncode == 0
    # the data directory (jobs.db, audio, tmp, logs) on the small disk
    cfg, proc, base = serve(
        disk,
        "data",
        db_busy_timeout_s=str(BUSY_TIMEOUT_S),
        **{f"{k}_model": str(v) for k, v in tiny_models.items()},
    )
    store = open_store(cfg.db_path)
    try:
        worker = wait_for(
            lambda: (w := store.latest_worker()) and w["model_loaded"] and w,
            timeout=180,
            what="the worker with its models",
        )
        yield cfg, base, tmp, worker["pid"], mounted
    finally:
        assert stop(proc) == 0
        if mounted:
            subprocess.run(["umount", "-l", str(disk)], check=False)


def post(base: str, data: bytes, name: str = "a.wav") -> requests.Response:
    return requests.post(f"{base}/api/v1/jobs", files={"file": (name, data)}, timeout=60)


def wav(tmp, seconds: float, freq: float) -> bytes:
    return write_audio(tmp / f"{freq}.wav", tone(seconds, freq=freq), 16000, "wav").read_bytes()


def done(store, job_id: int) -> bool:
    return store.get(job_id).state.value == "done"


def files_under(directory) -> set:
    return {p for p in directory.rglob("*") if p.is_file()}


def test_a_full_disk_refuses_uploads_with_507_and_corrupts_nothing(svc):
    cfg, base, tmp, worker_pid, mounted = svc
    if not mounted:
        pytest.skip("needs permission to mount a small tmpfs as the data directory (root)")
    store = open_store(cfg.db_path)
    first = post(base, wav(tmp, 1, 300))
    assert first.status_code == 202, first.text
    wait_for(lambda: done(store, first.json()["id"]), timeout=120)
    audio_before = files_under(cfg.audio_dir)

    filler = cfg.data_dir / "filler"
    with open(filler, "wb", buffering=0) as f:  # fill the disk to the last byte
        for size in (1 << 20, 4096, 1):
            try:
                while f.write(bytes(size)):
                    pass
            except OSError:
                pass
    try:
        small = post(base, wav(tmp, 1, 400))  # kept in memory by the framework, then ours
        big = post(base, wav(tmp, 40, 500))  # over 1 MB: the framework spools it to disk
        for response in (small, big):
            assert response.status_code == 507, response.text
            assert response.json()["error"]["code"] == "storage_full"
        openai = requests.post(
            f"{base}/v1/audio/transcriptions",
            timeout=60,
            files={"file": ("c.wav", wav(tmp, 1, 600))},
        )
        assert openai.status_code == 507 and openai.json()["error"]["code"] == "storage_full"
        assert requests.get(f"{base}/health", timeout=10).json()["checks"]["disk"]["status"] == (
            "down"
        )
        assert files_under(cfg.audio_dir) == audio_before  # no partial file stored
    finally:
        filler.unlink()

    again = post(base, wav(tmp, 1, 700))
    assert again.status_code == 202, again.text
    wait_for(lambda: done(store, again.json()["id"]), timeout=120)
    assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert store.latest_worker()["pid"] == worker_pid
    assert not list(cfg.tmp_dir.iterdir())


def test_a_locked_database_gives_503_and_a_slow_one_only_a_wait(svc):
    cfg, base, tmp, worker_pid, _mounted = svc
    store = open_store(cfg.db_path)
    blocker = sqlite3.connect(cfg.db_path, isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock...
        # ...for longer than SEACO_DB_BUSY_TIMEOUT_S: a clean 503, reads still work
        refused = post(base, wav(tmp, 1, 800))
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "database_busy"
        assert refused.headers["Retry-After"] == "5"
        assert requests.get(f"{base}/api/v1/jobs", timeout=10).status_code == 200

        # ...for less: the request waits for the lock and succeeds
        before = files_under(cfg.audio_dir)
        answer: dict = {}
        upload = threading.Thread(target=lambda: answer.update(r=post(base, wav(tmp, 1, 900))))
        upload.start()
        # the file is stored just before the row is inserted: then the request waits on us
        wait_for(
            lambda: len(files_under(cfg.audio_dir) - before) >= 1,
            timeout=60,
            what="the upload to reach the database",
        )
        blocker.execute("ROLLBACK")
        upload.join(timeout=60)
    finally:
        if blocker.in_transaction:
            blocker.execute("ROLLBACK")
        blocker.close()
    assert answer["r"].status_code == 202, answer["r"].text
    wait_for(lambda: done(store, answer["r"].json()["id"]), timeout=120)
    assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert store.latest_worker()["pid"] == worker_pid  # the worker rode it out
    assert store.counts_by_state()["running"] == 0
