"""Streamlit entry script: navigation plus the sidebar every page shares."""

import streamlit as st

from engine import web_process
from engine.dashboard import system_info, widgets

st.set_page_config(page_title="SeACo ASR", page_icon="🎙️", layout="wide")

page = st.navigation(
    [
        st.Page("pages/transcribe.py", title="Transcribe", icon="🎙️", default=True),
        st.Page("pages/batch.py", title="Batch", icon="🗂️"),
        st.Page("pages/live.py", title="Live", icon="🔴"),
        st.Page("pages/jobs.py", title="Jobs", icon="🔎"),
        st.Page("pages/hotwords.py", title="Hotwords", icon="🏷️"),
        st.Page("pages/operations.py", title="Operations", icon="📈"),
        st.Page("pages/stability.py", title="Stability", icon="🩺"),
        st.Page("pages/capacity.py", title="Capacity", icon="🧮"),
        st.Page("pages/system.py", title="System", icon="🖥️"),
    ]
)


@st.fragment(run_every=5)
def sidebar_status() -> None:
    report = system_info.service_health(web_process.store(), web_process.settings())
    badge = {"ok": "🟢", "degraded": "🟠", "down": "🔴"}[report["status"]]
    st.markdown(f"**Health:** {badge} {report['status']}")
    checks = report["checks"]
    if "queue" in checks:
        st.markdown(f"**Queue:** {checks['queue']['detail']}")
    if "worker" in checks:
        st.markdown(f"**Worker:** {checks['worker']['detail']}")
    for reason in report["reasons"]:
        st.caption(reason)
    if checks.get("model", {}).get("random_weights"):
        st.warning("Random-weight test models are loaded: transcripts are meaningless.")


with st.sidebar:
    sidebar_status()
    widgets.api_docs_link()

page.run()
