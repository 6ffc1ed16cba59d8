"""Telemetry: samples (NVML faked only at engine/ops/gpu.py's seam), retention and downsampling
on a real jobs.db, the /health self-probe against a real HTTP server, and a real worker
process recording both."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from engine.ops import telemetry
from tests.conftest import make_settings
from tests.ops_history import GB, fake_nvml, queue_one
from tests.procs import free_port, start, stop, wait_for

MINUTE_MS = 60_000
DAY_MS = 86_400_000


# --- sampling -------------------------------------------------------------------------------
def test_a_sample_with_a_gpu_records_the_machine_the_worker_and_each_gpu(store):
    queue_one(store)
    sampler = telemetry.Sampler(store, nvml=fake_nvml([9.5]))
    row = sampler.record(now=1_000_000)
    assert row["queue_depth"] == 1 and row["running_jobs"] == 0
    assert row["rss_bytes"] > 10 * 2**20 and 0 < row["ram_used_bytes"] <= row["ram_total_bytes"]
    assert 0 <= row["cpu_pct"] <= 100
    assert (row["vram_used_bytes"], row["vram_total_bytes"]) == (int(9.5 * GB), 12 * GB)
    (series,) = store.telemetry_series(0, 2_000_000, 60_000)
    assert series["vram_peak_bytes"] == int(9.5 * GB) and series["gpu_util_pct"] == 55
    (gpu,) = store.gpu_series(0, 2_000_000, 60_000)
    assert (gpu["name"], gpu["temperature_c"], gpu["power_w"]) == (
        "NVIDIA GeForce RTX 3060",
        63,
        150,
    )


def test_without_a_gpu_sampling_still_works_in_cpu_mode(store):
    sampler = telemetry.Sampler(store, nvml=fake_nvml(available=False))
    row = sampler.record(now=1_000_000)
    assert row["vram_used_bytes"] is None and row["gpu_util_pct"] is None
    assert row["rss_bytes"] > 0
    assert store.gpu_series(0, 2_000_000, 60_000) == []
    (series,) = store.telemetry_series(0, 2_000_000, 60_000)
    assert series["vram_used_bytes"] is None and series["rss_bytes"] == row["rss_bytes"]


# --- retention and downsampling -------------------------------------------------------------
def test_old_samples_become_minute_means_and_older_ones_go(store, settings):
    now = 100 * DAY_MS
    raw_cutoff = now - settings.telemetry_raw_days * DAY_MS  # 3 days
    keep_cutoff = now - settings.telemetry_keep_days * DAY_MS  # 30 days
    minute = raw_cutoff - 10 * MINUTE_MS  # a whole minute, old enough to fold
    samples = [
        {
            "at": minute + 10_000 * i,
            "rss_bytes": 1000 + 100 * i,
            "cpu_pct": 10.0 * i,
            "queue_depth": i,
            "vram_used_bytes": 5000 + i,
        }
        for i in range(6)
    ]
    recent = {"at": now - MINUTE_MS, "rss_bytes": 7, "cpu_pct": 1.0, "queue_depth": 0}
    ancient = {"at": keep_cutoff - DAY_MS, "rss_bytes": 1, "cpu_pct": 1.0, "queue_depth": 0}
    gpu_rows = [
        {
            "at": s["at"],
            "gpu": 0,
            "memory_used_bytes": s["vram_used_bytes"],
            "memory_total_bytes": 10_000,
        }
        for s in samples
    ]
    store.add_telemetry([*samples, recent, ancient], gpu_rows)
    store.add_probe(at=keep_cutoff - 1, healthy=True, http_status=200, status="ok", latency_ms=1)
    store.add_probe(at=now - 1, healthy=True, http_status=200, status="ok", latency_ms=1)

    result = telemetry.compact(store, settings, now=now)
    assert result == {"folded": 6, "dropped": 2}  # the ancient sample and the old probe

    rows = store.telemetry_series(0, now, 1)  # bucket of 1 ms: every stored row
    assert [r["at"] for r in rows] == [minute, recent["at"]]
    folded = rows[0]
    assert folded["samples"] == 6
    assert folded["rss_bytes"] == 1250 and folded["rss_peak_bytes"] == 1500
    assert folded["cpu_pct"] == 25 and folded["queue_depth"] == 2.5
    assert folded["vram_peak_bytes"] == 5005
    (gpu,) = store.gpu_series(0, now, 1)
    assert gpu["at"] == minute and gpu["memory_peak_bytes"] == 5005
    assert [p["at"] for p in store.probes_between(0, now)] == [now - 1]
    # a second pass folds nothing more, and a bucket mixing raw and folded rows weighs each
    # folded row by its sample count
    assert telemetry.compact(store, settings, now=now) == {"folded": 0, "dropped": 0}
    store.add_telemetry([{"at": minute + 30, "rss_bytes": 8250}])
    (mixed,) = store.telemetry_series(minute, minute + MINUTE_MS, MINUTE_MS)
    assert mixed["samples"] == 7 and mixed["rss_bytes"] == (1250 * 6 + 8250) / 7


# --- the /health self-probe -----------------------------------------------------------------
class _Health(BaseHTTPRequestHandler):
    answer: tuple[int, bytes] = (200, b"")

    def do_GET(self):  # http.server's naming
        code, body = self.server.answer  # type: ignore[attr-defined]
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args):
        pass


@pytest.fixture
def health_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _answer(server, code: int, status: str, reasons=()):
    server.answer = (code, json.dumps({"status": status, "reasons": list(reasons)}).encode())
    return f"http://127.0.0.1:{server.server_address[1]}/health"


def test_probe_outcomes(health_server, store):
    ok = telemetry.probe_health(_answer(health_server, 200, "ok"), now=5)
    assert (ok.healthy, ok.http_status, ok.status, ok.error) == (True, 200, "ok", None)
    assert ok.latency_ms is not None and ok.latency_ms >= 0
    degraded = telemetry.probe_health(
        _answer(health_server, 200, "degraded", ["worker: No live worker"])
    )
    assert not degraded.healthy and degraded.error == "worker: No live worker"
    down = telemetry.probe_health(_answer(health_server, 503, "down", ["database: unusable"]))
    assert (down.healthy, down.http_status, down.status) == (False, 503, "down")
    refused = telemetry.probe_health(f"http://127.0.0.1:{free_port()}/health")
    assert not refused.healthy and refused.http_status is None
    assert refused.error.startswith("no answer")
    for result in (ok, degraded, down, refused):
        telemetry.record_probe(store, result)
    assert [p["healthy"] for p in store.probes_between(0, 2**62)] == [1, 0, 0, 0]


def test_health_url_uses_loopback_for_a_wildcard_address(tmp_path):
    assert telemetry.health_url(make_settings(tmp_path, host="0.0.0.0", port="9000")) == (
        "http://127.0.0.1:9000/health"
    )
    assert telemetry.health_url(make_settings(tmp_path, host="::")) == "http://[::1]:7860/health"


# --- in the worker --------------------------------------------------------------------------
@pytest.mark.slow
def test_the_worker_process_samples_and_probes(tmp_path, store, settings):
    """A real worker (its models cannot load, which changes nothing here) records telemetry
    and /health probes through its scheduler; nothing listens on the port, so the probes
    are recorded as failed."""
    worker_settings = make_settings(
        settings.data_dir,
        asr_model=str(tmp_path / "missing-model"),
        device="cpu",
        telemetry_s="1",
        probe_s="1",
        port=str(free_port()),
        heartbeat_s="1",
    )
    proc = start(["worker"], worker_settings, tmp_path / "worker.log")
    try:
        wait_for(
            lambda: (
                len(store.telemetry_series(0, 2**62, 1)) >= 2 and store.probes_between(0, 2**62)
            ),
            timeout=120,
            what="telemetry samples and a probe from the worker",
        )
    finally:
        assert stop(proc) == 0, (tmp_path / "worker.log").read_text()
    sample = store.telemetry_series(0, 2**62, 1)[0]
    assert sample["rss_bytes"] > 0 and sample["ram_total_bytes"] > 0
    probe = store.probes_between(0, 2**62)[0]
    assert probe["healthy"] == 0 and probe["error"].startswith("no answer")
