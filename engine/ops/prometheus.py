"""GET /metrics in Prometheus text format, computed from the store at scrape time.

The web process holds no counters of its own (it may restart, and the worker is another
process): everything is read from jobs.db, so the numbers are the same whichever process
serves them and survive restarts.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from engine.config import Settings
from engine.ops.health import model_check, worker_check
from engine.store import Store, now_ms

LATENCY_BOUNDS_MS = [100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 120_000, 300_000]
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class StoreCollector:
    def __init__(self, store: Store, settings: Settings):
        self.store = store
        self.settings = settings

    def _histogram(self, name: str, doc: str, column: str) -> HistogramMetricFamily:
        cumulative, count, total_ms = self.store.latency_buckets(column, LATENCY_BOUNDS_MS)
        buckets = [(str(b / 1000), c) for b, c in zip(LATENCY_BOUNDS_MS, cumulative, strict=True)]
        buckets.append(("+Inf", count))
        return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=total_ms / 1000)

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily("seaco_jobs", "Jobs in the store by state.", labels=["state"])
        for state, n in self.store.counts_by_state().items():
            jobs.add_metric([state], n)
        yield jobs
        yield GaugeMetricFamily(
            "seaco_queue_depth", "Jobs waiting in the queue.", value=self.store.queue_depth()
        )
        yield GaugeMetricFamily(
            "seaco_queue_limit", "SEACO_QUEUE_MAX.", value=self.settings.queue_max
        )
        yield self._histogram(
            "seaco_queue_wait_seconds", "Submit to start, done jobs.", "queue_wait_ms"
        )
        yield self._histogram("seaco_processing_seconds", "Start to result, done jobs.", "total_ms")
        totals = self.store.processed_totals()
        yield CounterMetricFamily(
            "seaco_audio_seconds", "Audio seconds transcribed (done jobs).", value=totals["audio_s"]
        )
        rtf = totals["processing_s"] / totals["audio_s"] if totals["audio_s"] else 0.0
        yield GaugeMetricFamily(
            "seaco_real_time_factor", "Processing time / audio time over done jobs.", value=rtf
        )
        worker = self.store.latest_worker()
        up = worker_check(worker, self.settings, now_ms())["status"] == "ok"
        loaded = model_check(worker)["status"] == "ok"
        yield GaugeMetricFamily("seaco_worker_up", "1 when a worker heartbeat is fresh.", value=up)
        yield GaugeMetricFamily("seaco_model_loaded", "1 when the models are loaded.", value=loaded)
        info = (worker or {}).get("info") or {}
        if "gpu_memory_used_bytes" in info:  # written by the worker when it has a GPU
            yield GaugeMetricFamily(
                "seaco_gpu_memory_used_bytes",
                "GPU memory in use.",
                value=info["gpu_memory_used_bytes"],
            )
            yield GaugeMetricFamily(
                "seaco_gpu_memory_total_bytes",
                "GPU memory in total.",
                value=info.get("gpu_memory_total_bytes", 0),
            )


def render_metrics(store: Store, settings: Settings) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store, settings))
    return generate_latest(registry)
