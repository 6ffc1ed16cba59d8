"""Security properties that are about how, not what: tokens are compared in constant time,
and the web process is started with Streamlit's XSRF protection and upload limit. (What the
running service answers to hostile requests is in tests/web/test_bad_inputs.py.)"""

from __future__ import annotations

import hmac

import pytest
from starlette.exceptions import HTTPException
from starlette.requests import Request

from engine import web_process
from engine.web.auth import require_token
from engine.worker.supervisor import web_argv
from tests.conftest import make_settings

TOKENS = ["first-token-aaaa", "second-token-bbbb"]


@pytest.fixture
def tokens(monkeypatch):
    monkeypatch.setenv("SEACO_API_TOKENS", ",".join(TOKENS))
    web_process.settings.cache_clear()
    yield
    web_process.settings.cache_clear()


def request_with(authorization: str | None) -> Request:
    headers = [] if authorization is None else [(b"authorization", authorization.encode())]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})


def test_every_token_is_compared_with_hmac_compare_digest(tokens, monkeypatch):
    compared = []
    real = hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    with pytest.raises(HTTPException) as refused:
        require_token(request_with("Bearer first-token-aaab"))
    assert refused.value.status_code == 401
    # a near miss is compared against every configured token, in constant time
    assert [b for _a, b in compared] == [t.encode() for t in TOKENS]
    compared.clear()
    require_token(request_with("Bearer second-token-bbbb"))
    assert compared and all(isinstance(a, bytes) for a, _b in compared)


def test_the_dashboard_runs_with_xsrf_protection_and_the_upload_limit(tmp_path):
    argv = web_argv(make_settings(tmp_path, max_upload_mb="7"))

    def option(name: str) -> str:
        return argv[argv.index(name) + 1]

    assert option("--server.enableXsrfProtection") == "true"
    assert option("--server.maxUploadSize") == "7"
    assert option("--server.address") == "127.0.0.1"  # loopback unless told otherwise
