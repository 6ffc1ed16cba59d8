"""Operations: per-job latency, percentiles, real-time factor, throughput, memory, queue,
load, errors, and the maintenance runs and alerts, for a chosen window."""

import streamlit as st

from engine import jobs_view, opscharts, opsview, service, widgets

settings = service.settings()
store = service.store()
tz = jobs_view.zone(st.context.timezone)

st.title("Operations")
win = widgets.time_window("ops", default="24 h", tz=tz)
history = opsview.load_history(store, win)

for column, (label, value) in zip(st.columns(5), opsview.headline(history).items(), strict=True):
    column.metric(label, value)
if note := opsview.cpu_mode_note(history):
    st.info(note)

st.subheader("Latency")
if history.done.empty:
    st.info("No job finished in this window.")
else:
    st.altair_chart(opscharts.latency(opsview.latency_points(history)), width="stretch")
    st.dataframe(opsview.latency_table(history), hide_index=True, width="stretch")
    left, right = st.columns(2)
    left.markdown("**Real-time factor** (processing time / audio length)")
    left.altair_chart(opscharts.rtf_histogram(opsview.rtf_values(history)), width="stretch")
    right.markdown("**Throughput** (audio hours per wall-clock hour)")
    right.altair_chart(opscharts.throughput(opsview.throughput_series(history)), width="stretch")

st.subheader("Memory, queue and load")
if history.telemetry.empty:
    st.info("No telemetry in this window (the worker samples every SEACO_TELEMETRY_S seconds).")
else:
    st.altair_chart(opscharts.lines(opsview.memory_series(history), "MB", "MB"), width="stretch")
    left, right = st.columns(2)
    left.markdown("**Queue depth**")
    left.altair_chart(opscharts.queue(opsview.queue_series(history)), width="stretch")
    right.markdown("**CPU and GPU utilisation**")
    right.altair_chart(
        opscharts.lines(opsview.load_series(history), "percent", "%"), width="stretch"
    )

st.subheader("Errors")
errors = opsview.errors_by_class(history, tz)
if errors.empty:
    st.info("No job failed in this window.")
else:
    st.altair_chart(opscharts.errors(errors), width="stretch")
    st.dataframe(errors, hide_index=True, width="stretch")
error_events = opsview.error_events(history, tz)
if not error_events.empty:
    st.markdown("**Error events**")
    st.dataframe(error_events, hide_index=True, width="stretch")

st.subheader("Maintenance and alerts")
st.dataframe(opsview.schedule_rows(settings), hide_index=True, width="stretch")
runs = opsview.ops_events(history, tz)
if runs.empty:
    st.info("No maintenance run or alert in this window.")
else:
    st.dataframe(runs, hide_index=True, width="stretch")
