"""System: device and GPUs, the models actually loaded, the worker, queue, database and disk,
package versions, health checks and the settings in force."""

import streamlit as st

from engine import web_process
from engine.dashboard import formatting, system_info

st.title("System")

settings = web_process.settings()
store = web_process.store()


@st.fragment(run_every=5)
def live_overview() -> None:
    gpus = system_info.read_gpus()
    facts = system_info.overview(store, settings, gpus)
    items = list(facts.items())
    for row in (items[:4], items[4:]):
        for column, (label, value) in zip(st.columns(4), row, strict=False):
            column.metric(label, value)
    st.subheader("GPU")
    if gpus.cpu_mode:
        st.info(gpus.summary())
    else:
        st.caption(f"Driver {gpus.driver_version} · CUDA {gpus.cuda_version}")
        st.dataframe(system_info.gpu_rows(gpus), hide_index=True, width="stretch")

    report = system_info.service_health(store, settings)
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
        st.markdown(formatting.model_fix_hint())


live_overview()

worker = system_info.worker_view(store)
st.subheader("Models")
models = system_info.model_rows(worker)
if not models:
    st.info("The worker has not loaded the models yet.")
else:
    st.dataframe(models, hide_index=True, width="stretch")
    if any(row["random weights"] != "no" for row in models):
        st.warning("Random-weight test models are loaded: transcripts are meaningless.")

workers = system_info.worker_rows(store, settings)
st.subheader("Workers" if len(workers) > 1 else "Worker")
if worker is None:
    st.info("No worker has started yet.")
else:
    if len(workers) > 1:
        st.caption("One process per slot of SEACO_WORKERS, each with its own models.")
        st.dataframe(workers, hide_index=True, width="stretch")
    else:
        st.write(
            f"pid {worker.pid} on {worker.hostname} · {worker.jobs_done} jobs done, "
            f"{worker.jobs_failed} failed since it started"
        )
    if worker.model_error:
        st.error(worker.model_error)
    with st.expander("Everything the worker reports"):
        st.json(worker.info)

st.subheader("Jobs by state")
st.dataframe([store.counts_by_state()], hide_index=True)

st.subheader("Versions")
st.dataframe([system_info.package_versions()], hide_index=True)

st.subheader("Settings")
st.dataframe(system_info.settings_rows(settings), hide_index=True, width="stretch")
