"""HTTP routes served on the dashboard's port (Streamlit's st.App accepts Starlette routes):
/health, /metrics, the jobs API under /api and the OpenAI-compatible API under /v1."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from engine import web_process
from engine.ops.health import health, http_status
from engine.ops.prometheus import CONTENT_TYPE, render_metrics
from engine.web.body_limit import BodyLimit
from engine.web.error_handlers import JOBS_API, OPENAI_API
from engine.web.jobs_api import create_api
from engine.web.openai_api import create_openai_api


def health_endpoint(_request: Request) -> JSONResponse:
    # A plain def: Starlette runs it in a thread, so SQLite never blocks the event loop.
    report = health(web_process.store(), web_process.settings())
    return JSONResponse(report, status_code=http_status(report))


def metrics_endpoint(_request: Request) -> Response:
    return Response(
        render_metrics(web_process.store(), web_process.settings()), media_type=CONTENT_TYPE
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/health", health_endpoint, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Mount("/api", app=BodyLimit(create_api(), JOBS_API)),
        Mount("/v1", app=BodyLimit(create_openai_api(), OPENAI_API)),
    ]
