"""What the Operations and Capacity pages show, as plain values and DataFrames: the store's
history for a time window, folded through engine/dashboard/ops_aggregates.py. Pages only lay these
out; tests call the same functions. The Stability report is engine/dashboard/stability.py.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from engine.config import Settings
from engine.dashboard import ops_aggregates
from engine.store import Store, now_ms

HOUR_MS = 3_600_000
WINDOWS = {"1 h": HOUR_MS, "24 h": 24 * HOUR_MS, "72 h": 72 * HOUR_MS, "7 d": 168 * HOUR_MS}
CUSTOM = "custom"
WINDOW_CHOICES = (*WINDOWS, CUSTOM)
# Chart buckets: the smallest that keeps a window under ~400 points.
BUCKETS_MS = (
    10_000,
    60_000,
    300_000,
    900_000,
    1_800_000,
    HOUR_MS,
    3 * HOUR_MS,
    6 * HOUR_MS,
    24 * HOUR_MS,
)
MAX_POINTS = 400
OPS_EVENT_KINDS = ("maintenance.", "alert.", "callback.")
MB = 2**20


# --- the time window ------------------------------------------------------------------------
@dataclass(frozen=True)
class Window:
    start_ms: int
    end_ms: int
    label: str

    @property
    def span_ms(self) -> int:
        return self.end_ms - self.start_ms

    @property
    def hours(self) -> float:
        return self.span_ms / HOUR_MS

    @property
    def bucket_ms(self) -> int:
        return next((b for b in BUCKETS_MS if self.span_ms / b <= MAX_POINTS), BUCKETS_MS[-1])


def window(
    choice: str,
    now: int | None = None,
    days: tuple[dt.date, ...] | list[dt.date] = (),
    tz: dt.tzinfo | None = None,
) -> Window:
    """The last 1 h / 24 h / 72 h / 7 d up to `now`, or whole local days (`custom`, both
    ends inclusive, cut at `now`)."""
    now = now_ms() if now is None else now
    if choice in WINDOWS:
        return Window(now - WINDOWS[choice], now, f"last {choice}")
    if choice != CUSTOM:
        raise ValueError(f"unknown window {choice!r}; choose one of {', '.join(WINDOW_CHOICES)}")
    tz = tz or dt.timezone.utc
    if not days:
        return Window(now - WINDOWS["24 h"], now, "last 24 h")
    first, last = min(days[0], days[-1]), max(days[0], days[-1])
    start = int(dt.datetime.combine(first, dt.time(), tz).timestamp() * 1000)
    end = int(dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tz).timestamp() * 1000)
    end = min(end, now) if start < now else end
    label = first.isoformat() if first == last else f"{first.isoformat()} to {last.isoformat()}"
    return Window(start, max(end, start + 1), label)


def _times(ms: pd.Series) -> pd.Series:
    return pd.to_datetime(ms, unit="ms", utc=True)


# --- loading the window's history -----------------------------------------------------------
JOB_COLUMNS = [
    "id",
    "state",
    "priority",
    "source",
    "original_name",
    "attempts",
    "submitted_at",
    "started_at",
    "finished_at",
    "queue_wait_ms",
    "decode_ms",
    "inference_ms",
    "total_ms",
    "rtf",
    "duration_ms",
    "error",
    "error_class",
    "worker_host",
    "worker_slot",
]
TELEMETRY_COLUMNS = [
    "at",
    "samples",
    "cpu_pct",
    "ram_used_bytes",
    "ram_min_bytes",
    "ram_max_bytes",
    "ram_total_bytes",
    "rss_bytes",
    "rss_min_bytes",
    "rss_peak_bytes",
    "queue_depth",
    "queue_max",
    "running_jobs",
    "vram_used_bytes",
    "vram_min_bytes",
    "vram_peak_bytes",
    "vram_total_bytes",
    "gpu_util_pct",
]
GPU_COLUMNS = [
    "at",
    "gpu",
    "name",
    "memory_used_bytes",
    "memory_peak_bytes",
    "memory_total_bytes",
    "utilization_pct",
    "temperature_c",
    "power_w",
]
PROBE_COLUMNS = ["at", "healthy", "http_status", "status", "latency_ms", "error"]


@dataclass
class History:
    window: Window
    jobs: pd.DataFrame  # finished in the window, oldest first, with seconds columns added
    telemetry: pd.DataFrame  # bucketed
    gpus: pd.DataFrame  # bucketed, per GPU
    probes: pd.DataFrame
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def done(self) -> pd.DataFrame:
        return self.jobs[self.jobs["state"] == "done"]


TEXT_COLUMNS = {
    "state",
    "source",
    "original_name",
    "error",
    "error_class",
    "name",
    "status",
    "worker_host",
}
UNRECORDED = "(not recorded)"  # jobs finished before workers were recorded (schema 10)


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    """Rows as a DataFrame whose numeric columns are float even when empty or all NULL, so
    every later calculation works the same on an empty window."""
    frame = pd.DataFrame(rows, columns=columns)
    return frame.astype({c: "float64" for c in columns if c not in TEXT_COLUMNS})


def load_history(store: Store, win: Window) -> History:
    """Everything the operations pages need for one window, read once."""
    jobs = _frame(store.finished_jobs_between(win.start_ms, win.end_ms), JOB_COLUMNS)
    jobs["queue_wait_s"] = jobs["queue_wait_ms"] / 1000
    jobs["processing_s"] = jobs["total_ms"] / 1000
    jobs["latency_s"] = jobs["queue_wait_s"] + jobs["processing_s"]
    jobs["audio_s"] = jobs["duration_ms"] / 1000
    jobs["finished"] = _times(jobs["finished_at"])
    jobs["worker"] = worker_labels(jobs)
    telemetry = _frame(
        store.telemetry_series(win.start_ms, win.end_ms, win.bucket_ms), TELEMETRY_COLUMNS
    )
    telemetry["time"] = _times(telemetry["at"])
    gpus = _frame(store.gpu_series(win.start_ms, win.end_ms, win.bucket_ms), GPU_COLUMNS)
    gpus["time"] = _times(gpus["at"])
    probes = _frame(store.probes_between(win.start_ms, win.end_ms), PROBE_COLUMNS)
    events = store.events_between(win.start_ms, win.end_ms)
    return History(win, jobs, telemetry, gpus, probes, events)


# --- Operations -----------------------------------------------------------------------------
def headline(h: History) -> dict[str, str]:
    counts = ops_aggregates.job_counts(list(h.jobs["state"]))
    rate = throughput(h)
    p95 = ops_aggregates.percentiles(list(h.done["latency_s"]), (95,))[95]
    return {
        "Jobs done": f"{counts.done}",
        "Failed": f"{counts.failed}",
        "Success rate": format_pct(counts.success_rate),
        "p95 latency": "–" if p95 is None else f"{p95:.2f} s",
        "Throughput (audio h/h)": "–" if rate is None else f"{rate:.3f}",
    }


def latency_table(h: History) -> pd.DataFrame:
    """p50/p95/p99 and max, in seconds, of queue wait, processing and the two together."""
    rows = []
    for label, column in (
        ("queue wait", "queue_wait_s"),
        ("processing", "processing_s"),
        ("total (submit to result)", "latency_s"),
    ):
        values = list(h.done[column].dropna())
        found = ops_aggregates.percentiles(values)
        rows.append(
            {
                "measure": label,
                "jobs": len(values),
                **{f"p{q}": _round(found[q]) for q in ops_aggregates.PERCENTILES},
                "max": _round(max(values)) if values else None,
            }
        )
    return pd.DataFrame(rows)


def latency_points(h: History) -> pd.DataFrame:
    """One row per done job and part (queue wait, processing), for a stacked chart."""
    done = h.done
    frames = [
        pd.DataFrame(
            {"finished": done["finished"], "job": done["id"], "part": part, "seconds": done[column]}
        )
        for part, column in (("queue wait", "queue_wait_s"), ("processing", "processing_s"))
    ]
    return pd.concat(frames, ignore_index=True).dropna(subset=["seconds"])


def worker_labels(jobs: pd.DataFrame) -> pd.Series:
    """The worker that ran each job: its slot ("w0", "w1", ...), as "host/w0" when the
    jobs come from more than one host; UNRECORDED when not known."""
    hosts = jobs["worker_host"].dropna().unique()
    labels = []
    for host, slot in zip(jobs["worker_host"], jobs["worker_slot"], strict=True):
        if pd.isna(slot):
            labels.append(UNRECORDED)
        else:
            labels.append(f"{host}/w{int(slot)}" if len(hosts) > 1 else f"w{int(slot)}")
    return pd.Series(labels, index=jobs.index, dtype="object")


def per_worker(h: History) -> pd.DataFrame:
    """One row per worker that finished jobs in the window: jobs done and failed, busy share
    (the union of its jobs' start-to-finish spans, clipped to the window, over the window),
    throughput (audio hours of its done jobs per wall-clock hour of the window), audio hours,
    mean real-time factor and p95 processing time (s)."""
    w = h.window
    rows = []
    for name, jobs in h.jobs.groupby("worker", sort=True):
        done = jobs[jobs["state"] == "done"]
        spans = jobs.dropna(subset=["started_at", "finished_at"])
        intervals = [
            (int(a), int(b)) for a, b in zip(spans["started_at"], spans["finished_at"], strict=True)
        ]
        busy = ops_aggregates.busy_fraction(intervals, w.start_ms, w.end_ms, max(1, w.span_ms))
        rate = ops_aggregates.throughput(list(done["duration_ms"].fillna(0)), w.span_ms)
        p95 = ops_aggregates.percentiles(list(done["processing_s"].dropna()), (95,))[95]
        rows.append(
            {
                "worker": name,
                "done": len(done),
                "failed": int((jobs["state"] == "failed").sum()),
                "busy": format_pct(busy[0][1] if busy else None),
                "throughput (audio h/h)": None if rate is None else round(rate, 3),
                "audio h": round(done["duration_ms"].fillna(0).sum() / HOUR_MS, 3),
                "mean RTF": _round(done["rtf"].mean()) if done["rtf"].notna().any() else None,
                "p95 processing s": _round(p95),
            }
        )
    columns = ["worker", "done", "failed", "busy", "throughput (audio h/h)", "audio h"]
    return pd.DataFrame(rows, columns=[*columns, "mean RTF", "p95 processing s"])


def rtf_values(h: History) -> pd.DataFrame:
    return pd.DataFrame({"rtf": h.done["rtf"].dropna()})


def throughput(h: History) -> float | None:
    if not h.window.span_ms:
        return None
    return ops_aggregates.throughput(list(h.done["duration_ms"].fillna(0)), h.window.span_ms)


def throughput_series(h: History) -> pd.DataFrame:
    """Audio hours transcribed per wall-clock hour, per chart bucket."""
    b = h.window.bucket_ms
    done = h.done.assign(bucket=(h.done["finished_at"] // b) * b)
    per = done.groupby("bucket")["duration_ms"].sum() / b
    frame = pd.DataFrame({"at": per.index.astype("int64"), "audio_h_per_h": per.to_numpy()})
    frame["time"] = _times(frame["at"])
    return frame


def memory_series(h: History) -> pd.DataFrame:
    """Worker RSS, machine RAM and VRAM in MB over time (long form: time, series, MB)."""
    t = h.telemetry
    parts = []
    for name, column in (
        ("worker RSS", "rss_bytes"),
        ("VRAM, all GPUs", "vram_used_bytes"),
        ("VRAM peak", "vram_peak_bytes"),
        ("RAM, machine", "ram_used_bytes"),
    ):
        part = pd.DataFrame({"time": t["time"], "series": name, "MB": t[column] / MB})
        parts.append(part.dropna(subset=["MB"]))
    return pd.concat(parts, ignore_index=True)


def queue_series(h: History) -> pd.DataFrame:
    t = h.telemetry
    return pd.DataFrame(
        {
            "time": t["time"],
            "queued (mean)": t["queue_depth"],
            "queued (max)": t["queue_max"],
            "running": t["running_jobs"],
        }
    )


def load_series(h: History) -> pd.DataFrame:
    """CPU and GPU utilisation in % (long form)."""
    t = h.telemetry
    parts = [
        pd.DataFrame({"time": t["time"], "series": name, "percent": t[column]}).dropna()
        for name, column in (("CPU, machine", "cpu_pct"), ("GPU, mean", "gpu_util_pct"))
    ]
    return pd.concat(parts, ignore_index=True)


def errors_by_class(h: History, tz: dt.tzinfo | None = None) -> pd.DataFrame:
    """Failed jobs grouped by error class, most frequent first, with the latest message
    (times in `tz`, default UTC)."""
    failed = h.jobs[h.jobs["state"] == "failed"].sort_values("finished_at")
    rows = []
    for error_class, group in failed.groupby(failed["error_class"].fillna("(none)")):
        last = group.iloc[-1]
        rows.append(
            {
                "error class": error_class,
                "jobs": len(group),
                "latest": format_clock(last["finished_at"], tz),
                "latest job": int(last["id"]),
                "latest message": last["error"],
            }
        )
    frame = pd.DataFrame(
        rows, columns=["error class", "jobs", "latest", "latest job", "latest message"]
    )
    return frame.sort_values(["jobs", "latest"], ascending=False, ignore_index=True)


def error_events(h: History, tz: dt.tzinfo | None = None, limit: int = 20) -> pd.DataFrame:
    rows = [e for e in h.events if e["level"] == "error"][:limit]
    return _events_frame(rows, tz)


def ops_events(h: History, tz: dt.tzinfo | None = None, limit: int = 50) -> pd.DataFrame:
    """Maintenance runs and alerts in the window, newest first."""
    rows = [e for e in h.events if e["kind"].startswith(OPS_EVENT_KINDS)][:limit]
    return _events_frame(rows, tz)


def _events_frame(rows: list[dict[str, Any]], tz: dt.tzinfo | None) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "time": format_clock(e["at"], tz),
                "level": e["level"],
                "kind": e["kind"],
                "message": e["message"],
            }
            for e in rows
        ],
        columns=["time", "level", "kind", "message"],
    )


def schedule_rows(settings: Settings) -> list[dict[str, str]]:
    from engine.ops import maintenance  # the web process needs only the table, not the tasks

    rows = [
        {"task": t.title, "schedule": t.schedule, "does": t.does}
        for t in maintenance.tasks(settings)
    ]
    rows.append(
        {
            "task": "Telemetry",
            "schedule": _every(settings.telemetry_s),
            "does": f"raw {settings.telemetry_raw_days} d, 1-min means "
            f"{settings.telemetry_keep_days} d",
        }
    )
    rows.append(
        {
            "task": "/health self-probe",
            "schedule": _every(settings.probe_s),
            "does": "records availability",
        }
    )
    rows.append(
        {
            "task": "Stale-lease sweep",
            "schedule": _every(max(1, settings.lease_s // 2)),
            "does": "re-queues jobs of dead workers (job.requeued events)",
        }
    )
    return rows


def _every(seconds: int) -> str:
    return "off" if not seconds else f"every {seconds} s"


def cpu_mode_note(h: History) -> str | None:
    """Says "CPU mode" when the window has telemetry but no GPU reading in it."""
    if h.telemetry.empty or h.telemetry["vram_used_bytes"].notna().any():
        return None
    return "CPU mode: no GPU readings in this window (NVML found no GPU), so no VRAM history."


# --- Capacity -------------------------------------------------------------------------------
@dataclass
class CapacityReport:
    window: Window
    model: ops_aggregates.ServiceModel | None
    streams: ops_aggregates.Streams | None
    arrivals_per_h: float
    utilisation: float | None  # rho at that arrival rate
    queue_wait_s: float | None  # M/G/1 mean wait at that arrival rate (inf: overloaded)
    busy: pd.DataFrame  # time, series, percent


def capacity(
    store: Store,
    win: Window,
    *,
    chunk_s: float,
    target_latency_s: float,
    arrivals_per_h: float,
    h: History | None = None,
) -> CapacityReport:
    """Sustainable load from the window's done jobs (see ops_aggregates.CAPACITY_METHOD)."""
    h = h or load_history(store, win)
    done = h.done.dropna(subset=["audio_s", "processing_s"])
    model = ops_aggregates.fit_service(list(done["audio_s"]), list(done["processing_s"]))
    streams = wait = rho = None
    if model is not None:
        streams = ops_aggregates.max_streams(model, chunk_s, target_latency_s)
        rate = arrivals_per_h / 3600
        rho = ops_aggregates.utilisation(rate, model.mean_s)
        wait = ops_aggregates.pk_wait_s(rate, model.mean_s, model.second_moment_s2)
    return CapacityReport(win, model, streams, arrivals_per_h, rho, wait, busy_series(h))


def capacity_facts(report: CapacityReport) -> dict[str, str]:
    m = report.model
    if m is None:
        return {}
    facts = {
        "Sustainable load (audio h/h)": f"{m.sustainable_audio_per_hour:.2f}",
        "Measured RTF": f"{m.processing_s / m.audio_s:.3f}" if m.audio_s else "–",
        "Per-job overhead": f"{m.overhead_s:.2f} s",
        "Jobs measured": f"{m.n}",
    }
    s = report.streams
    if s is not None:
        facts["Clip sources at target"] = f"{s.streams}"
    if report.queue_wait_s is not None:
        facts["Expected queue wait"] = (
            "unbounded (overloaded)"
            if math.isinf(report.queue_wait_s)
            else f"{report.queue_wait_s:.1f} s"
        )
        facts["Utilisation"] = format_pct(report.utilisation)
    return facts


def busy_series(h: History) -> pd.DataFrame:
    """The workers' busy share (from the jobs' start and finish), CPU and GPU, in %: one
    series "worker busy" with one worker, "busy w0", "busy w1", ... with several."""
    w = h.window
    jobs = h.jobs.dropna(subset=["started_at", "finished_at"])
    groups = list(jobs.groupby("worker", sort=True)) if not jobs.empty else []
    if len(groups) <= 1:
        groups = [("", jobs)]
    parts = []
    for name, group in groups:
        intervals = [
            (int(s), int(e)) for s, e in zip(group["started_at"], group["finished_at"], strict=True)
        ]
        busy = ops_aggregates.busy_fraction(intervals, w.start_ms, w.end_ms, w.bucket_ms)
        frame = pd.DataFrame(busy, columns=["at", "fraction"])
        parts.append(
            pd.DataFrame(
                {
                    "time": _times(frame["at"]),
                    "series": f"busy {name}" if name else "worker busy",
                    "percent": frame["fraction"] * 100,
                }
            )
        )
    loads = load_series(h)
    if not loads.empty:
        parts.append(loads)
    return pd.concat(parts, ignore_index=True)


# --- formatting -----------------------------------------------------------------------------


def format_pct(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.2f} %"


def format_secs(ms: float | None) -> str:
    return "–" if ms is None or pd.isna(ms) else f"{ms / 1000:.1f} s"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def format_clock(ms: float, tz: dt.tzinfo | None = None) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz or dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
