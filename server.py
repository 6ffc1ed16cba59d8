"""The web process: the Streamlit dashboard plus HTTP routes on one port.

Started by `seaco serve` as `streamlit run server.py`; Streamlit finds `app` below and serves
it with uvicorn.
"""

import streamlit as st

from engine.http import routes

app = st.App("dashboard.py", routes=routes())
