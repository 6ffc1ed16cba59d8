"""Shared fixtures: real SQLite files, settings pointing at a temporary data dir, the tiny
random-weight models (built once per test session, in the real FunASR format)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import Settings, load_settings
from engine.store import Store, open_store


def make_settings(data_dir: Path, **overrides: str) -> Settings:
    environ = {
        "SEACO_DATA_DIR": str(data_dir),
        **{f"SEACO_{k.upper()}": v for k, v in overrides.items()},
    }
    return load_settings(environ, env_file=None)


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


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from engine.testmodels import build_test_models

    return build_test_models(tmp_path_factory.mktemp("models"), size="tiny", seed=0)


@pytest.fixture(autouse=True)
def _no_developer_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read `.env` from the working directory: run every test from an empty one so
    a developer's own .env cannot change what the tests see."""
    monkeypatch.chdir(tmp_path)
