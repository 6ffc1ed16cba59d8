"""Errors as HTTP answers, for both APIs: one table of status codes, one set of exception
handlers, two body shapes.

An error becomes a `Problem` (status, code, message, headers) the same way on both APIs;
only its body differs:

- /api (`JOBS_API`): `{"error": {"code": "queue_full", "message": "...", "status": 503}}`,
  plus `retry_after_s` when the client should try again later (queue full, database busy);
- /v1 (`OPENAI_API`): OpenAI's `{"error": {"message", "type", "param": null, "code"}}`, where
  `type` is `authentication_error` (401), `invalid_request_error` (other 4xx) or
  `server_error` (5xx).

Headers are the same on both: `Retry-After` (seconds) with every "try later" 503,
`WWW-Authenticate: Bearer` with a 401. A request that fails validation is 422 on /api and
400 on /v1 (OpenAI's status for it).
"""

from __future__ import annotations

import errno
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine import web_process
from engine.config import Settings
from engine.errors import (
    AudioTooLargeError,
    AudioTooLongError,
    CorruptAudioError,
    DatabaseBusyError,
    DatabaseError,
    DatabaseUnusableError,
    EmptyAudioError,
    InvalidCallbackUrlError,
    InvalidJobStateError,
    JobNotFoundError,
    ModelError,
    NotAudioError,
    NotExportableError,
    QueueFullError,
    SeacoError,
    StorageFullError,
    UnknownFormatError,
)
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
    DatabaseUnusableError: 503,
    StorageFullError: 507,
}
# codes that are not the class name (error_code): the one the API has always used
CODE_FOR: dict[type[BaseException], str] = {DatabaseUnusableError: "database_error"}
HTTP_CODE_FOR = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed"}
RETRY_AFTER_DEFAULT_S = 30
RETRY_AFTER_MAX_S = 3600
DATABASE_RETRY_AFTER_S = 5


def status_for(exc: SeacoError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_FOR:
            return STATUS_FOR[cls]
    return 400


def error_code(exc: BaseException) -> str:
    """QueueFullError -> 'queue_full', NotAudioError -> 'not_audio'."""
    if type(exc) in CODE_FOR:
        return CODE_FOR[type(exc)]
    name = re.sub(r"Error$", "", type(exc).__name__)
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def error_body(code: str, message: str, status: int, **extra: Any) -> dict[str, Any]:
    """The /api error body: `{"error": {"code", "message", "status", **extra}}`."""
    return {"error": {"code": code, "message": message, "status": status, **extra}}


def openai_error_body(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    """The /v1 error body, OpenAI's: `{"error": {"message", "type", "param", "code"}}`."""
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def retry_after_s(store: Store, settings: Settings) -> int:
    """Seconds until the queue has room: the jobs that must finish first times the mean time
    of recent jobs (30 s before any job has finished), within 1 s .. 1 h."""
    mean_s = store.mean_processing_s()
    if mean_s is None:
        return RETRY_AFTER_DEFAULT_S
    must_finish = max(1, store.queue_depth() - settings.queue_max + 1)
    return max(1, min(RETRY_AFTER_MAX_S, math.ceil(must_finish * mean_s)))


def no_space_cause(exc: BaseException) -> OSError | None:
    """The 'disk full' OSError behind an exception, if there is one (the framework turns a
    failure while spooling an upload into a 400 "error parsing the body")."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


# --- one error, before it takes an API's shape ----------------------------------------------
@dataclass(frozen=True)
class Problem:
    """An error answer: HTTP status, our code ('queue_full'), a sentence for the user, the
    response headers, and `retry_after_s` (seconds, or None) for "try again later"."""

    status: int
    code: str
    message: str
    retry_after_s: int | None = None
    headers: dict[str, str] = field(default_factory=dict)


def seaco_problem(exc: SeacoError) -> Problem:
    retry = None
    if isinstance(exc, QueueFullError):
        retry = retry_after_s(web_process.store(), web_process.settings())
    elif isinstance(exc, (DatabaseBusyError, DatabaseUnusableError)):
        retry = DATABASE_RETRY_AFTER_S
    headers = {"Retry-After": str(retry)} if retry is not None else {}
    return Problem(status_for(exc), error_code(exc), str(exc), retry, headers)


def http_problem(exc: StarletteHTTPException) -> Problem:
    if no_space_cause(exc) is not None:
        return seaco_problem(StorageFullError("The server's disk is full; try later."))
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else {}
    code = HTTP_CODE_FOR.get(exc.status_code, "http_error")
    return Problem(exc.status_code, code, str(exc.detail), headers=headers)


def validation_message(exc: RequestValidationError) -> str:
    """'file: Field required; priority: Input should be ...' (the location without its
    'body'/'query' prefix)."""
    problems = [
        f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg')}"
        for e in exc.errors()
    ]
    return "; ".join(problems) or "Invalid request."


# --- the two shapes ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ErrorShape:
    """How one API writes a Problem: its body, and its status for a request that fails
    validation."""

    body: Callable[[Problem], dict[str, Any]]
    validation_status: int

    def response(self, problem: Problem) -> JSONResponse:
        return JSONResponse(
            self.body(problem), status_code=problem.status, headers=problem.headers or None
        )

    def response_for(self, exc: SeacoError) -> JSONResponse:
        return self.response(seaco_problem(exc))


def _jobs_api_body(problem: Problem) -> dict[str, Any]:
    extra = {} if problem.retry_after_s is None else {"retry_after_s": problem.retry_after_s}
    return error_body(problem.code, problem.message, problem.status, **extra)


def openai_type(status: int) -> str:
    if status == 401:
        return "authentication_error"
    return "invalid_request_error" if status < 500 else "server_error"


def _openai_body(problem: Problem) -> dict[str, Any]:
    return openai_error_body(problem.message, openai_type(problem.status), problem.code)


JOBS_API = ErrorShape(body=_jobs_api_body, validation_status=422)
OPENAI_API = ErrorShape(body=_openai_body, validation_status=400)


def install_error_handlers(app: FastAPI, shape: ErrorShape) -> None:
    """Our exceptions, the framework's HTTP errors (401, 404, 405, a body that could not be
    parsed) and validation failures, answered in `shape`. Anything else is a bug: a 500."""

    # Starlette types every handler as taking Exception; each is registered for one class
    # below, and narrows to it (anything else would be a registration bug: re-raised, a 500).
    def seaco_error(_request: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, SeacoError):
            raise exc
        return shape.response(seaco_problem(exc))

    def http_error(_request: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, StarletteHTTPException):
            raise exc
        return shape.response(http_problem(exc))

    def validation_error(_request: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, RequestValidationError):
            raise exc
        message = validation_message(exc)
        return shape.response(Problem(shape.validation_status, "invalid_request", message))

    app.add_exception_handler(SeacoError, seaco_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
