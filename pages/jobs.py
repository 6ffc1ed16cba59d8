"""jobs page (being written)."""

import streamlit as st

st.title("Jobs")
