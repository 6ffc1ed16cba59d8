"""Transcribe: upload one file, optional hotwords, follow it to its transcript."""

import streamlit as st

from engine import audio, hotword_vocabulary, web_process
from engine.dashboard import formatting, system_info
from engine.errors import SeacoError
from engine.hotwords import default_hotwords
from engine.intake import submit_upload

st.title("Transcribe a file")

settings = web_process.settings()
store = web_process.store()
report = system_info.service_health(store, settings)
if report["checks"].get("model", {}).get("status") != "ok":
    st.warning(report["checks"].get("model", {}).get("detail", "Models are not loaded."))
    if "could not be loaded" in report["checks"]["model"]["detail"]:
        with st.expander("How to fix this"):
            st.markdown(formatting.model_fix_hint())

with st.form("upload", clear_on_submit=False):
    upload = st.file_uploader(
        "Audio or video file", type=[ext.lstrip(".") for ext in audio.SUPPORTED_EXTENSIONS]
    )
    hotwords = st.text_input(
        "Hotwords (optional)",
        placeholder="科哥, Paraformer",
        help="Words to favour, separated by commas or spaces. "
        "Always added: "
        + (", ".join(default_hotwords(store, settings)) or "none")
        + " (Hotwords page).",
    )
    submitted = st.form_submit_button("Transcribe", type="primary")

if submitted:
    if upload is None:
        st.error("Choose a file first.")
    else:
        try:
            job = submit_upload(store, settings, upload, upload.name, hotwords=hotwords)
        except SeacoError as exc:
            st.error(str(exc))
        else:
            st.session_state["transcribe_job"] = job.id
            for warning in hotword_vocabulary.hotword_warnings(job.hotwords, settings.asr_model):
                st.warning(warning)


@st.fragment(run_every=1)
def show_job(job_id: int) -> None:
    job = store.get(job_id)
    st.subheader(f"Job {job.id}: {job.original_name}")
    line = formatting.job_status_line(job, store.queue_position(job.id))
    if job.state.value == "failed":
        st.error(line)
    elif job.state.is_final:
        st.success(line)
    else:
        st.info(line)
    if job.state.value != "done":
        return
    st.markdown("**Transcript**")
    st.text_area("Transcript", job.text or "(no speech found)", label_visibility="collapsed")
    columns = st.columns(5)
    for column, (label, value) in zip(columns, formatting.job_metrics(job).items(), strict=True):
        column.metric(label, value)
    if job.effective_hotwords:
        st.caption("Hotwords used: " + ", ".join(job.effective_hotwords))
    if job.sentences:
        st.markdown("**Sentences**")
        st.dataframe(formatting.sentence_rows(job), hide_index=True, width="stretch")


if "transcribe_job" in st.session_state:
    show_job(st.session_state["transcribe_job"])
