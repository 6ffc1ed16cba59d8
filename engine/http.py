"""HTTP routes served on the dashboard's port (Streamlit's st.App accepts Starlette routes)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from engine import service
from engine.health import health, http_status


def health_endpoint(_request: Request) -> JSONResponse:
    # A plain def: Starlette runs it in a thread, so SQLite never blocks the event loop.
    report = health(service.store(), service.settings())
    return JSONResponse(report, status_code=http_status(report))


def routes() -> list[Route]:
    return [Route("/health", health_endpoint, methods=["GET"])]
