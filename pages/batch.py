"""Batch: upload many files at once, follow each file live, download all results. The batch
is in the address (`/batch?batch=3f2a...`), so a reload or a shared link shows it again."""

import streamlit as st

from engine import audio, export, hotword_vocabulary, web_process
from engine.dashboard import formatting, jobs_page, widgets
from engine.errors import SeacoError
from engine.hotwords import default_hotwords
from engine.intake import submit_batch

st.title("Batch transcription")

settings = web_process.settings()
store = web_process.store()
batches: list[str] = st.session_state.setdefault("batches", [])
link = jobs_page.read_batch_link(st.query_params)
if link.problem:
    st.warning(link.problem)
if link.batch_id and link.batch_id not in batches:
    batches.insert(0, link.batch_id)  # opened from a link: listed with this session's own

with st.form("batch", clear_on_submit=True):
    uploads = widgets.file_uploader(
        "Audio or video files", settings, audio.SUPPORTED_EXTENSIONS, accept_multiple_files=True
    )
    hotwords = st.text_input(
        "Hotwords for the whole batch (optional)",
        placeholder="科哥, Paraformer",
        help="Separated by commas or spaces (a space splits a phrase). Always added: "
        + (", ".join(default_hotwords(store, settings)) or "none"),
    )
    submitted = st.form_submit_button("Queue batch", type="primary")

if submitted:
    if not uploads:
        st.error("Choose one or more files first.")
    else:
        batch = submit_batch(store, settings, [(u, u.name) for u in uploads], hotwords=hotwords)
        if batch.accepted:
            batches.insert(0, batch.batch_id)
            st.query_params.from_dict({"batch": batch.batch_id})
            st.success(f"Queued {len(batch.accepted)} files as batch {batch.batch_id}.")
            for note in formatting.hotword_split_notes(hotwords):
                st.info(note)
            for warning in hotword_vocabulary.hotword_warnings(
                batch.accepted[0].hotwords, settings.asr_model
            ):
                st.warning(warning)
        for name, exc in batch.rejected:
            st.error(f"{name}: {exc}")

if not batches:
    st.info("Batches you queue in this session, or open by their link, appear here.")
    st.stop()

# The address names the batch shown (a link, a reload, the batch just queued); without one
# (the sidebar's link drops it) the session's choice is shown and written into the address.
wanted = jobs_page.read_batch_link(st.query_params).batch_id
if wanted in batches:
    st.session_state["batch_choice"] = wanted


def show_in_address() -> None:
    st.query_params.from_dict({"batch": st.session_state["batch_choice"]})


batch_id = st.selectbox(
    "Batch",
    batches,
    key="batch_choice",
    on_change=show_in_address,
    format_func=lambda b: f"batch {b}",
)
if wanted != batch_id:
    st.query_params.from_dict({"batch": batch_id})


def show_batch(batch_id: str, was_active: bool) -> None:
    counts = store.batch_counts(batch_id)
    if not sum(counts.values()):
        st.warning(f"There is no batch {batch_id} (or all its jobs were deleted).")
        return
    active = formatting.batch_unfinished(counts)
    if was_active and not active:
        st.rerun()  # finished: draw once more, without the timer
    fraction, line = formatting.batch_summary(counts)
    st.progress(fraction, text=line)
    jobs = store.list_jobs(batch_id=batch_id, limit=1000)
    st.dataframe(
        formatting.batch_rows(jobs),
        hide_index=True,
        width="stretch",
        placeholder=jobs_page.MISSING,
        column_config=widgets.batch_columns(),
    )
    done = [j for j in jobs if j.state.value == "done"]
    if not done:
        return
    fmt = st.selectbox("Format", list(export.FORMATS), key=f"fmt-{batch_id}")
    try:
        # list_jobs leaves sentences out; subtitles need them
        data = export.export_many(jobs_page.jobs_with_sentences(store, [j.id for j in done]), fmt)
    except SeacoError as exc:
        st.error(str(exc))
        return
    st.download_button(
        f"Download {len(done)} results (.zip)",
        data=data,
        file_name=f"batch-{batch_id}-{fmt}.zip",
        mime="application/zip",
    )


unfinished = formatting.batch_unfinished(store.batch_counts(batch_id))
widgets.live_fragment(unfinished, show_batch)(batch_id, unfinished)
