"""Altair charts for the operations pages, built from engine/dashboard/operations_view.py's
DataFrames (so a page only places them). Times are UTC in the data; Vega-Lite shows them in
the viewer's local time, always on a 24-hour clock, with ticks chosen for the span shown
(`time_ticks`): every 15 minutes over an hour, every 3 hours over a day, every 12 hours over
three days, every day over a week."""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import pandas as pd

HEIGHT = 220
BAR_STEP = 28  # pixels per bar of the errors chart
MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

# d3 time formats picked by the finest unit a tick falls on (Vega's multi-format): 24-hour
# times, and the date alone at midnight, so a tick never reads as an ambiguous "03:00" hour
# of the wrong day and never needs AM/PM.
TIME_LABELS = {
    "year": "%Y",
    "quarter": "%Y-%m",
    "month": "%Y-%m",
    "week": "%m-%d",
    "date": "%m-%d",
    "hours": "%H:%M",
    "minutes": "%H:%M",
    "seconds": "%H:%M:%S",
    "milliseconds": "%H:%M:%S.%L",
}
TOOLTIP_TIME = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class TimeTicks:
    """About `count` ticks: Vega then puts one every `every` (the nice interval nearest to
    span / count: 1, 5, 15 or 30 minutes, 1, 3, 6 or 12 hours, 1 or 2 days, a week...), on
    round local times. An explicit interval ({"interval": "hour", "step": 3}) would say it
    directly, but Streamlit's Vega build fails to draw a chart given one."""

    count: int
    every: str  # what Vega makes of `count` for the window it was chosen for


# (the longest span each applies to, in ms; its ticks), shortest first
_TICKS = (
    (2 * HOUR_MS, TimeTicks(4, "15 minutes")),  # 1 h
    (6 * HOUR_MS, TimeTicks(6, "1 hour")),
    (36 * HOUR_MS, TimeTicks(8, "3 hours")),  # 24 h
    (4 * DAY_MS, TimeTicks(6, "12 hours")),  # 72 h
    (10 * DAY_MS, TimeTicks(7, "1 day")),  # 7 d
)


def time_ticks(span_ms: float) -> TimeTicks:
    """Ticks for a time axis covering `span_ms`: 1 h -> every 15 min, 24 h -> every 3 h,
    72 h -> every 12 h, 7 d -> every day; longer spans about 8 ticks a week or more apart."""
    for longest, ticks in _TICKS:
        if span_ms <= longest:
            return ticks
    return TimeTicks(8, "1 week or more")


def _span_ms(times: pd.Series) -> float:
    """The span a time column covers, in ms (0 for fewer than two distinct times)."""
    clean = pd.to_datetime(times.dropna(), utc=True)
    if clean.empty:
        return 0.0
    return (clean.max() - clean.min()).total_seconds() * 1000


def _iso(epoch_ms: int) -> str:
    """An instant as Vega-Lite reads a temporal domain bound (plain numbers leave the chart
    blank)."""
    return pd.Timestamp(int(epoch_ms), unit="ms", tz="UTC").isoformat()


def time_axis(
    field: str, title: str, span_ms: float, domain_ms: tuple[int, int] | None = None
) -> alt.X:
    """The x encoding of a time chart: 24-hour labels, ticks for `span_ms` (see
    `time_ticks`), and with `domain_ms` (epoch ms, start and end) the axis spans exactly that
    window whatever part of it has data."""
    ticks = time_ticks(span_ms)
    scale = (
        alt.Scale(domain=[_iso(domain_ms[0]), _iso(domain_ms[1])])
        if domain_ms is not None
        else alt.Undefined
    )
    return alt.X(
        f"{field}:T",
        title=title,
        scale=scale,
        axis=alt.Axis(format=TIME_LABELS, tickCount=ticks.count, labelOverlap=True),
    )


def _axis_for(frame: pd.DataFrame, field: str, title: str, window: tuple[int, int] | None) -> alt.X:
    span = (window[1] - window[0]) if window is not None else _span_ms(frame[field])
    return time_axis(field, title, span, window)


def _when(field: str, title: str | None = None) -> alt.Tooltip:
    return alt.Tooltip(f"{field}:T", format=TOOLTIP_TIME, title=title or field)


def latency(points: pd.DataFrame, window: tuple[int, int] | None = None) -> alt.Chart:
    """Per-job latency split into queue wait and processing, stacked, by finish time.
    `window` (epoch ms start, end) fixes the time axis to the page's window."""
    return (
        alt.Chart(points, height=HEIGHT)
        .mark_bar(clip=True)
        .encode(
            x=_axis_for(points, "finished", "finished", window),
            y=alt.Y("seconds:Q", stack="zero", title="seconds"),
            color=alt.Color("part:N", sort=["queue wait", "processing"], title=None),
            order=alt.Order("part:N", sort="descending"),
            tooltip=["job:Q", "part:N", alt.Tooltip("seconds:Q", format=".2f"), _when("finished")],
        )
    )


def rtf_histogram(values: pd.DataFrame) -> alt.Chart:
    return (
        alt.Chart(values, height=HEIGHT)
        .mark_bar()
        .encode(
            x=alt.X("rtf:Q", bin=alt.Bin(maxbins=40), title="real-time factor"),
            y=alt.Y("count():Q", title="jobs", axis=alt.Axis(tickMinStep=1, format="d")),
        )
    )


def lines(
    frame: pd.DataFrame,
    value: str,
    title: str,
    series: str = "series",
    window: tuple[int, int] | None = None,
) -> alt.Chart:
    """A line per series over time (long-form frame: time, `series`, `value`)."""
    return (
        alt.Chart(frame, height=HEIGHT)
        .mark_line(point=False, interpolate="step-after", clip=True)
        .encode(
            x=_axis_for(frame, "time", "time", window),
            y=alt.Y(f"{value}:Q", title=title),
            color=alt.Color(f"{series}:N", title=None),
            tooltip=[_when("time"), f"{series}:N", alt.Tooltip(f"{value}:Q", format=",.2f")],
        )
    )


def throughput(frame: pd.DataFrame, window: tuple[int, int] | None = None) -> alt.Chart:
    return (
        alt.Chart(frame, height=HEIGHT)
        .mark_bar(clip=True)
        .encode(
            x=_axis_for(frame, "time", "time", window),
            y=alt.Y("audio_h_per_h:Q", title="audio hours per hour"),
            tooltip=[_when("time"), alt.Tooltip("audio_h_per_h:Q", format=".3f")],
        )
    )


def queue(frame: pd.DataFrame, window: tuple[int, int] | None = None) -> alt.Chart:
    long = frame.melt(id_vars=["time"], var_name="series", value_name="jobs").dropna()
    return lines(long, "jobs", "jobs", window=window)


def errors(frame: pd.DataFrame) -> alt.Chart:
    """Failed jobs per error class (columns "error class", "jobs", "latest message"): one
    horizontal bar per class, most frequent on top, on a whole-number axis. The chart's
    height is a step per class: a fixed height too small for the classes squeezed the bars
    to nothing."""
    return (
        alt.Chart(frame, height=alt.Step(BAR_STEP))
        .mark_bar()
        .encode(
            x=alt.X(
                "jobs:Q",
                title="failed jobs",
                scale=alt.Scale(domainMin=0),
                axis=alt.Axis(tickMinStep=1, format="d"),
            ),
            y=alt.Y("error class:N", sort="-x", title=None),
            tooltip=["error class:N", "jobs:Q", "latest message:N"],
        )
    )
