"""Streamlit widget groups that several pages share, so each page stays a short description
of its own content (the rest of engine/ has no Streamlit in it)."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from engine.dashboard import jobs_page, operations_view


def time_window(
    key: str, default: str, tz: dt.tzinfo, label: str = "Window"
) -> operations_view.Window:
    """The window picker of the Operations, Stability and Capacity pages: preset lengths or
    chosen days (local to the browser's zone), and a caption saying exactly what it covers.
    `key` prefixes the widgets' keys, so each page remembers its own choice."""
    choice = st.segmented_control(
        label, operations_view.WINDOW_CHOICES, default=default, key=f"{key}_window", width="stretch"
    )
    days = (
        st.date_input("Days", value=[], key=f"{key}_days")
        if choice == operations_view.CUSTOM
        else ()
    )
    win = operations_view.window(choice or default, days=days, tz=tz)
    st.caption(
        f"{win.label}: {jobs_page.format_time(win.start_ms, tz)} to "
        f"{jobs_page.format_time(win.end_ms, tz)}"
    )
    return win
