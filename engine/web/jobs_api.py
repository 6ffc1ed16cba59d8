"""The jobs API (FastAPI), mounted at /api on the dashboard's port: submit, follow, fetch,
cancel, delete, search. The routes are module-level functions on `router`; `create_api()`
makes the app around them. Every handler is a thin call into engine functions; errors are
answered by engine/web/error_handlers.py (`JOBS_API` shape). Handlers are plain `def`s so
FastAPI runs them in its thread pool and SQLite and file I/O never block the event loop."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, File, Form, Path, Query, UploadFile
from fastapi.responses import JSONResponse, Response

from engine import __version__, export, intake, web_process
from engine.callbacks import callback_view
from engine.errors import QueueFullError
from engine.intake import submit_batch, submit_upload
from engine.jobs import PRIORITY_LIVE, PRIORITY_NORMAL, Job, JobState, job_document
from engine.web import api_docs
from engine.web.auth import require_token
from engine.web.error_handlers import (
    JOBS_API,
    error_body,
    error_code,
    install_error_handlers,
    status_for,
)


def job_view(job: Job, *, full: bool = True, words: bool = False) -> dict[str, Any]:
    """A job as the API shows it: the stored fields plus queue position and progress; the
    full view also says how its callback's delivery went, and with `words` each sentence's
    word timestamps (`job_document`)."""
    store = web_process.store()
    position = store.queue_position(job.id) if job.state is JobState.QUEUED else None
    data = job_document(job, position, full=full, words=words)
    if full:
        data["callback"] = callback_view(store.callback_for(job.id))
    return data


Priority = Annotated[
    int, Form(ge=0, le=PRIORITY_LIVE, description="0 batch, 10 normal, 20 live; higher first")
]
JobId = Annotated[int, Path(ge=1, le=2**63 - 1, description="job id")]  # SQLite's INTEGER range
Hotwords = Annotated[str | None, Form(max_length=20_000, description="comma/space separated")]
CallbackUrl = Annotated[
    str | None,
    Form(max_length=2000, description="POSTed the job's JSON when it ends (done/failed/cancelled)"),
]


router = APIRouter()


@router.post("/v1/jobs", status_code=202, summary="Queue one file")
def submit_job(
    file: Annotated[UploadFile, File(description="audio or video file")],
    hotwords: Hotwords = None,
    priority: Priority = PRIORITY_NORMAL,
    callback_url: CallbackUrl = None,
) -> JSONResponse:
    job = submit_upload(
        web_process.store(),
        web_process.settings(),
        file.file,
        file.filename,
        hotwords=hotwords,
        priority=priority,
        source="api",
        callback_url=callback_url,
    )
    return JSONResponse(job_view(job), status_code=202)


@router.post("/v1/batches", status_code=202, summary="Queue several files as one batch")
def create_batch(
    files: Annotated[list[UploadFile], File(description="audio or video files")],
    hotwords: Hotwords = None,
    priority: Priority = 0,
    callback_url: CallbackUrl = None,
) -> JSONResponse:
    batch = submit_batch(
        web_process.store(),
        web_process.settings(),
        [(f.file, f.filename) for f in files],
        hotwords=hotwords,
        priority=priority,
        source="api",
        callback_url=callback_url,
    )
    accepted = [job_view(job, full=False) for job in batch.accepted]
    rejected = [
        {"file": name, **error_body(error_code(exc), str(exc), status_for(exc))}
        for name, exc in batch.rejected
    ]
    if not accepted and rejected and all(r["error"]["status"] == 503 for r in rejected):
        raise QueueFullError(rejected[0]["error"]["message"])
    status = 202 if accepted else 400
    body = {"batch_id": batch.batch_id, "jobs": accepted, "rejected": rejected}
    return JSONResponse(body, status_code=status)


@router.get("/v1/jobs", summary="List jobs, newest first")
def list_jobs(
    state: JobState | None = None,
    batch_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    store = web_process.store()
    jobs = store.list_jobs(state=state, batch_id=batch_id, limit=limit, offset=offset)
    return {
        "jobs": [job_view(j, full=False) for j in jobs],
        "total": store.count_jobs(state=state, batch_id=batch_id),
        "limit": limit,
        "offset": offset,
    }


@router.get("/v1/jobs/{job_id}", summary="One job: state, progress, timings, result")
def get_job(
    job_id: JobId,
    words: Annotated[
        bool,
        Query(
            description="add sentences[].words: [{text, start_ms, end_ms}] per Chinese "
            "character or Latin word (empty for jobs done before word timestamps were stored)"
        ),
    ] = False,
) -> dict[str, Any]:
    return job_view(web_process.store().get(job_id), words=words)


@router.get("/v1/jobs/{job_id}/transcript", summary="The transcript as a file")
def get_transcript(
    job_id: JobId,
    format: Annotated[str, Query(description=", ".join(export.FORMATS))] = "txt",  # noqa: A002
) -> Response:
    job = web_process.store().get(job_id)
    data = export.export_job(job, format)
    media_type, ext = export.FORMATS[format]
    # an ASCII fallback name plus the real (often Chinese) one, RFC 6266
    name = quote(export.export_filename(job, format))
    disposition = f"attachment; filename=\"job-{job.id}.{ext}\"; filename*=UTF-8''{name}"
    return Response(data, media_type=media_type, headers={"Content-Disposition": disposition})


@router.post("/v1/jobs/{job_id}/cancel", summary="Cancel a queued or running job")
def cancel_job(job_id: JobId) -> dict[str, Any]:
    return job_view(web_process.store().cancel(job_id))


@router.delete("/v1/jobs/{job_id}", status_code=204, summary="Delete a job and its audio")
def delete_job(job_id: JobId) -> Response:
    intake.delete_job(web_process.store(), web_process.settings(), job_id)
    return Response(status_code=204)


@router.get("/v1/search", summary="Full-text search over transcripts")
def search(
    q: Annotated[str, Query(max_length=500)],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    hits = web_process.store().search(q, limit=limit, offset=offset)
    return {"query": q, "hits": [h.__dict__ for h in hits]}


def create_api() -> FastAPI:
    """The jobs API app: `router`'s routes, token auth on every one, JOBS_API error bodies."""
    api = FastAPI(
        title="seaco-asr jobs API",
        version=__version__,
        docs_url=None,  # api_docs serves Swagger UI from local files instead of a CDN
        redoc_url=None,
        description="Submit audio, follow jobs, fetch transcripts. Errors: "
        '`{"error": {"code", "message", "status"}}`.',
        dependencies=[Depends(require_token)],
    )
    api_docs.install(api)
    install_error_handlers(api, JOBS_API)
    api.include_router(router)
    return api
