"""OpenAI-compatible `POST /v1/audio/transcriptions`, so existing OpenAI clients work as is.

The request becomes a high-priority job in the same queue (the worker still owns the model
and works in order); the handler waits for it, asynchronously, up to SEACO_SYNC_TIMEOUT_S,
then answers in the format asked for. `prompt` is used as the hotword list; `model`,
`language` and `temperature` are accepted and ignored (there is one model: SeACo-Paraformer).
`timestamp_granularities[]` (repeatable: `segment`, `word`) chooses what `verbose_json`
holds, as OpenAI's does: `segments` when asked for or when nothing is asked for, `words`
(`[{"word", "start", "end"}]`, seconds; a Chinese character or a Latin word each) when
`word` is asked for, which needs `response_format=verbose_json` (else a 400).
Errors use OpenAI's shape: `{"error": {"message", "type", "param", "code"}}` (the
`OPENAI_API` shape of engine/web/error_handlers.py). The route is a module-level function on
`router`; `create_openai_api()` makes the app around it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, File, Form, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from engine import __version__, export, web_process
from engine.intake import submit_upload
from engine.jobs import PRIORITY_LIVE, Job, JobState
from engine.web import api_docs
from engine.web.auth import require_token
from engine.web.error_handlers import OPENAI_API, install_error_handlers, openai_error_body

POLL_S = 0.1
ResponseFormat = Literal["json", "text", "srt", "vtt", "verbose_json"]
Granularity = Literal["segment", "word"]
# OpenAI's clients send the list as repeated `timestamp_granularities[]` fields (the SDK's
# multipart "brackets" arrays); the bare name is accepted too, as some hand-made requests use it.
Granularities = Annotated[
    list[Granularity] | None,
    Form(alias="timestamp_granularities[]", description="segment and/or word (verbose_json)"),
]
BareGranularities = Annotated[
    list[Granularity] | None,
    Form(alias="timestamp_granularities", description="the same as timestamp_granularities[]"),
]


def openai_error(status: int, message: str, kind: str, code: str | None = None) -> JSONResponse:
    """An answer the route makes itself (not an exception): the job timed out or failed."""
    return JSONResponse(openai_error_body(message, kind, code), status_code=status)


def verbose(job: Job, granularities: frozenset[str] = frozenset()) -> dict:
    """OpenAI's verbose_json: `segments` (one per sentence) unless only `word` is asked for,
    and `words` (`[{"word", "start", "end"}]`, seconds, in order; empty for a job done before
    word timestamps were stored) when `word` is. `granularities`: a subset of
    {"segment", "word"}; empty means OpenAI's default, segments."""
    out: dict = {
        "task": "transcribe",
        "language": "chinese",
        "duration": (job.duration_ms or 0) / 1000,
        "text": job.text or "",
    }
    if not granularities or "segment" in granularities:
        out["segments"] = [
            {
                "id": i,
                "seek": 0,
                "start": s.start_ms / 1000,
                "end": s.end_ms / 1000,
                "text": s.text,
                "tokens": [],
                "temperature": 0.0,
                "avg_logprob": 0.0,
                "compression_ratio": 0.0,
                "no_speech_prob": 0.0,
            }
            for i, s in enumerate(job.sentences)
        ]
    if "word" in granularities:
        out["words"] = [
            {"word": w.text, "start": w.start_ms / 1000, "end": w.end_ms / 1000}
            for s in job.sentences
            for w in s.words
        ]
    out["x_seaco"] = {
        "job_id": job.id,
        "confidence": job.confidence,
        "hotwords": job.hotwords,  # as asked (the prompt)
        "effective_hotwords": job.effective_hotwords,  # as the model got them
        "hotword_warnings": job.hotword_warnings or [],  # what was left out, and why
    }
    return out


def check_granularities(granularities: frozenset[str], response_format: str) -> None:
    """OpenAI's rule: word timestamps only come in verbose_json. Raises RequestValidationError
    (a 400 in OpenAI's shape, from the error handlers) for `word` with any other format."""
    if "word" in granularities and response_format != "verbose_json":
        message = (
            "word timestamps need response_format=verbose_json "
            f"(response_format is {response_format!r})"
        )
        loc = ("body", "timestamp_granularities[]")
        raise RequestValidationError([{"loc": loc, "msg": message, "type": "value_error"}])


async def wait_until_final(job_id: int, timeout_s: float) -> Job | None:
    store = web_process.store()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = await run_in_threadpool(store.get, job_id)
        if job.state.is_final:
            return job
        await asyncio.sleep(POLL_S)
    return None


router = APIRouter()


@router.post("/audio/transcriptions", summary="Transcribe one file and wait for the result")
async def transcriptions(
    file: Annotated[UploadFile, File()],
    model: Annotated[str, Form(max_length=200)] = "seaco-paraformer",
    prompt: Annotated[str | None, Form(max_length=20_000)] = None,
    response_format: Annotated[ResponseFormat, Form()] = "json",
    language: Annotated[str | None, Form(max_length=20)] = None,
    temperature: Annotated[float | None, Form()] = None,
    timestamp_granularities: Granularities = None,
    bare_timestamp_granularities: BareGranularities = None,
) -> Response:
    granularities = frozenset(timestamp_granularities or ()) | frozenset(
        bare_timestamp_granularities or ()
    )
    check_granularities(granularities, response_format)  # before any work is queued
    settings, store = web_process.settings(), web_process.store()
    job = await run_in_threadpool(
        submit_upload,
        store,
        settings,
        file.file,
        file.filename,
        hotwords=prompt,
        priority=PRIORITY_LIVE,
        source="api",
    )
    done = await wait_until_final(job.id, settings.sync_timeout_s)
    if done is None:
        return openai_error(
            504,
            f"Job {job.id} did not finish within {settings.sync_timeout_s} s "
            f"(SEACO_SYNC_TIMEOUT_S). It is still queued or running: follow it at "
            f"/api/v1/jobs/{job.id}.",
            "timeout",
            "timeout",
        )
    if done.state is not JobState.DONE:
        reason = done.error or f"The job was {done.state.value}."
        return openai_error(422, reason, "invalid_request_error", done.error_class)
    if response_format == "json":
        return JSONResponse({"text": done.text or ""})
    if response_format == "verbose_json":
        return JSONResponse(verbose(done, granularities))
    if response_format == "text":
        return PlainTextResponse(done.text or "")
    media_type, _ext = export.FORMATS[response_format]
    return Response(export.export_job(done, response_format), media_type=media_type)


def create_openai_api() -> FastAPI:
    """The OpenAI-compatible app: `router`'s route, token auth, OPENAI_API error bodies."""
    app = FastAPI(
        title="seaco-asr OpenAI-compatible API",
        version=__version__,
        docs_url=None,  # api_docs serves Swagger UI from local files instead of a CDN
        redoc_url=None,
        dependencies=[Depends(require_token)],
    )
    api_docs.install(app)
    install_error_handlers(app, OPENAI_API)
    app.include_router(router)
    return app
