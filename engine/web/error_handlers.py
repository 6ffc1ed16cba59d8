"""Our exceptions as HTTP answers: one table of status codes, one JSON shape.

Every error from /api is `{"error": {"code": "queue_full", "message": "...", "status": 503}}`
(plus `retry_after_s` when the queue is full). The OpenAI-compatible routes wrap the same
information in OpenAI's own shape (`engine/openai_compat.py`).
"""

from __future__ import annotations

import math
import re
from typing import Any

from engine.config import Settings
from engine.errors import (
    AudioTooLargeError,
    AudioTooLongError,
    CorruptAudioError,
    DatabaseError,
    EmptyAudioError,
    InvalidCallbackUrlError,
    InvalidJobStateError,
    JobNotFoundError,
    ModelError,
    NotAudioError,
    QueueFullError,
    SeacoError,
    StorageFullError,
)
from engine.export import NotExportableError, UnknownFormatError
from engine.store import Store

STATUS_FOR: dict[type[SeacoError], int] = {
    EmptyAudioError: 400,
    UnknownFormatError: 400,
    JobNotFoundError: 404,
    InvalidJobStateError: 409,
    NotExportableError: 409,
    AudioTooLargeError: 413,
    AudioTooLongError: 413,
    NotAudioError: 415,
    CorruptAudioError: 422,
    InvalidCallbackUrlError: 422,
    QueueFullError: 503,
    ModelError: 503,
    DatabaseError: 503,  # and DatabaseBusyError: the lock was held too long; try again
    StorageFullError: 507,
}
RETRY_AFTER_DEFAULT_S = 30
RETRY_AFTER_MAX_S = 3600


def status_for(exc: SeacoError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_FOR:
            return STATUS_FOR[cls]
    return 400


def error_code(exc: BaseException) -> str:
    """QueueFullError -> 'queue_full', NotAudioError -> 'not_audio'."""
    name = re.sub(r"Error$", "", type(exc).__name__)
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def error_body(code: str, message: str, status: int, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status, **extra}}


def retry_after_s(store: Store, settings: Settings) -> int:
    """Seconds until the queue has room: the jobs that must finish first times the mean time
    of recent jobs (30 s before any job has finished), within 1 s .. 1 h."""
    mean_s = store.mean_processing_s()
    if mean_s is None:
        return RETRY_AFTER_DEFAULT_S
    must_finish = max(1, store.queue_depth() - settings.queue_max + 1)
    return max(1, min(RETRY_AFTER_MAX_S, math.ceil(must_finish * mean_s)))
