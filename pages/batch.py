"""Batch: upload many files at once, follow each file live, download all results."""

import streamlit as st

from engine import audio, export, hotword_vocabulary, web_process
from engine.dashboard import formatting, jobs_page
from engine.errors import SeacoError
from engine.hotwords import default_hotwords
from engine.intake import submit_batch

st.title("Batch transcription")

settings = web_process.settings()
store = web_process.store()
batches: list[str] = st.session_state.setdefault("batches", [])

with st.form("batch", clear_on_submit=True):
    uploads = st.file_uploader(
        "Audio or video files",
        type=list(audio.SUPPORTED_EXTENSIONS),
        accept_multiple_files=True,
    )
    hotwords = st.text_input(
        "Hotwords for the whole batch (optional)",
        placeholder="科哥, Paraformer",
        help="Always added: " + (", ".join(default_hotwords(store, settings)) or "none"),
    )
    submitted = st.form_submit_button("Queue batch", type="primary")

if submitted:
    if not uploads:
        st.error("Choose one or more files first.")
    else:
        batch = submit_batch(store, settings, [(u, u.name) for u in uploads], hotwords=hotwords)
        if batch.accepted:
            batches.insert(0, batch.batch_id)
            st.success(f"Queued {len(batch.accepted)} files as batch {batch.batch_id}.")
            for warning in hotword_vocabulary.hotword_warnings(
                batch.accepted[0].hotwords, settings.asr_model
            ):
                st.warning(warning)
        for name, exc in batch.rejected:
            st.error(f"{name}: {exc}")

if not batches:
    st.info("Batches you queue in this session appear here.")
    st.stop()

batch_id = st.selectbox("Batch", batches, format_func=lambda b: f"batch {b}")


@st.fragment(run_every=1)
def show_batch(batch_id: str) -> None:
    fraction, line = formatting.batch_summary(store.batch_counts(batch_id))
    st.progress(fraction, text=line)
    jobs = store.list_jobs(batch_id=batch_id, limit=1000)
    st.dataframe(
        formatting.batch_rows(jobs),
        hide_index=True,
        width="stretch",
        column_config={"progress": st.column_config.ProgressColumn("progress", min_value=0.0)},
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


show_batch(batch_id)
