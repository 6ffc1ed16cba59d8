"""SEACO_WORKERS as /health and /metrics see it: the layout the setting gives on a machine
(its cores and GPUs), /health degraded naming the workers that are not alive, and one
/metrics series per worker with worker, host and device labels. Real store, real rows."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from engine.errors import ConfigError
from engine.ops.health import configured_workers, health
from engine.ops.prometheus import render_metrics
from engine.store import NewJob, Store, now_ms, open_store
from engine.worker.queue_worker import worker_slot
from tests.conftest import make_settings

NOW = 1_900_000_000_000


def layout(workers, device="auto", cores=2, gpus=0, ncpu="0", ram_mb=None, max_rss="8192"):
    settings = make_settings(
        Path("/nonexistent"), workers=workers, device=device, ncpu=ncpu,
        worker_max_rss_mb=max_rss,
    )  # fmt: skip
    slots = settings.worker_slots(gpu_count=gpus, cpu_count=cores, ram_mb=ram_mb)
    return [(s.name, s.device, s.threads) for s in slots]


@pytest.mark.parametrize(
    ("workers", "device", "cores", "gpus", "ncpu", "expected"),
    [
        # auto: one per visible GPU; one on a named GPU
        ("auto", "auto", 16, 4, "0", [("w0", "cuda:0", 4), ("w1", "cuda:1", 4),
                                      ("w2", "cuda:2", 4), ("w3", "cuda:3", 4)]),
        ("auto", "cuda:1", 16, 4, "0", [("w0", "cuda:1", 8)]),
        ("auto", "auto", 16, 1, "0", [("w0", "auto", 8)]),
        # auto on a CPU: one single-threaded worker per core (measured: BENCHMARKS.md), at
        # most 8; with SEACO_NCPU set, one worker of that many threads as before
        ("auto", "cpu", 2, 0, "0", [("w0", "cpu", 1), ("w1", "cpu", 1)]),
        ("auto", "auto", 2, 0, "0", [("w0", "auto", 1), ("w1", "auto", 1)]),
        ("auto", "cpu", 12, 0, "0", [(f"w{i}", "cpu", 1) for i in range(8)]),
        ("auto", "cpu", 2, 0, "2", [("w0", "cpu", 2)]),
        # a number: that many on SEACO_DEVICE, the cores shared out
        ("2", "cpu", 2, 0, "0", [("w0", "cpu", 1), ("w1", "cpu", 1)]),
        ("3", "cpu", 16, 0, "4", [("w0", "cpu", 4), ("w1", "cpu", 4), ("w2", "cpu", 4)]),
        ("1", "cpu", 2, 0, "0", [("w0", "cpu", 2)]),
        # slots, with counts and thread numbers
        ("cpu*2", "auto", 2, 0, "0", [("w0", "cpu", 1), ("w1", "cpu", 1)]),
        ("cpu/2", "auto", 2, 0, "0", [("w0", "cpu", 2)]),
        ("cuda:0, cuda:1", "auto", 8, 2, "0", [("w0", "cuda:0", 4), ("w1", "cuda:1", 4)]),
        ("cuda:0*2/3,cpu", "auto", 8, 1, "0",
         [("w0", "cuda:0", 3), ("w1", "cuda:0", 3), ("w2", "cpu", 2)]),
    ],
)  # fmt: skip
def test_the_layout_each_setting_gives(workers, device, cores, gpus, ncpu, expected):
    assert layout(workers, device, cores, gpus, ncpu) == expected


def test_auto_on_a_cpu_runs_no_more_workers_than_the_memory_holds():
    # SEACO_WORKER_MAX_RSS_MB (8192) is what one worker may grow to: 20 GB holds two, and
    # the 16 cores are shared out between them
    assert layout("auto", "cpu", 16, ram_mb=20_000) == [("w0", "cpu", 8), ("w1", "cpu", 8)]
    assert layout("auto", "cpu", 4, ram_mb=6_000) == [("w0", "cpu", 4)]  # at least one
    assert len(layout("auto", "cpu", 4, ram_mb=6_000, max_rss="0")) == 4  # no guard, no bound
    assert len(layout("cpu*4", "cpu", 4, ram_mb=6_000)) == 4  # an explicit layout is obeyed


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("gpu*2", "'gpu\\*2' in 'gpu\\*2' is not"),
        ("cpu*0", "at least 1, got 'cpu\\*0'"),
        ("cpu/0", "at least 1, got 'cpu/0'"),
        ("0", "between 1 and 64 workers"),
        ("cpu*65", "65 workers; at most 64"),
        ("cpu,,cuda", "'' in 'cpu,,cuda' is not"),
    ],
)
def test_bad_layouts_are_refused_naming_the_setting(value, message):
    with pytest.raises(ConfigError, match=f"SEACO_WORKERS.*{message}"):
        make_settings(Path("/nonexistent"), workers=value)


def test_a_worker_slot_that_does_not_exist_is_refused(tmp_path):
    settings = make_settings(tmp_path, workers="cpu*2")
    assert worker_slot(settings, 1).name == "w1"
    with pytest.raises(ConfigError, match="no worker slot 2: SEACO_WORKERS=cpu\\*2 gives 2"):
        worker_slot(settings, 2)


def live_worker(store: Store, slot: int, *, at: int = NOW, pid: int | None = None, **info):
    worker_id = f"box-w{slot}-{pid or 100 + slot}-abc"
    store.register_worker(
        worker_id, pid or 100 + slot, "box", slot=slot, device="cpu", threads=1, now=at
    )
    store.heartbeat(
        worker_id, state="ready", lease_s=60, model_loaded=True, now=at,
        info={"device": "cpu", "pid": pid or 100 + slot, "rss_mb": 500.0 + slot, **info},
    )  # fmt: skip
    return worker_id


@pytest.fixture
def two(tmp_path):
    settings = make_settings(tmp_path / "data", workers="cpu*2", heartbeat_s="5")
    settings.ensure_dirs()
    store = open_store(settings.db_path)
    yield settings, store
    store.close()


def test_both_workers_alive_is_ok(two):
    settings, store = two
    assert [s.name for s in configured_workers(settings)] == ["w0", "w1"]
    live_worker(store, 0)
    live_worker(store, 1)
    report = health(store, settings, now=NOW + 1000)
    assert report["status"] == "ok", report
    check = report["checks"]["worker"]
    assert check["detail"] == "2 workers alive: w0 ready, w1 ready."
    assert (check["alive"], check["configured"]) == (2, 2)
    assert [(w["worker"], w["device"], w["pid"]) for w in check["workers"]] == [
        ("w0", "cpu", 100),
        ("w1", "cpu", 101),
    ]


def test_one_stale_worker_makes_health_degraded_naming_it(two):
    settings, store = two
    live_worker(store, 0, at=NOW + 60_000)
    live_worker(store, 1, at=NOW)  # its last heartbeat a minute ago: past 3 x 5 + 5 s
    report = health(store, settings, now=NOW + 60_000)
    assert report["status"] == "degraded"
    detail = report["checks"]["worker"]["detail"]
    assert detail == (
        "1 of 2 workers alive; not alive: w1 (cpu): last heartbeat 60 s ago (state ready)."
    )
    assert report["reasons"] == [f"worker: {detail}"]
    assert report["checks"]["model"]["status"] == "ok"  # the live one has its models


def test_a_worker_that_never_started_and_a_stopped_one_are_named(two):
    settings, store = two
    live_worker(store, 0)
    report = health(store, settings, now=NOW)
    assert report["checks"]["worker"]["detail"] == (
        "1 of 2 workers alive; not alive: w1 (cpu) has not started."
    )
    old = live_worker(store, 1, at=NOW - 1000, pid=555)
    store.abandon_jobs_of([old])  # what the supervisor records when the process exits
    report = health(store, settings, now=NOW)
    assert (
        "not alive: w1 (cpu): last heartbeat 1 s ago (state stopped)"
        in (report["checks"]["worker"]["detail"])
    )
    live_worker(store, 1, at=NOW, pid=556)  # restarted: the newest row of the slot counts
    assert health(store, settings, now=NOW)["status"] == "ok"


def test_a_model_error_names_its_worker(two):
    settings, store = two
    live_worker(store, 0)
    store.register_worker("box-w1-7-x", 7, "box", slot=1, device="cpu", threads=1, now=NOW)
    store.heartbeat(
        "box-w1-7-x", state="model_error", lease_s=60, model_loaded=False, now=NOW,
        model_error="ASR model directory /m lacks model.pt",
    )  # fmt: skip
    model = health(store, settings, now=NOW)["checks"]["model"]
    assert model == {
        "status": "degraded",
        "detail": "Models could not be loaded (w1): ASR model directory /m lacks model.pt",
    }


def test_no_live_worker_at_all(two):
    settings, store = two
    live_worker(store, 0, at=NOW)
    live_worker(store, 1, at=NOW)
    detail = health(store, settings, now=NOW + 3_600_000)["checks"]["worker"]["detail"]
    assert detail.startswith("No live worker: w0 (cpu): last heartbeat 3600 s ago")
    assert "w1 (cpu): last heartbeat 3600 s ago" in detail


def test_metrics_have_one_series_per_worker_with_its_labels(two):
    settings, store = two
    w0, w1 = live_worker(store, 0, at=now_ms()), live_worker(store, 1, at=now_ms())
    for n, owner in enumerate([w0, w1, w1]):
        store.submit(
            NewJob(audio_sha256=f"{n:064x}", audio_path=f"a/{n}", audio_bytes=1,
                   original_name="a.wav", duration_ms=2000),
            queue_max=100, max_attempts=3,
        )  # fmt: skip
        job = store.claim(owner, 60)
        assert job is not None
        if n == 2:
            store.fail(job.id, owner, 1, "bad", "CorruptAudioError")
    # (the first two stay running: only finished jobs count, and this one failed)
    families = {
        f.name: f for f in text_string_to_metric_families(render_metrics(store, settings).decode())
    }
    up = {s.labels["worker"]: (s.value, s.labels) for s in families["seaco_worker_up"].samples}
    assert set(up) == {"w0", "w1"}
    assert all(v == 1 for v, _ in up.values())
    assert up["w1"][1] == {"worker": "w1", "host": "box", "device": "cpu"}
    rss = {s.labels["worker"]: s.value for s in families["seaco_worker_rss_bytes"].samples}
    assert rss == {"w0": 500 * 2**20, "w1": 501 * 2**20}
    jobs = [
        (s.labels["worker"], s.labels["state"], s.value)
        for s in families["seaco_worker_jobs"].samples
        if s.name == "seaco_worker_jobs_total"
    ]
    assert jobs == [("w1", "failed", 1)]
    assert families["seaco_workers_configured"].samples[0].value == 2
    assert families["seaco_workers_alive"].samples[0].value == 2
    busy = {s.labels["worker"]: s.value for s in families["seaco_worker_busy"].samples}
    assert busy == {"w0": 0, "w1": 0}  # their heartbeats named no job
