"""Transcribe: upload one file, optional hotwords, follow it to its transcript. The job is
in the address (`/?job=12`), so a reload or a shared link shows it again."""

import streamlit as st

from engine import audio, hotword_vocabulary, web_process
from engine.dashboard import formatting, jobs_page, system_info, widgets
from engine.errors import JobNotFoundError, SeacoError
from engine.hotwords import default_hotwords
from engine.intake import submit_upload
from engine.jobs import Job

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
    upload = widgets.file_uploader("Audio or video file", settings, audio.SUPPORTED_EXTENSIONS)
    hotwords = st.text_input(
        "Hotwords (optional)",
        placeholder="科哥, Paraformer",
        help="Words to favour, separated by commas or spaces (a space splits a phrase). "
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
            st.query_params.from_dict(jobs_page.link_params(job.id))
            for note in formatting.hotword_split_notes(hotwords):
                st.info(note)
            for warning in hotword_vocabulary.hotword_warnings(job.hotwords, settings.asr_model):
                st.warning(warning)


def show_job(job_id: int) -> None:
    """The job's heading (a link to its page on the Jobs page), status, and once done its
    transcript; redrawn every second until the job is final."""
    try:
        job = store.get(job_id)
    except JobNotFoundError as exc:
        st.error(f"{exc} It may have been deleted.")
        return
    widgets.live_fragment(not job.state.is_final, follow_job)(job)


def follow_job(first: Job) -> None:
    try:
        job = store.get(first.id) if not first.state.is_final else first
    except JobNotFoundError as exc:
        st.error(f"{exc} It was deleted.")
        return
    if job.state.is_final and not first.state.is_final:
        st.rerun()  # finished: draw the result once, without the timer
    st.subheader(formatting.job_heading(job))
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


# The address names the job; without one (the sidebar's link drops it) this session's last
# job is shown again and written back into the address.
link = jobs_page.read_link(st.query_params)
if link.problem:
    st.warning(link.problem)
shown = link.job_id if link.job_id is not None else st.session_state.get("transcribe_job")
if shown is not None:
    if link.job_id is None:
        st.query_params.from_dict(jobs_page.link_params(shown))
    st.session_state["transcribe_job"] = shown
    show_job(shown)
