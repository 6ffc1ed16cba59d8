"""/api/docs and /v1/docs: Swagger UI from the installed package, never a CDN. Over real HTTP
against a running `seaco serve` (the shared tiny_service), and in a real headless Chromium
whose every request beyond the service is aborted: the page must still render."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
import requests

from engine.web import api_docs
from tests.browser import needs_chromium

pytestmark = pytest.mark.slow
EXTERNAL = re.compile(r"""(?:src|href)=["'](?:https?:)?//""")


@pytest.mark.parametrize(("app", "title"), [("api", "jobs API"), ("v1", "OpenAI-compatible API")])
def test_the_docs_page_loads_nothing_from_elsewhere(tiny_service, app, title):
    _cfg, base, _tmp, _pid = tiny_service
    page = requests.get(f"{base}/{app}/docs", timeout=10)  # no token needed, as before
    assert page.status_code == 200 and f"seaco-asr {title} - docs" in page.text
    assert not EXTERNAL.search(page.text), "the docs page names an outside address"
    assert "cdn" not in page.text.lower()
    for name, media_type in api_docs.ASSETS.items():
        asset = requests.get(f"{base}/{app}/docs/assets/{name}", timeout=10)
        assert asset.status_code == 200 and asset.headers["content-type"] == media_type
        assert len(asset.content) > 100
    assert (
        requests.get(f"{base}/{app}/openapi.json", timeout=10).json()["openapi"].startswith("3.1")
    )


def test_only_the_pages_assets_are_served(tiny_service):
    _cfg, base, _tmp, _pid = tiny_service
    for name in ("index.html", "swagger-initializer.js", "..%2F..%2F__init__.py", "nope.js"):
        assert requests.get(f"{base}/api/docs/assets/{name}", timeout=10).status_code in (
            400,
            404,
        )
    # ReDoc would come from a CDN: it is not offered
    assert requests.get(f"{base}/api/redoc", timeout=10).status_code == 404
    assert "/docs" not in requests.get(f"{base}/api/openapi.json", timeout=10).json()["paths"]


def test_the_bundled_swagger_ui_reads_openapi_3_1():
    version = re.search(r"swagger-ui-(\d+)\.", str(api_docs.ASSET_DIR))
    assert version and int(version.group(1)) >= 5, api_docs.ASSET_DIR  # 4.x refuses 3.1


@pytest.mark.browser
@needs_chromium
def test_api_docs_render_with_the_network_blocked(tiny_service):
    from playwright.sync_api import expect

    from tests.browser import browser_page

    _cfg, base, _tmp, _pid = tiny_service
    host = urlsplit(base).netloc
    elsewhere: list[str] = []

    def only_the_service(route):
        url = route.request.url
        if urlsplit(url).netloc == host:
            route.continue_()
        else:
            elsewhere.append(url)
            route.abort()

    with browser_page() as page:
        page.context.route("**/*", only_the_service)
        page.goto(f"{base}/api/docs")
        # Swagger UI built its page from the local bundle and the OpenAPI document
        expect(page.locator(".swagger-ui .info .title")).to_contain_text(
            "seaco-asr jobs API", timeout=30_000
        )
        expect(page.locator(".opblock-summary-path").first).to_be_visible()
        expect(page.get_by_text("/v1/jobs/{job_id}/transcript")).to_be_visible()
        assert not page.get_by_text("Unable to render this definition").count()
    assert elsewhere == []  # nothing was even attempted outside the service
