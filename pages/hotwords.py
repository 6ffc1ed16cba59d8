"""Hotwords: the operator's default list, added to every job."""

import streamlit as st

from engine import hotword_vocabulary, web_process
from engine.dashboard import formatting
from engine.hotwords import default_hotwords, save_default_hotwords

st.title("Default hotwords")
st.markdown(
    "These words are favoured in **every** job, in addition to the hotwords given with each "
    "file. Separate them with commas or new lines. A space also separates words: the model "
    "cannot take a phrase, so write a Chinese phrase without spaces (开会, not 开 会)."
)

settings = web_process.settings()
store = web_process.store()
source = st.empty()  # filled in last, so it describes the list after a save, not before

# A stable key (not a changing `value=`) keeps the widget's identity across saves, so an
# edit made right after saving is not lost.
st.session_state.setdefault("default_hotwords_text", "\n".join(default_hotwords(store, settings)))
with st.form("hotwords"):
    text = st.text_area("Default hotwords", key="default_hotwords_text", height=200)
    saved = st.form_submit_button("Save", type="primary")

if saved:
    words = save_default_hotwords(store, text)
    st.success(f"Saved {len(words)} hotwords; the next job uses them.")
    for note in formatting.hotword_split_notes(text):
        st.info(note)

current = default_hotwords(store, settings)
source.caption(formatting.hotwords_source_line(store, settings))
for warning in hotword_vocabulary.hotword_warnings(current, settings.asr_model):
    st.warning(warning)
st.write("In force:", ", ".join(current) if current else "(none)")
