"""One set of exception handlers, two body shapes: the same failure answered by both APIs'
real apps, called in process through ASGI (no server needed: these are about how an error
becomes an answer, not about the network).

The failure is a real one: jobs.db is not a database, so the store raises
DatabaseUnusableError (never sqlite3's error) and both APIs answer 503 with Retry-After."""

from __future__ import annotations

import asyncio
import json

from engine.errors import DatabaseUnusableError
from engine.store import open_store
from engine.web.jobs_api import create_api
from engine.web.openai_api import create_openai_api


def call(app, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None):
    """One request through an ASGI app: (status, headers, parsed JSON body)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "server": ("test", 80),
        "client": ("test", 1),
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }
    sent: list[dict] = []
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        return pending.pop() if pending else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = sent[0]
    answer = b"".join(m.get("body", b"") for m in sent[1:])
    return (
        start["status"],
        dict((k.decode(), v.decode()) for k, v in start["headers"]),
        json.loads(answer),
    )


def form_with_a_file() -> tuple[bytes, dict[str, str]]:
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
        b"RIFF\r\n--b--\r\n"
    )
    return body, {"Content-Type": "multipart/form-data; boundary=b"}


def test_a_database_that_cannot_be_read_is_a_503_on_both_apis(data_env):
    data_env.ensure_dirs()
    data_env.db_path.write_bytes(b"this is not an SQLite database\n" * 100)
    try:
        open_store(data_env.db_path)
    except DatabaseUnusableError as exc:
        assert "file is not a database" in str(exc)
    else:
        raise AssertionError("a garbage jobs.db opened")

    status, headers, body = call(create_api(), "GET", "/v1/jobs/1")
    assert status == 503 and headers["retry-after"] == "5"
    assert body["error"]["code"] == "database_error" and body["error"]["status"] == 503
    assert body["error"]["message"].startswith("The job database could not be used: ")

    form, form_headers = form_with_a_file()
    status, headers, body = call(
        create_openai_api(), "POST", "/audio/transcriptions", form, form_headers
    )
    assert status == 503 and headers["retry-after"] == "5"
    assert body["error"]["type"] == "server_error" and body["error"]["code"] == "database_error"
    assert body["error"]["message"].startswith("The job database could not be used: ")


def test_a_wrong_token_is_a_401_with_www_authenticate_on_both_apis(data_env, monkeypatch):
    from engine import web_process

    monkeypatch.setenv("SEACO_API_TOKENS", "right-token")
    web_process.settings.cache_clear()
    wrong = {"Authorization": "Bearer wrong-token"}
    status, headers, body = call(create_api(), "GET", "/v1/jobs", headers=wrong)
    assert (status, headers["www-authenticate"]) == (401, "Bearer")
    assert body["error"]["code"] == "unauthorized"
    form, form_headers = form_with_a_file()
    status, headers, body = call(
        create_openai_api(), "POST", "/audio/transcriptions", form, {**form_headers, **wrong}
    )
    assert (status, headers["www-authenticate"]) == (401, "Bearer")
    assert body["error"]["type"] == "authentication_error"
