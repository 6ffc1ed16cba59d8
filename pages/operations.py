"""Operations: per-job latency, percentiles, real-time factor, throughput, memory, queue,
load, errors, and the maintenance runs and alerts, for a chosen window."""

import streamlit as st

from engine import web_process
from engine.dashboard import jobs_page, operations_view, ops_charts, widgets

settings = web_process.settings()
store = web_process.store()
tz = jobs_page.zone(st.context.timezone)

st.title("Operations")
win = widgets.time_window("ops", default="24 h", tz=tz)
bounds = widgets.window_bounds(win)  # the charts' time axes span the chosen window
history = operations_view.load_history(store, win)

for column, (label, value) in zip(
    st.columns(5), operations_view.headline(history).items(), strict=True
):
    column.metric(label, value)
if note := operations_view.cpu_mode_note(history):
    st.info(note)

workers = operations_view.per_worker(history)
if len(workers) > 1:
    st.subheader("Workers")
    st.caption(
        "Per worker (slot of SEACO_WORKERS): busy share of the window, throughput in audio "
        "hours per wall-clock hour, and the jobs it finished."
    )
    st.dataframe(workers, hide_index=True, width="stretch")

st.subheader("Latency")
if history.done.empty:
    st.info("No job finished in this window.")
else:
    st.altair_chart(
        ops_charts.latency(operations_view.latency_points(history), bounds), width="stretch"
    )
    st.dataframe(operations_view.latency_table(history), hide_index=True, width="stretch")
    left, right = st.columns(2)
    left.markdown("**Real-time factor** (processing time / audio length)")
    left.altair_chart(
        ops_charts.rtf_histogram(operations_view.rtf_values(history)), width="stretch"
    )
    right.markdown("**Throughput** (audio hours per wall-clock hour)")
    right.altair_chart(
        ops_charts.throughput(operations_view.throughput_series(history), bounds), width="stretch"
    )

st.subheader("Memory, queue and load")
if history.telemetry.empty:
    st.info("No telemetry in this window (the worker samples every SEACO_TELEMETRY_S seconds).")
else:
    st.altair_chart(
        ops_charts.lines(operations_view.memory_series(history), "MB", "MB", window=bounds),
        width="stretch",
    )
    left, right = st.columns(2)
    left.markdown("**Queue depth**")
    left.altair_chart(
        ops_charts.queue(operations_view.queue_series(history), bounds), width="stretch"
    )
    right.markdown("**CPU and GPU utilisation**")
    right.altair_chart(
        ops_charts.lines(operations_view.load_series(history), "percent", "%", window=bounds),
        width="stretch",
    )

st.subheader("Errors")
errors = operations_view.errors_by_class(history, tz)
if errors.empty:
    st.info("No job failed in this window.")
else:
    st.altair_chart(ops_charts.errors(errors), width="stretch")
    st.dataframe(errors, hide_index=True, width="stretch")
error_events = operations_view.error_events(history, tz)
if not error_events.empty:
    st.markdown("**Error events**")
    st.dataframe(error_events, hide_index=True, width="stretch")

st.subheader("Maintenance and alerts")
st.dataframe(operations_view.schedule_rows(settings), hide_index=True, width="stretch")
runs = operations_view.ops_events(history, tz)
if runs.empty:
    st.info("No maintenance run or alert in this window.")
else:
    st.dataframe(runs, hide_index=True, width="stretch")
