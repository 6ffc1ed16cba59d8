"""Process-wide handles for the web process: the settings and the store, made once.

Pages and HTTP routes call these instead of building their own, so a Streamlit rerun costs
no file parsing and no new database connection.
"""

from __future__ import annotations

from functools import lru_cache

from engine.config import Settings, load_settings
from engine.store import Store, open_store


@lru_cache(maxsize=1)
def settings() -> Settings:
    return load_settings()


@lru_cache(maxsize=4)
def _store_for(db_path: str, busy_timeout_s: float) -> Store:
    return open_store(db_path, busy_timeout_s=busy_timeout_s)


def store() -> Store:
    current = settings()
    current.ensure_dirs()
    return _store_for(str(current.db_path), current.db_busy_timeout_s)
