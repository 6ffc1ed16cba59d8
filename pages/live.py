"""Live: record from the microphone, then transcribe the recording at live priority (not
streaming: the transcript comes once the whole recording is done)."""

import streamlit as st

from engine import web_process
from engine.dashboard import formatting
from engine.errors import SeacoError
from engine.intake import submit_upload
from engine.jobs import PRIORITY_LIVE

st.title("Live recording: record, then transcribe")
st.caption(
    "This is not streaming: record, stop, then press Transcribe recording; the transcript "
    "appears once the whole recording is recognised. Recordings jump ahead of batch work in "
    "the queue, so a short clip is not stuck behind a long backlog."
)

settings = web_process.settings()
store = web_process.store()
recordings: list[int] = st.session_state.setdefault("recordings", [])

recording = st.audio_input("Record", sample_rate=16000)
hotwords = st.text_input("Hotwords (optional)", placeholder="科哥, Paraformer", key="live-hw")
if st.button("Transcribe recording", type="primary", disabled=recording is None):
    try:
        job = submit_upload(
            store,
            settings,
            recording,
            f"recording-{len(recordings) + 1}.wav",
            hotwords=hotwords,
            priority=PRIORITY_LIVE,
            source="live",
        )
    except SeacoError as exc:
        st.error(str(exc))
    else:
        recordings.insert(0, job.id)
        for note in formatting.hotword_split_notes(hotwords):
            st.info(note)


@st.fragment(run_every=1)
def show_recordings() -> None:
    for job_id in recordings:
        job = store.get(job_id)
        with st.container(border=True):
            st.markdown(f"{formatting.job_heading(job)} · {formatting.job_status_line(job, None)}")
            if job.state.value == "done":
                st.write(job.text or "(no speech found)")
                st.caption(" · ".join(f"{k}: {v}" for k, v in formatting.job_metrics(job).items()))


if recordings:
    show_recordings()
else:
    st.info("Your recordings in this session and their transcripts appear here.")
