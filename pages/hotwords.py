"""Hotwords: the operator's default list, added to every job."""

import streamlit as st

from engine import hotword_vocabulary, web_process
from engine.hotwords import DEFAULT_HOTWORDS_KEY, default_hotwords, save_default_hotwords

st.title("Default hotwords")
st.markdown(
    "These words are favoured in **every** job, in addition to the hotwords given with each "
    "file. Separate them with commas, spaces or new lines. A hotword cannot contain a space."
)

settings = web_process.settings()
store = web_process.store()
current = default_hotwords(store, settings)
edited = store.get_setting(DEFAULT_HOTWORDS_KEY) is not None
st.caption(
    "Edited here; applies to the next job."
    if edited
    else f"From SEACO_HOTWORDS ({settings.hotwords or 'empty'}) until edited here."
)

# A stable key (not a changing `value=`) keeps the widget's identity across saves, so an
# edit made right after saving is not lost.
st.session_state.setdefault("default_hotwords_text", "\n".join(current))
with st.form("hotwords"):
    text = st.text_area("Default hotwords", key="default_hotwords_text", height=200)
    saved = st.form_submit_button("Save", type="primary")

if saved:
    current = save_default_hotwords(store, text)
    st.success(f"Saved {len(current)} hotwords; the next job uses them.")

for warning in hotword_vocabulary.hotword_warnings(current, settings.asr_model):
    st.warning(warning)
st.write("In force:", ", ".join(current) if current else "(none)")
