"""Streamlit widget groups that several pages share, so each page stays a short description
of its own content (the rest of engine/ has no Streamlit in it), and the plain functions
behind them (no Streamlit, so tests call them directly)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import streamlit as st

from engine.config import Settings
from engine.dashboard import jobs_page, operations_view
from engine.store import Store

# Streamlit's own line under the upload box ("1GB per file • WAV, MP3...") rounds the limit
# in decimal units, so SEACO_MAX_UPLOAD_MB=512 reads "1GB"; the label states it instead.
_HIDE_UPLOAD_LIMIT = (
    "<style>[data-testid='stFileUploaderDropzoneInstructions'] {display: none;}</style>"
)
API_DOCS_PATH = "api/docs"  # relative, so it follows the dashboard's own address


def upload_label(what: str, settings: Settings) -> str:
    """'Audio or video file (up to 512 MB each)': the upload box's label with the real
    limit, SEACO_MAX_UPLOAD_MB."""
    return f"{what} (up to {settings.max_upload_mb} MB each)"


def upload_help(extensions: tuple[str, ...] | list[str]) -> str:
    return "Accepted: " + ", ".join(extensions) + ". Detected by content, not by name."


def file_uploader(
    what: str, settings: Settings, extensions: tuple[str, ...] | list[str], **kwargs: Any
) -> Any:
    """st.file_uploader whose label gives the real size limit (see upload_label) in place
    of Streamlit's rounded one; `kwargs` go to st.file_uploader."""
    st.html(_HIDE_UPLOAD_LIMIT)
    return st.file_uploader(
        upload_label(what, settings),
        type=list(extensions),
        help=upload_help(extensions),
        max_upload_size=settings.max_upload_mb,
        **kwargs,
    )


# st.progress draws in the theme's "secondary" colour (Streamlit's blue70) and has no colour
# setting; the table's palette "blue" is another blue, so the hex is named.
PROGRESS_COLOUR = "#1c83e1"


def batch_columns() -> dict[str, Any]:
    """The Batch table's column settings: each file's progress bar in the colour of the
    batch's overall bar above it (st.progress), and the job number a link to its page
    (the rows' "job" is formatting.job_link)."""
    return {
        "progress": st.column_config.ProgressColumn(
            "progress", min_value=0.0, max_value=1.0, color=PROGRESS_COLOUR
        ),
        "job": st.column_config.LinkColumn("job", display_text=r"jobs\?job=(\d+)"),
    }


def api_docs_link() -> None:
    """A link to the interactive API documentation (/api/docs, served from local files)."""
    st.markdown(f"[📖 API documentation]({API_DOCS_PATH})")


def live_fragment(active: bool, body: Callable[..., None], every_s: float = 1.0) -> Any:
    """`body` as a fragment that redraws itself every `every_s` seconds while `active`
    (something on it is still changing) and not at all otherwise. Call the result with
    `body`'s arguments. A body that sees the change end should call st.rerun(), so the page
    is drawn once more without the timer."""
    return st.fragment(body, run_every=every_s if active else None)


# --- time windows ---------------------------------------------------------------------------
def service_start_ms(store: Store) -> int | None:
    """The earliest record of this service in its database: the start of the oldest worker
    still listed, its first /health self-probe, or the submission of its oldest job,
    whichever is earliest; None when it has none of them."""
    candidates = [int(w["started_at"]) for w in store.workers() if w.get("started_at")]
    if (probe := store.first_probe_at()) is not None:
        candidates.append(int(probe))
    total = store.count_jobs()
    if total:
        oldest = store.list_jobs(limit=1, offset=total - 1)  # newest first: the last is oldest
        if oldest:
            candidates.append(oldest[0].submitted_at)
    return min(candidates) if candidates else None


def clip_window(
    win: operations_view.Window, since_ms: int | None
) -> tuple[operations_view.Window, bool]:
    """The part of `win` from `since_ms` on (when the service began keeping records), and
    whether it was cut: charts of a window reaching back before the service existed would
    draw its absence as 0 % busy. A window entirely before it keeps its last millisecond."""
    if since_ms is None or since_ms <= win.start_ms:
        return win, False
    start = min(since_ms, win.end_ms - 1)
    return operations_view.Window(start, win.end_ms, win.label), True


def time_window(
    key: str,
    default: str,
    tz: dt.tzinfo,
    label: str = "Window",
    since_ms: int | None = None,
) -> operations_view.Window:
    """The window picker of the Operations, Stability and Capacity pages: preset lengths or
    chosen days (local to the browser's zone), and a caption saying exactly what it covers.
    `key` prefixes the widgets' keys, so each page remembers its own choice. With
    `since_ms` (see service_start_ms) the window starts no earlier than that."""
    choice = st.segmented_control(
        label, operations_view.WINDOW_CHOICES, default=default, key=f"{key}_window", width="stretch"
    )
    days = (
        st.date_input("Days", value=[], key=f"{key}_days")
        if choice == operations_view.CUSTOM
        else ()
    )
    win, cut = clip_window(operations_view.window(choice or default, days=days, tz=tz), since_ms)
    st.caption(
        f"{win.label}: {jobs_page.format_time(win.start_ms, tz)} to "
        f"{jobs_page.format_time(win.end_ms, tz)}"
        + (" (from the service's first record; nothing before it)" if cut else "")
    )
    return win


def window_bounds(win: operations_view.Window) -> tuple[int, int]:
    """A window as the (start, end) epoch ms that ops_charts' `window` arguments take."""
    return win.start_ms, win.end_ms
