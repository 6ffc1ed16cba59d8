"""Every view shows workers one by one: the System, Operations and Stability pages' engine
functions, and the pages themselves through AppTest, over a real jobs.db holding a day of
two workers (SEACO_WORKERS=cpu*2): w0 ran all day; w1 was killed after 6 hours and ran again
from half an hour later. Known answers: w0 did 6 jobs, w1 4; w1 was up 23.5 of 24 hours."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine import web_process
from engine.dashboard import operations_view, stability, system_info
from engine.jobs import Sentence
from engine.store import JobResult, NewJob, Store, now_ms, open_store
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[2]
HOUR = 3_600_000
MINUTE = 60_000


def finish_job(store: Store, owner: str, at: int, processing_ms: int, audio_ms: int) -> int:
    job = store.submit(
        NewJob(audio_sha256=f"{at:064x}", audio_path=f"audio/{at}", audio_bytes=1000,
               original_name="call.wav", duration_ms=audio_ms),
        queue_max=10**6, max_attempts=3, now=at,
    )  # fmt: skip
    claimed = store.claim(owner, 3600, now=at + 100)
    assert claimed is not None and claimed.id == job.id
    result = JobResult(
        text="好。", raw_text="好", confidence=0.9, sentences=[Sentence("好。", 0, 500)],
        effective_hotwords=[], duration_ms=audio_ms, decode_ms=10,
        inference_ms=processing_ms - 10, model_info={},
    )  # fmt: skip
    assert store.complete(job.id, owner, 1, result, now=at + 100 + processing_ms)
    return job.id


def process(store: Store, slot: int, pid: int, started: int, last_heartbeat: int) -> str:
    """A worker process of `slot` from `started` to its last heartbeat, with its start event."""
    worker_id = f"box-w{slot}-{pid}-abcdef"
    store.register_worker(worker_id, pid, "box", slot=slot, device="cpu", threads=1, now=started)
    data = {"worker": f"w{slot}", "slot": slot, "host": "box", "device": "cpu", "pid": pid}
    store.add_event("worker.start", f"Worker w{slot} started.", data=data, now=started)
    store.heartbeat(
        worker_id, state="ready", lease_s=60, model_loaded=True, now=last_heartbeat,
        info={"device": "cpu", "pid": pid, "rss_mb": 900.0 + slot, "models": {}},
    )  # fmt: skip
    return worker_id


def two_workers_day(store: Store, end: int) -> None:
    start = end - 24 * HOUR
    w0 = process(store, 0, 100, start, end)
    process(store, 1, 200, start, start + 6 * HOUR)  # killed: no heartbeat after 6 h
    store.add_event(
        "worker.exit", "The worker w1 (pid 200) exited with code -9; a new one is being started.",
        level="error", now=start + 6 * HOUR,
        data={"worker": "w1", "slot": 1, "host": "box", "device": "cpu", "pid": 200, "code": -9},
    )  # fmt: skip
    w1 = process(store, 1, 201, start + 6 * HOUR + 30 * MINUTE, end)
    for i in range(6):  # w0: one 60 s job (120 s of audio) an hour, from hour 1
        finish_job(store, w0, start + (i + 1) * HOUR, 60_000, 120_000)
    for i in range(4):  # w1 (its second process): one 30 s job (60 s of audio) an hour
        finish_job(store, w1, start + (i + 8) * HOUR, 30_000, 60_000)


@pytest.fixture
def day(tmp_path):
    settings = make_settings(tmp_path / "data", workers="cpu*2")
    settings.ensure_dirs()
    store = open_store(settings.db_path)
    end = now_ms()
    two_workers_day(store, end)
    yield settings, store, end
    store.close()


def test_operations_per_worker_busy_share_and_throughput(day):
    _settings, store, end = day
    h = operations_view.load_history(store, operations_view.window("24 h", now=end))
    table = operations_view.per_worker(h).set_index("worker")
    assert list(table.index) == ["w0", "w1"]
    assert (table.loc["w0", "done"], table.loc["w1", "done"]) == (6, 4)
    assert table.loc["w0", "busy"] == f"{6 * 60 / (24 * 3600) * 100:.2f} %"  # 6 x 60 s of 24 h
    assert table.loc["w1", "busy"] == f"{4 * 30 / (24 * 3600) * 100:.2f} %"
    assert table.loc["w0", "throughput (audio h/h)"] == round(6 * 120 / (24 * 3600), 3)
    assert table.loc["w1", "audio h"] == round(4 * 60 / 3600, 3)
    assert table.loc["w1", "mean RTF"] == pytest.approx(30.0 / 60, abs=0.01)
    busy = operations_view.busy_series(h)
    assert {"busy w0", "busy w1"} <= set(busy["series"])


def test_stability_availability_and_restarts_per_worker(day):
    settings, store, end = day
    report = stability.stability(store, settings, operations_view.window("24 h", now=end))
    by_worker = {w.worker: w for w in report.workers}
    assert set(by_worker) == {"w0", "w1"}
    w0, w1 = by_worker["w0"], by_worker["w1"]
    assert w0.availability == pytest.approx(1.0)
    assert w1.availability == pytest.approx(23.5 / 24, abs=1e-4)
    assert (w0.starts, w0.crashes) == (1, 0)
    assert (w1.starts, w1.crashes, w1.recycles) == (2, 1, 0)
    rows = {r["metric"]: r for r in report.rows}
    assert rows["Worker w1 availability"]["value"] == f"{23.5 / 24 * 100:.2f} %"
    assert rows["Worker w1 availability"]["detail"] == (
        "cpu: running 23.50 h of 24.00 h; 2 start(s), 1 crash(es), 0 recycle(s)"
    )
    assert any(i["kind"] == "worker.exit" and "w1" in i["detail"] for i in report.incidents)
    table = stability.worker_table(report)
    assert [(t["worker"], t["availability"], t["crashes"]) for t in table] == [
        ("w0", "100.00 %", 0),
        ("w1", f"{23.5 / 24 * 100:.2f} %", 1),
    ]


def test_system_info_has_a_row_per_worker(day):
    settings, store, end = day
    rows = system_info.worker_rows(store, settings, now=end + 2000)
    assert [(r["worker"], r["device"], r["threads"], r["alive"], r["pid"]) for r in rows] == [
        ("w0", "cpu", 1, "yes", 100),
        ("w1", "cpu", 1, "yes", 201),  # the newest process of the slot
    ]
    assert rows[1]["heartbeat"] == "2 s ago" and rows[1]["RSS"] == "901.0 MB"


@pytest.fixture
def two_worker_pages(tmp_path, monkeypatch):
    """The web process's settings with SEACO_WORKERS=cpu*2 and a data dir holding the day."""
    monkeypatch.setenv("SEACO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SEACO_WORKERS", "cpu*2")
    web_process.settings.cache_clear()
    two_workers_day(web_process.store(), now_ms())
    yield
    web_process.settings.cache_clear()


def page(path: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=60)
    at.switch_page(path)
    return at.run()


def test_system_page_shows_each_worker(two_worker_pages):
    at = page("pages/system.py")
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Workers"] == "2 of 2 alive"
    assert any(h.value == "Workers" for h in at.subheader)
    workers = next(d.value for d in at.dataframe if "worker" in d.value.columns)
    assert list(workers["worker"]) == ["w0", "w1"] and list(workers["pid"]) == [100, 201]


def test_operations_page_shows_each_worker(two_worker_pages):
    at = page("pages/operations.py")
    assert not at.exception, at.exception
    workers = next(d.value for d in at.dataframe if "worker" in d.value.columns)
    assert list(workers["worker"]) == ["w0", "w1"] and list(workers["done"]) == [6, 4]


def test_stability_page_shows_each_worker(two_worker_pages):
    at = page("pages/stability.py")
    assert not at.exception, at.exception
    metrics = set(at.table[0].value["metric"])
    assert {"Worker w0 availability", "Worker w1 availability"} <= metrics
    workers = next(d.value for d in at.dataframe if "crashes" in d.value.columns)
    assert list(workers["worker"]) == ["w0", "w1"] and list(workers["crashes"]) == [0, 1]
