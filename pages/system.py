"""System: health checks, the worker, the loaded models and the settings in force."""

import streamlit as st

from engine import service, ui
from engine.config import SETTINGS_DOC
from engine.health import health

st.title("System")

settings = service.settings()
store = service.store()
report = health(store, settings)

st.subheader(f"Health: {report['status']}")
st.dataframe(
    [
        {"check": name, "status": c["status"], "detail": c["detail"]}
        for name, c in report["checks"].items()
    ],
    hide_index=True,
    width="stretch",
)
if "could not be loaded" in report["checks"].get("model", {}).get("detail", ""):
    st.markdown(ui.model_fix_hint())

worker = store.latest_worker()
st.subheader("Worker")
if worker is None:
    st.info("No worker has started yet.")
else:
    st.json({k: v for k, v in worker.items() if k != "info"}, expanded=False)
    if worker["info"]:
        st.markdown("**Models and device**")
        st.json(worker["info"], expanded=True)

st.subheader("Jobs")
st.json(store.counts_by_state())

st.subheader("Settings")
st.dataframe(
    [
        {
            "setting": f"SEACO_{name}",
            "value": settings.display_value(name),
            "from": settings.sources.get(name, "default"),
            "meaning": doc,
        }
        for name, (_default, doc) in SETTINGS_DOC.items()
    ],
    hide_index=True,
    width="stretch",
)
