"""Shared fixtures: real SQLite files, settings pointing at a temporary data dir, the tiny
random-weight models (built once per test session, in the real FunASR format)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from engine.config import Settings, load_settings
from engine.store import Store, open_store


def make_settings(data_dir: Path, **overrides: str) -> Settings:
    environ = {
        "SEACO_DATA_DIR": str(data_dir),
        "SEACO_WORKERS": "1",  # one worker unless a test asks for more (`auto` varies by machine)
        **{f"SEACO_{k.upper()}": v for k, v in overrides.items()},
    }
    return load_settings(environ, env_file=None)


def model_overrides(models: dict[str, Path]) -> dict[str, str]:
    """make_settings/serve overrides that point the three models at `models` (tiny_models)."""
    return {f"{kind}_model": str(path) for kind, path in models.items()}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = make_settings(tmp_path / "data")
    s.ensure_dirs()
    return s


@pytest.fixture
def store(settings: Settings) -> Store:
    s = open_store(settings.db_path)
    yield s
    s.close()


@pytest.fixture
def data_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """SEACO_DATA_DIR set for code that reads the process's settings (pages, engine.web_process),
    with service's cached settings and store dropped before and after."""
    from engine import web_process

    monkeypatch.setenv("SEACO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SEACO_WORKERS", "1")  # as make_settings: not the machine's `auto`
    web_process.settings.cache_clear()
    yield web_process.settings()
    web_process.settings.cache_clear()


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from engine.recognition.random_models import build_test_models

    return build_test_models(tmp_path_factory.mktemp("models"), size="tiny", seed=0)


@pytest.fixture(autouse=True)
def _no_developer_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read `.env` from the working directory: run every test from an empty one so
    a developer's own .env cannot change what the tests see."""
    monkeypatch.chdir(tmp_path)


SERVICE_TOKEN = "tiny-service-token-1c2d"


@pytest.fixture(scope="session")
def tiny_service(tmp_path_factory: pytest.TempPathFactory, tiny_models: dict[str, Path]):
    """One `seaco serve` with the tiny models, an API token and a 1 MB upload limit, shared by
    the test modules that only talk to it over HTTP (bad inputs, the soak harness).
    Yields (settings, base_url, tmp_dir, pid of the worker it started with)."""
    from tests.procs import get_health, serve, stop, wait_for

    tmp = tmp_path_factory.mktemp("service")
    cfg, proc, base = serve(
        tmp,
        "data",
        api_tokens=SERVICE_TOKEN,
        max_upload_mb="1",
        **{f"{k}_model": str(v) for k, v in tiny_models.items()},
    )
    try:
        wait_for(lambda: get_health(base)[1].get("status") == "ok", timeout=180)
        worker_pid = open_store(cfg.db_path).latest_worker()["pid"]
        yield cfg, base, tmp, worker_pid
    finally:
        assert stop(proc) == 0
        assert "Traceback" not in (tmp / "data.log").read_text()


class _RecordingHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.path, dict(self.headers), body))  # type: ignore[attr-defined]
        status = self.server.status  # type: ignore[attr-defined]
        self.send_response(status)
        if 300 <= status < 400:
            self.send_header("Location", "/elsewhere")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args):
        pass


@pytest.fixture
def http_receiver() -> Iterator[ThreadingHTTPServer]:
    """A real HTTP server on a free port (webhooks, callbacks): `.received` holds every
    POST as (path, headers, body), `.status` is what it answers (a 3xx adds a Location),
    `.url` is http://127.0.0.1:PORT/asr-done."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RecordingHandler)
    server.received = []  # type: ignore[attr-defined]
    server.status = 204  # type: ignore[attr-defined]
    server.url = f"http://127.0.0.1:{server.server_address[1]}/asr-done"  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
