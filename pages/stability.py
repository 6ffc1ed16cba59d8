"""Stability: the article's 72-hour table (availability, job success, memory trends with a
leak verdict, error log lines, worst delays) for any window, its incidents, and downloads."""

import streamlit as st

from engine import web_process
from engine.dashboard import jobs_page, stability, widgets

settings = web_process.settings()
store = web_process.store()
tz = jobs_page.zone(st.context.timezone)

st.title("Stability")
win = widgets.time_window("stability", default="72 h", tz=tz)
report = stability.stability(store, settings, win, tz=tz)

st.table(report.rows)  # every row and its whole detail, no scrolling

if len(report.workers) > 1:
    st.subheader("Workers")
    st.dataframe(stability.worker_table(report), hide_index=True, width="stretch")

st.subheader("Incidents")
if report.incidents:
    st.dataframe(
        [
            {"time": jobs_page.format_time(i["time"], tz), "kind": i["kind"], "detail": i["detail"]}
            for i in report.incidents
        ],
        hide_index=True,
        width="stretch",
    )
else:
    st.info("No incident in this window.")

with st.expander("How each number is computed"):
    for method in report.methods:
        st.markdown(f"- {method}")

left, right = st.columns(2)
name = f"stability-{win.label.replace(' ', '-')}"
left.download_button(
    "Download Markdown", stability.stability_markdown(report, tz), f"{name}.md", "text/markdown"
)
right.download_button(
    "Download CSV", stability.stability_csv(report, tz), f"{name}.csv", "text/csv"
)
