"""Interactive API documentation (Swagger UI) served from files installed with the package,
so /api/docs and /v1/docs work on a machine without internet access. FastAPI's own /docs
page loads Swagger UI from a CDN and stays blank offline; the apps are created without it
(docs_url=None) and these routes take its place (FastAPI's self-hosting recipe).

Swagger UI comes from the `swagger-ui-bundle-v2` distribution (import name
`swagger_ui_bundle`): Swagger UI 5, which reads the OpenAPI 3.1 documents FastAPI writes
(the older `swagger-ui-bundle` ships 4.15, which refuses them)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route
from swagger_ui_bundle import swagger_ui_path

# The only files the page needs; nothing else in the bundle is served (its own index.html
# points at a demo API on the internet).
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
ASSET_DIR = Path(str(swagger_ui_path))
CACHE = "public, max-age=86400"


def docs_page(title: str) -> Route:
    """The page at `<app>/docs`. Every URL in it is relative to the page, so it also works
    when a proxy serves the service under a path: the assets at `docs/assets/...`, the
    OpenAPI document at `openapi.json` (both next to the page's own `<app>/`)."""

    def page(_request: Request) -> Response:
        return get_swagger_ui_html(
            openapi_url="openapi.json",
            title=title,
            swagger_js_url="docs/assets/swagger-ui-bundle.js",
            swagger_css_url="docs/assets/swagger-ui.css",
            swagger_favicon_url="docs/assets/favicon-32x32.png",
            oauth2_redirect_url=None,
        )

    return Route("/docs", page, methods=["GET"])


def asset(request: Request) -> Response:
    """One of ASSETS from the installed Swagger UI; 404 for any other name."""
    name = request.path_params["name"]
    if name not in ASSETS:
        return Response("Not found", status_code=404, media_type="text/plain")
    return FileResponse(ASSET_DIR / name, media_type=ASSETS[name], headers={"Cache-Control": CACHE})


def docs_routes(title: str) -> list[BaseRoute]:
    """The docs page and its assets, for an app mounted under a prefix (/api, /v1)."""
    return [docs_page(title), Route("/docs/assets/{name}", asset, methods=["GET"])]


def install(app: FastAPI) -> None:
    """Add the local docs to `app`, created with docs_url=None and redoc_url=None (ReDoc
    would load from a CDN too). Plain routes: not in the OpenAPI document and, like
    FastAPI's own docs, open without a token (they hold no data)."""
    app.router.routes.extend(docs_routes(f"{app.title} - docs"))
