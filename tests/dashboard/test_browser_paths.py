"""Issue 16's key paths in a real headless Chromium against a running `seaco serve` (the
shared tiny_service): a reload keeps the job on Transcribe, a click on a Jobs row opens the
job, the Jobs list shows its whole page without a scroll box of its own and refreshes by
itself while a job is queued, and the Batch page keeps its batch in the address."""

from __future__ import annotations

import os
import re
import signal
import uuid

import pytest
import requests

from engine.store import open_store
from tests.audio_fixtures import tone, write_audio
from tests.browser import needs_chromium
from tests.conftest import SERVICE_TOKEN
from tests.procs import freeze_outside_a_write, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.browser, needs_chromium]
AUTH = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
ROW_PX = 35  # st.dataframe's row height (the header is one row too)


def submit(base: str, path, name: str) -> int:
    with open(path, "rb") as f:
        r = requests.post(
            f"{base}/api/v1/jobs", files={"file": (name, f)}, headers=AUTH, timeout=30
        )
    assert r.status_code == 202, r.text
    return r.json()["id"]


def finished(cfg, job_id: int):
    store = open_store(cfg.db_path)
    return wait_for(lambda: (j := store.get(job_id)).state.is_final and j, timeout=120,
                    what=f"job {job_id} to finish")  # fmt: skip


@pytest.fixture
def clip(tmp_path):
    return write_audio(tmp_path / "clip.wav", tone(1.5, freq=330), 16000, "wav")


def test_a_reload_keeps_the_job_on_transcribe(tiny_service, clip):
    from playwright.sync_api import expect

    from tests.browser import browser_page

    cfg, base, _tmp, _pid = tiny_service
    name = f"reload-{uuid.uuid4().hex[:6]}.wav"
    named = clip.with_name(name)
    named.write_bytes(clip.read_bytes())
    with browser_page() as page:
        page.goto(base)
        page.get_by_role("heading", name="Transcribe a file").wait_for(timeout=60_000)
        page.locator("input[type=file]").set_input_files(str(named))
        page.get_by_role("button", name="Transcribe").click()
        expect(page).to_have_url(re.compile(r"/\?job=\d+$"), timeout=30_000)
        job_id = int(page.url.rsplit("=", 1)[1])
        expect(page.get_by_text("Done in")).to_be_visible(timeout=120_000)
        page.reload()
        heading = page.get_by_role("link", name=f"Job {job_id}: {name}")
        expect(heading).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Done in")).to_be_visible()
        expect(page.get_by_role("textbox", name="Transcript")).to_be_visible()
        assert heading.get_attribute("href") == f"jobs?job={job_id}"
        assert page.url.endswith(f"/?job={job_id}")
    assert open_store(cfg.db_path).get(job_id).original_name == name


def test_clicking_a_jobs_row_opens_the_job(tiny_service, clip):
    from playwright.sync_api import expect

    from tests.browser import browser_page

    cfg, base, _tmp, _pid = tiny_service
    tag = uuid.uuid4().hex[:6]
    ids = [submit(base, clip, f"row-{tag}-{i}.wav") for i in range(12)]
    for job_id in ids:
        finished(cfg, job_id)
    with browser_page(viewport={"width": 1400, "height": 1000}) as page:
        page.goto(f"{base}/jobs")
        page.get_by_role("textbox", name="File name contains").fill(f"row-{tag}")
        page.keyboard.press("Enter")
        expect(page.get_by_text("12 jobs match")).to_be_visible(timeout=60_000)
        grid = page.locator("[data-testid='stDataFrame']")
        expect(grid.locator("[role=gridcell]", has_text=f"row-{tag}-0.wav")).to_have_count(1)
        box = grid.bounding_box()
        # all 12 rows and the header are on the page: no scroll box inside it (the default
        # height shows 10 rows and scrolls)
        assert box["height"] >= 13 * ROW_PX
        # newest first: the fourth row is job ids[-4]; click its file name cell
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + ROW_PX * 4 + ROW_PX / 2)
        expect(page.get_by_role("heading", name=f"Job {ids[-4]}: row-{tag}-8.wav")).to_be_visible(
            timeout=30_000
        )
        expect(page).to_have_url(re.compile(rf"/jobs\?job={ids[-4]}$"))


def test_the_jobs_list_refreshes_while_a_job_is_queued(tiny_service, clip):
    from playwright.sync_api import expect

    from tests.browser import browser_page

    cfg, base, _tmp, _pid = tiny_service
    store = open_store(cfg.db_path)
    tag = uuid.uuid4().hex[:6]
    worker = store.latest_worker()["pid"]
    freeze_outside_a_write(worker, cfg.db_path)  # the queued job stays queued meanwhile
    try:
        first = submit(base, clip, f"live-{tag}-a.wav")
        with browser_page() as page:
            page.goto(f"{base}/jobs")
            page.get_by_role("textbox", name="File name contains").fill(f"live-{tag}")
            page.keyboard.press("Enter")
            expect(page.get_by_text("1 jobs match")).to_be_visible(timeout=60_000)
            submit(base, clip, f"live-{tag}-b.wav")  # nothing is touched on the page after
            expect(page.get_by_text("2 jobs match")).to_be_visible(timeout=30_000)
            os.kill(worker, signal.SIGCONT)
            finished(cfg, first)
            grid = page.locator("[data-testid='stDataFrame']")
            done = grid.locator("[role=gridcell]", has_text=re.compile(r"\bdone$"))
            expect(done).to_have_count(2, timeout=60_000)
    finally:
        os.kill(worker, signal.SIGCONT)


def test_the_batch_page_keeps_its_batch_in_the_address(tiny_service, clip):
    from playwright.sync_api import expect

    from tests.browser import browser_page

    _cfg, base, _tmp, _pid = tiny_service
    with open(clip, "rb") as a, open(clip, "rb") as b:
        r = requests.post(
            f"{base}/api/v1/batches",
            files=[("files", ("one.wav", a)), ("files", ("two.wav", b))],
            headers=AUTH,
            timeout=30,
        )
    assert r.status_code == 202, r.text
    batch_id = r.json()["batch_id"]
    with browser_page() as page:
        page.goto(f"{base}/batch?batch={batch_id}")
        expect(page.get_by_text("2 of 2 finished")).to_be_visible(timeout=120_000)
        page.reload()
        expect(page.get_by_text("2 of 2 finished")).to_be_visible(timeout=60_000)
        assert page.url.endswith(f"/batch?batch={batch_id}")
