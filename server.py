"""The web process: the Streamlit dashboard plus HTTP routes on one port.

Started by `seaco serve` as `streamlit run server.py`; Streamlit finds `app` below and serves
it with uvicorn.
"""

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from engine.lifeline import die_with_supervisor
from engine.web.app import routes

die_with_supervisor()  # under `seaco serve`: end with it, however it ends

# dashboard.py routes with st.navigation, but Streamlit also sees the pages/ folder and, until
# the first st.navigation call in this process, treats the app as an old-style multipage app.
# If the first visitor after a restart opens a page's address (/jobs) directly, that page runs
# without dashboard.py, st.navigation is never called, and every later session gets
# file-name navigation without the status sidebar. Declaring the choice up front avoids that.
PagesManager.uses_pages_directory = False

app = st.App("dashboard.py", routes=routes())
