"""GET /metrics in Prometheus text format, computed from the store at scrape time.

The web process holds no counters of its own (it may restart, and the workers are other
processes): everything is read from jobs.db, so the numbers are the same whichever process
serves them and survive restarts. Per-worker series carry the labels `worker` (the slot of
SEACO_WORKERS: w0, w1, ...), `host` and `device`.
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
from engine.ops.health import WorkerState, model_check, worker_check, worker_states
from engine.store import Store, now_ms

LATENCY_BOUNDS_MS = [100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 120_000, 300_000]
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
WORKER_LABELS = ["worker", "host", "device"]


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
        states = worker_states(self.store.workers(), self.settings, now_ms())
        yield from self._workers(states)
        loaded = model_check(states)["status"] == "ok"
        yield GaugeMetricFamily("seaco_model_loaded", "1 when the models are loaded.", value=loaded)
        yield from self._jobs_by_worker(states)
        latest = max(
            (w for w in states if w.row is not None),
            key=lambda w: w.fields["heartbeat_at"],
            default=None,
        )
        info = (latest.fields.get("info") or {}) if latest else {}
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

    def _workers(self, states: list[WorkerState]) -> Iterator[Metric]:
        """Per worker: up, models loaded, busy, heartbeat age, RSS; and the totals."""
        families = {
            "up": GaugeMetricFamily(
                "seaco_worker_up", "1 when the worker's heartbeat is fresh.", labels=WORKER_LABELS
            ),
            "loaded": GaugeMetricFamily(
                "seaco_worker_model_loaded",
                "1 when the worker has its models loaded.",
                labels=WORKER_LABELS,
            ),
            "busy": GaugeMetricFamily(
                "seaco_worker_busy", "1 while the worker holds a job.", labels=WORKER_LABELS
            ),
            "age": GaugeMetricFamily(
                "seaco_worker_heartbeat_age_seconds",
                "Seconds since the worker's last heartbeat.",
                labels=WORKER_LABELS,
            ),
            "rss": GaugeMetricFamily(
                "seaco_worker_rss_bytes",
                "The worker process's resident memory at its last heartbeat.",
                labels=WORKER_LABELS,
            ),
        }
        for w in states:
            labels = self._labels(w)
            families["up"].add_metric(labels, float(w.alive))
            families["loaded"].add_metric(
                labels, float(w.alive and bool(w.fields.get("model_loaded")))
            )
            families["busy"].add_metric(
                labels, float(w.alive and w.fields.get("current_job_id") is not None)
            )
            if w.heartbeat_age_s is not None:
                families["age"].add_metric(labels, w.heartbeat_age_s)
            rss = (w.fields.get("info") or {}).get("rss_mb")
            if rss is not None:
                families["rss"].add_metric(labels, float(rss) * 2**20)
        yield from families.values()
        check = worker_check(states)
        yield GaugeMetricFamily(
            "seaco_workers_configured",
            "Worker processes SEACO_WORKERS asks for.",
            value=check.get("configured", 0),
        )
        yield GaugeMetricFamily(
            "seaco_workers_alive", "Workers with a fresh heartbeat.", value=check.get("alive", 0)
        )

    def _labels(self, w: WorkerState) -> list[str]:
        return [w.name, w.host or "", w.device]

    def _jobs_by_worker(self, states: list[WorkerState]) -> Iterator[Metric]:
        """Jobs each worker finished (done or failed) and the audio seconds of its done
        jobs, from the jobs table (so restarts lose nothing). Jobs finished before workers
        were recorded are left out."""
        jobs = CounterMetricFamily(
            "seaco_worker_jobs",
            "Jobs finished by each worker, by final state.",
            labels=[*WORKER_LABELS, "state"],
        )
        audio = CounterMetricFamily(
            "seaco_worker_audio_seconds",
            "Audio seconds transcribed by each worker (done jobs).",
            labels=WORKER_LABELS,
        )
        devices = {w.slot.index: w.device for w in states}
        for row in self.store.jobs_by_worker():
            slot = row["worker_slot"]
            if slot is None:
                continue
            labels = [f"w{slot}", row["worker_host"] or "", devices.get(slot, "")]
            jobs.add_metric([*labels, row["state"]], row["jobs"])
            if row["state"] == "done":
                audio.add_metric(labels, row["audio_ms"] / 1000)
        yield jobs
        yield audio


def render_metrics(store: Store, settings: Settings) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store, settings))
    return generate_latest(registry)
