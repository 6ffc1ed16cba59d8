"""live page (being written)."""

import streamlit as st

st.title("Live")
