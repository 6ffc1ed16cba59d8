"""The Stability page: the article's 72-hour table (availability, job success, memory
trends with a leak verdict, error log lines, worst delays) for any window, the incidents
behind it, and the same as Markdown and CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from typing import Any

import pandas as pd

from engine.config import Settings
from engine.dashboard import ops_aggregates
from engine.dashboard.operations_view import (
    MB,
    History,
    Window,
    format_clock,
    format_pct,
    format_secs,
    load_history,
    throughput,
)
from engine.ops import app_log
from engine.store import Store, now_ms

INCIDENT_EVENT_KINDS = (
    "alert.",
    "job.poison",
    "job.requeued",
    "worker.recycle",
    "worker.exit",
    "model.error",
)


@dataclass
class StabilityReport:
    window: Window
    rows: list[dict[str, str]]  # metric, value, detail
    incidents: list[dict[str, Any]]  # time (epoch ms), kind, detail
    trends: dict[str, ops_aggregates.Trend]
    availability: ops_aggregates.Availability
    methods: list[str]
    workers: list[WorkerStability]


@dataclass(frozen=True)
class WorkerStability:
    """One worker (slot of SEACO_WORKERS) over a window: the share of the window, from its
    first recorded start, during which a process of it was running (start to last
    heartbeat), and its process starts, crashes (non-zero exits) and recycles."""

    worker: str  # "w0", or "host/w0" when workers of several hosts are recorded
    device: str
    up_ms: int
    span_ms: int  # the window from the worker's first recorded start on
    starts: int
    crashes: int
    recycles: int

    @property
    def availability(self) -> float | None:
        return self.up_ms / self.span_ms if self.span_ms > 0 else None


def worker_stability(store: Store, h: History, now: int | None = None) -> list[WorkerStability]:
    """Per worker slot, from the store's worker rows (one per process start, kept a week:
    WORKER_ROWS_KEPT_MS) and the window's worker.start / worker.exit / worker.recycle events
    (which name their slot; older events without one count for w0, the only worker then)."""
    w = h.window
    end = min(w.end_ms, now_ms() if now is None else now)
    rows = store.workers()
    hosts = {r["hostname"] for r in rows}
    grouped: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault((row["hostname"], int(row.get("slot") or 0)), []).append(row)
    counts: dict[tuple[str, int], dict[str, int]] = {}
    kinds = {"worker.start": "starts", "worker.exit": "crashes", "worker.recycle": "recycles"}
    for event in h.events:
        if event["kind"] in kinds:
            data = event.get("data") or {}
            key = (data.get("host") or "", int(data.get("slot") or 0))
            tally = counts.setdefault(key, {"starts": 0, "crashes": 0, "recycles": 0})
            tally[kinds[event["kind"]]] += 1
    out = []
    for (host, slot), procs in sorted(grouped.items()):
        first = min(r["started_at"] for r in procs)
        intervals = [(int(r["started_at"]), int(r["heartbeat_at"])) for r in procs]
        span_start = max(w.start_ms, first)
        up = ops_aggregates.busy_fraction(intervals, span_start, end, max(1, end - span_start))
        span = max(0, end - span_start)
        tally = counts.get((host, slot)) or counts.get(("", slot)) or {}
        newest = max(procs, key=lambda r: r["started_at"])
        info = newest.get("info") or {}
        out.append(
            WorkerStability(
                worker=f"{host}/w{slot}" if len(hosts) > 1 else f"w{slot}",
                device=str(info.get("device") or newest.get("device") or "?"),
                up_ms=round(up[0][1] * span) if up and span else 0,
                span_ms=span,
                starts=tally.get("starts", 0),
                crashes=tally.get("crashes", 0),
                recycles=tally.get("recycles", 0),
            )
        )
    return out


def stability(
    store: Store,
    settings: Settings,
    win: Window,
    h: History | None = None,
    tz: dt.tzinfo | None = None,
) -> StabilityReport:
    """The article's 72-hour table for any window, with its incidents."""
    h = h or load_history(store, win)
    probes = h.probes
    avail = ops_aggregates.availability(
        [bool(x) for x in probes["healthy"]],
        [None if pd.isna(x) else int(x) for x in probes["http_status"]],
    )
    counts = ops_aggregates.job_counts(list(h.jobs["state"]))
    t = h.telemetry
    times = list(t["at"].astype("int64"))
    trends = {
        "VRAM": ops_aggregates.memory_trend(times, _values(t["vram_used_bytes"])),
        "worker RSS": ops_aggregates.memory_trend(times, _values(t["rss_bytes"])),
        "RAM, machine": ops_aggregates.memory_trend(times, _values(t["ram_used_bytes"])),
    }
    peaks = {
        "VRAM": (t["vram_min_bytes"].min(), t["vram_peak_bytes"].max()),
        "worker RSS": (t["rss_min_bytes"].min(), t["rss_peak_bytes"].max()),
        "RAM, machine": (t["ram_min_bytes"].min(), t["ram_max_bytes"].max()),
    }
    errors = app_log.error_lines(settings.log_dir, win.start_ms, win.end_ms, tz)
    done = h.done
    worst_wait = (
        done.loc[done["queue_wait_ms"].idxmax()] if done["queue_wait_ms"].notna().any() else None
    )
    slowest = done.loc[done["total_ms"].idxmax()] if done["total_ms"].notna().any() else None
    restarts = sum(1 for e in h.events if e["kind"] == "worker.start")
    alerts = sum(1 for e in h.events if e["kind"].startswith("alert."))
    rate = throughput(h)
    p95 = ops_aggregates.percentiles(list(done["latency_s"].dropna()), (95,))[95]
    rows = [
        _row(
            "Availability",
            format_pct(avail.share),
            f"{avail.healthy} of {avail.probes} /health probes healthy (HTTP 200, status ok); "
            f"{format_pct(avail.answered_share)} answered HTTP 200",
        ),
        _row(
            "Job success rate",
            format_pct(counts.success_rate),
            f"{counts.done} done, {counts.failed} failed, {counts.cancelled} cancelled",
        ),
    ]
    for name, trend in trends.items():
        low, high = peaks[name]
        rows.append(
            _row(
                f"{name} min / max",
                "–" if pd.isna(high) else f"{_mb(low)} / {_mb(high)}",
                "peak of the samples" if name != "RAM, machine" else "memory in use on the machine",
            )
        )
        if name == "VRAM" and not trend.n:
            rows.append(_row("VRAM trend", "CPU mode", "no GPU readings in this window"))
            continue
        rows.append(_row(f"{name} trend", trend.verdict, trend.describe()))
    workers = worker_stability(store, h)
    for ws in workers:
        rows.append(
            _row(
                f"Worker {ws.worker} availability",
                format_pct(ws.availability),
                f"{ws.device}: running {_hours(ws.up_ms)} of {_hours(ws.span_ms)}; "
                f"{ws.starts} start(s), {ws.crashes} crash(es), {ws.recycles} recycle(s)",
            )
        )
    rows += [
        _row(
            "Error log lines",
            f"{errors.count}",
            "ERROR/CRITICAL lines in app.log and its rotated days",
        ),
        _row(
            "Worst queue delay",
            "–" if worst_wait is None else format_secs(worst_wait["queue_wait_ms"]),
            "" if worst_wait is None else f"job {int(worst_wait['id'])}",
        ),
        _row(
            "Slowest job",
            "–" if slowest is None else format_secs(slowest["total_ms"]),
            ""
            if slowest is None
            else f"job {int(slowest['id'])}: {format_secs(slowest['duration_ms'])} of audio",
        ),
        _row("p95 latency", "–" if p95 is None else f"{p95:.2f} s", "submit to result, done jobs"),
        _row(
            "Throughput", "–" if rate is None else f"{rate:.3f}", "audio hours per wall-clock hour"
        ),
        _row("Worker starts", f"{restarts}", "worker.start events (restarts and recycles)"),
        _row("Alerts", f"{alerts}", "alert.* events"),
    ]
    incidents = _incidents(store, settings, h)
    methods = [
        "Availability: share of /health self-probes (every SEACO_PROBE_S) that answered HTTP "
        "200 with status ok. Stretches without probes (no worker running) are listed as "
        "incidents, not counted.",
        "Job success rate: done / (done + failed) among jobs finished in the window.",
        "Worker availability (one row per worker, w0, w1, ...): the share of the window, from "
        "the worker's first recorded start on, during which a process of it ran (from its start "
        "to its last heartbeat; worker rows are kept a week). Time the whole service was "
        "stopped counts against every worker alike; starts, crashes (non-zero exits) and "
        "recycles are its worker.start, worker.exit and worker.recycle events.",
        "Memory trend: " + ops_aggregates.LEAK_METHOD,
        "Outliers: real-time factor above Tukey's far-out fence "
        f"(Q3 + {ops_aggregates.OUTLIER_IQR:g} x IQR).",
    ]
    return StabilityReport(win, rows, incidents, trends, avail, methods, workers)


def _incidents(store: Store, settings: Settings, h: History) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    p = h.probes
    for spell in ops_aggregates.unhealthy_spells(
        list(p["at"].astype("int64")), [bool(x) for x in p["healthy"]], list(p["error"])
    ):
        out.append(
            _incident(
                spell.start_ms,
                "unhealthy",
                f"{spell.count} probe(s) in a row over {_span(spell.start_ms, spell.end_ms)}: "
                f"{spell.detail}",
            )
        )
    first_probe = store.first_probe_at()
    if settings.probe_s and first_probe is not None and first_probe < h.window.end_ms:
        start = max(h.window.start_ms, first_probe)
        end = min(h.window.end_ms, now_ms())
        for gap in ops_aggregates.probe_gaps(
            [int(x) for x in p["at"] if x >= start], settings.probe_s * 1000, start, end
        ):
            minutes = (gap.end_ms - gap.start_ms) / 60_000
            out.append(
                _incident(
                    gap.start_ms,
                    "no probes",
                    f"{minutes:.0f} min without a /health probe (worker not running?)",
                )
            )
    jobs = h.jobs
    for _, job in jobs[jobs["state"] == "failed"].iterrows():
        out.append(
            _incident(
                job["finished_at"],
                "job failed",
                f"job {int(job['id'])} ({job['error_class']}): {job['error']}",
            )
        )
    done = h.done
    if done["queue_wait_ms"].notna().any():
        job = done.loc[done["queue_wait_ms"].idxmax()]
        out.append(
            _incident(
                job["started_at"],
                "worst queue delay",
                f"job {int(job['id'])} waited {format_secs(job['queue_wait_ms'])}",
            )
        )
    if done["total_ms"].notna().any():
        job = done.loc[done["total_ms"].idxmax()]
        out.append(
            _incident(
                job["finished_at"],
                "slowest job",
                f"job {int(job['id'])} took {format_secs(job['total_ms'])} for "
                f"{format_secs(job['duration_ms'])} of audio",
            )
        )
    fence = ops_aggregates.far_out(list(done["rtf"].dropna()))
    if fence is not None:
        for _, job in done[done["rtf"] > fence].iterrows():
            out.append(
                _incident(
                    job["finished_at"],
                    "outlier",
                    f"job {int(job['id'])}: real-time factor {job['rtf']:.3f} "
                    f"(far-out fence {fence:.3f}), {format_secs(job['total_ms'])}",
                )
            )
    for event in h.events:
        if event["kind"].startswith(INCIDENT_EVENT_KINDS):
            out.append(_incident(event["at"], event["kind"], event["message"]))
    out.sort(key=lambda i: i["time"])
    return out


def stability_markdown(report: StabilityReport, tz: dt.tzinfo | None = None) -> str:
    """The report as a Markdown document (the Download button's file)."""
    w = report.window
    lines = [
        f"# Stability report: {w.label}",
        "",
        f"{format_clock(w.start_ms, tz)} to {format_clock(w.end_ms, tz)} ({w.hours:.1f} h)",
        "",
        "| metric | value | detail |",
        "|---|---|---|",
        *(f"| {_md(r['metric'])} | {_md(r['value'])} | {_md(r['detail'])} |" for r in report.rows),
        "",
        "## Incidents",
        "",
    ]
    if report.incidents:
        lines += ["| time | kind | detail |", "|---|---|---|"]
        lines += [
            f"| {format_clock(i['time'], tz)} | {_md(i['kind'])} | {_md(i['detail'])} |"
            for i in report.incidents
        ]
    else:
        lines.append("None.")
    lines += ["", "## Methods", "", *(f"- {m}" for m in report.methods), ""]
    return "\n".join(lines)


def stability_csv(report: StabilityReport, tz: dt.tzinfo | None = None) -> str:
    """The report as CSV: the table's rows (section "metric"), then the incidents."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["section", "time or metric", "value or kind", "detail"])
    for r in report.rows:
        writer.writerow(["metric", r["metric"], r["value"], r["detail"]])
    for i in report.incidents:
        writer.writerow(["incident", format_clock(i["time"], tz), i["kind"], i["detail"]])
    return out.getvalue()


# --- formatting -----------------------------------------------------------------------------
def _values(series: pd.Series) -> list[float | None]:
    return [None if pd.isna(v) else float(v) for v in series]


def _row(metric: str, value: str, detail: str) -> dict[str, str]:
    return {"metric": metric, "value": value, "detail": detail}


def _incident(at: Any, kind: str, detail: str) -> dict[str, Any]:
    return {"time": int(at), "kind": kind, "detail": detail}


def _mb(value: float | None) -> str:
    return "–" if value is None or pd.isna(value) else f"{value / MB:,.0f} MB"


def _hours(ms: float) -> str:
    return f"{ms / 3_600_000:.2f} h"


def worker_table(report: StabilityReport) -> list[dict[str, Any]]:
    """The per-worker rows for the page: availability, running time, starts, crashes,
    recycles."""
    return [
        {
            "worker": ws.worker,
            "device": ws.device,
            "availability": format_pct(ws.availability),
            "running": _hours(ws.up_ms),
            "of": _hours(ws.span_ms),
            "starts": ws.starts,
            "crashes": ws.crashes,
            "recycles": ws.recycles,
        }
        for ws in report.workers
    ]


def _span(start_ms: float, end_ms: float) -> str:
    seconds = (end_ms - start_ms) / 1000
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
