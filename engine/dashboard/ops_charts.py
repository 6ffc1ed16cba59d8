"""Altair charts for the operations pages, built from engine/opsview.py's DataFrames (so a
page only places them). Times are UTC in the data; Vega-Lite shows them in the viewer's
local time."""

from __future__ import annotations

import altair as alt
import pandas as pd

HEIGHT = 220


def _time_axis(title: str = "time") -> alt.X:
    return alt.X("time:T", title=title)


def latency(points: pd.DataFrame) -> alt.Chart:
    """Per-job latency split into queue wait and processing, stacked, by finish time."""
    return (
        alt.Chart(points, height=HEIGHT)
        .mark_bar()
        .encode(
            x=alt.X("finished:T", title="finished"),
            y=alt.Y("seconds:Q", stack="zero", title="seconds"),
            color=alt.Color("part:N", sort=["queue wait", "processing"], title=None),
            order=alt.Order("part:N", sort="descending"),
            tooltip=["job:Q", "part:N", alt.Tooltip("seconds:Q", format=".2f"), "finished:T"],
        )
    )


def rtf_histogram(values: pd.DataFrame) -> alt.Chart:
    return (
        alt.Chart(values, height=HEIGHT)
        .mark_bar()
        .encode(
            x=alt.X("rtf:Q", bin=alt.Bin(maxbins=40), title="real-time factor"),
            y=alt.Y("count():Q", title="jobs"),
        )
    )


def lines(frame: pd.DataFrame, value: str, title: str, series: str = "series") -> alt.Chart:
    """A line per series over time (long-form frame: time, `series`, `value`)."""
    return (
        alt.Chart(frame, height=HEIGHT)
        .mark_line(point=False, interpolate="step-after")
        .encode(
            x=_time_axis(),
            y=alt.Y(f"{value}:Q", title=title),
            color=alt.Color(f"{series}:N", title=None),
            tooltip=["time:T", f"{series}:N", alt.Tooltip(f"{value}:Q", format=",.2f")],
        )
    )


def throughput(frame: pd.DataFrame) -> alt.Chart:
    return (
        alt.Chart(frame, height=HEIGHT)
        .mark_bar()
        .encode(
            x=_time_axis(),
            y=alt.Y("audio_h_per_h:Q", title="audio hours per hour"),
            tooltip=["time:T", alt.Tooltip("audio_h_per_h:Q", format=".3f")],
        )
    )


def queue(frame: pd.DataFrame) -> alt.Chart:
    long = frame.melt(id_vars=["time"], var_name="series", value_name="jobs").dropna()
    return lines(long, "jobs", "jobs")


def errors(frame: pd.DataFrame) -> alt.Chart:
    return (
        alt.Chart(frame, height=30 + 28 * len(frame))  # a bar per class, not one giant bar
        .mark_bar()
        .encode(
            x=alt.X("jobs:Q", title="failed jobs"),
            y=alt.Y("error class:N", sort="-x", title=None),
            tooltip=["error class:N", "jobs:Q", "latest message:N"],
        )
    )
