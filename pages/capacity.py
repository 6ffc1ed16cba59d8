"""Capacity: from measured processing times, the load one worker sustains, how many sources
sending a short clip at a steady pace it answers within a target latency, and the queue wait
at an arrival rate."""

import streamlit as st

from engine import web_process
from engine.dashboard import jobs_page, operations_view, ops_aggregates, ops_charts, widgets

store = web_process.store()
tz = jobs_page.zone(st.context.timezone)

st.title("Capacity")
win = widgets.time_window(
    "capacity",
    default="7 d",
    tz=tz,
    label="Measured over",
    since_ms=widgets.service_start_ms(store),
)

left, middle, right = st.columns(3)
target = left.number_input("Target latency per clip (s)", min_value=0.1, value=5.0, step=0.5)
chunk = middle.number_input("Clip length (s)", min_value=0.5, value=10.0, step=1.0)
rate = right.number_input("Arrival rate (jobs per hour)", min_value=0.0, value=60.0, step=10.0)

report = operations_view.capacity(
    store, win, chunk_s=chunk, target_latency_s=target, arrivals_per_h=rate
)
if report.model is None:
    st.info("No job finished in this window: nothing measured yet.")
else:
    facts = operations_view.capacity_facts(report)
    for row in (list(facts.items())[:4], list(facts.items())[4:]):
        for column, (label, value) in zip(st.columns(4), row, strict=False):
            column.metric(label, value)
    if report.streams is not None:
        st.write(ops_aggregates.clip_sources_sentence(report.streams, chunk, target))

st.subheader("Utilisation over time")
st.altair_chart(
    ops_charts.lines(report.busy, "percent", "%", window=widgets.window_bounds(win)),
    width="stretch",
)
with st.expander("Method"):
    st.markdown(ops_aggregates.CAPACITY_METHOD)
