"""The wheel is the service: built from the source tree, installed without the checkout, and
`python -m engine serve` run from an unrelated directory serves the dashboard, applies the
migrations and transcribes a file (issue "Structure", item 7)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import pytest

from engine.waiting import free_port
from tests.audio_fixtures import tone, write_audio
from tests.conftest import make_settings, model_overrides
from tests.procs import get_health, stop, wait_for

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "data", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "models"
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of the tree (a stale build/ folder cannot leak into it)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    shutil.copytree(ROOT, source, ignore=_NOT_SOURCE)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(work / "dist"), str(source)],
        check=True, capture_output=True,
    )  # fmt: skip
    (built,) = (work / "dist").glob("seaco_asr-*.whl")
    return built


def test_the_wheel_carries_the_app_files_and_migrations(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in ROOT.glob("schema/*.sql"):
        assert f"engine/_app/schema/{path.name}" in names
    for path in ROOT.glob("pages/*.py"):
        assert f"engine/_app/pages/{path.name}" in names
    assert {"engine/_app/dashboard.py", "engine/_app/server.py", "engine/__main__.py"} <= names
    assert not any(name.startswith(("tests/", "bench/")) for name in names)


def test_installed_wheel_serves_from_any_directory(wheel, tmp_path, tiny_models):
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
         str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    settings = make_settings(
        tmp_path / "data",
        port=str(free_port()),
        device="cpu",
        ncpu="1",
        **model_overrides(tiny_models),
    )
    # The installed copy comes first on the path, and the checkout is not on it at all.
    env = settings.child_env({"PYTHONPATH": str(site), "PYTHONUNBUFFERED": "1"})
    where = subprocess.run(
        [sys.executable, "-c", "import engine.app_files as a; print(a.APP_DIR)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()) == site / "engine" / "_app"

    log = open(tmp_path / "serve.log", "ab")  # closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "serve"],
        cwd=elsewhere,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{settings.port}"
    try:
        wait_for(lambda: get_health(url)[1].get("status") == "ok", timeout=180)
        with urllib.request.urlopen(url + "/", timeout=10) as page:
            assert page.status == 200 and b"<html" in page.read().lower()

        clip = write_audio(tmp_path / "tone.wav", tone(2.0), 16000, "wav")
        job = _post_file(url + "/api/v1/jobs", clip)
        wait_for(lambda: _get(f"{url}/api/v1/jobs/{job['id']}")["state"] == "done", timeout=180)
    finally:
        stop(proc)
        log.close()
    assert not list(elsewhere.iterdir()), "serve wrote into its working directory"


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def _post_file(url: str, path: Path) -> dict:
    boundary = "seacoboundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"'
            "\r\nContent-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + path.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)
