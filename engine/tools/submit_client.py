"""`seaco submit`: queue files through the HTTP API, wait politely, collect the results.

A full queue (503) is not an error for a client with patience: it waits the server's
Retry-After and tries again, so a thousand files can be handed to a box whose queue holds
twenty. Progress goes to stderr (tqdm); transcripts go to stdout or to files.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from tqdm import tqdm

from engine.config import Settings
from engine.errors import ApiError

FINAL_STATES = ("done", "failed", "cancelled")
MAX_RETRY_WAIT_S = 60


def say(message: str) -> None:
    """Status lines go to stderr, beside the progress bars; transcripts go to stdout."""
    tqdm.write(message, file=sys.stderr)


@dataclass
class Submitted:
    path: Path
    job_id: int
    state: str = "queued"
    error: str | None = None


def default_url(settings: Settings) -> str:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{host}:{settings.port}"


class ApiClient:
    def __init__(self, base_url: str, token: str | None = None, timeout_s: float = 60):
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.timeout_s = timeout_s

    def _check(self, response: requests.Response) -> Any:
        if response.status_code >= 400:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:300]
            raise ApiError(f"HTTP {response.status_code}: {message}")
        return response

    def submit(self, path: Path, hotwords: str | None, sleep=time.sleep) -> int:
        """Queue one file, waiting out a full queue. Returns the job id."""
        return int(self.submit_job(path, hotwords, sleep)["id"])

    def submit_job(self, path: Path, hotwords: str | None, sleep=time.sleep) -> dict[str, Any]:
        """Queue one file, waiting out a full queue. Returns the job as the 202 answer has it
        (GET /api/v1/jobs/{id}'s document, `hotword_warnings` included)."""
        while True:
            with open(path, "rb") as stream:
                response = self.session.post(
                    f"{self.base_url}/api/v1/jobs",
                    files={"file": (path.name, stream)},
                    data={"hotwords": hotwords} if hotwords else None,
                    timeout=self.timeout_s,
                )
            if response.status_code != 503:
                job: dict[str, Any] = self._check(response).json()
                return job
            wait = min(int(response.headers.get("Retry-After", "5")), MAX_RETRY_WAIT_S)
            say(f"queue full; retrying {path.name} in {wait} s")
            sleep(wait)

    def job(self, job_id: int) -> dict[str, Any]:
        url = f"{self.base_url}/api/v1/jobs/{job_id}"
        return self._check(self.session.get(url, timeout=self.timeout_s)).json()

    def transcript(self, job_id: int, fmt: str) -> bytes:
        url = f"{self.base_url}/api/v1/jobs/{job_id}/transcript"
        response = self.session.get(url, params={"format": fmt}, timeout=self.timeout_s)
        return self._check(response).content


def submit_files(
    client: ApiClient,
    paths: list[Path],
    *,
    hotwords: str | None = None,
    wait: bool = False,
    fmt: str | None = None,
    out_dir: Path | None = None,
    poll_s: float = 0.5,
) -> list[Submitted]:
    jobs = []
    for path in tqdm(paths, desc="submitting", unit="file", disable=len(paths) < 2):
        queued = client.submit_job(path, hotwords)
        jobs.append(Submitted(path, int(queued["id"])))
        say(f"job {jobs[-1].job_id}: queued ({path})")
        _say_hotword_warnings(jobs[-1].job_id, queued)
    if not wait:
        return jobs
    pending = list(jobs)
    with tqdm(total=len(jobs), desc="transcribing", unit="file", disable=len(jobs) < 2) as bar:
        while pending:
            for item in list(pending):
                job = client.job(item.job_id)
                if job["state"] not in FINAL_STATES:
                    continue
                item.state, item.error = job["state"], job.get("error")
                pending.remove(item)
                bar.update(1)
                if item.state == "done":
                    _say_hotword_warnings(item.job_id, job)  # now with the default list merged
                    _deliver(client, item, job, fmt, out_dir)
                else:
                    say(f"job {item.job_id}: {item.state}: {item.error or ''}")
            if pending:
                time.sleep(poll_s)
    return jobs


def _say_hotword_warnings(job_id: int, job: dict[str, Any]) -> None:
    """What the service left out of the hotwords and why (hotword_vocabulary.select_hotwords)."""
    for warning in job.get("hotword_warnings") or []:
        say(f"job {job_id}: hotwords: {warning}")


def _deliver(client: ApiClient, item: Submitted, job: dict, fmt: str | None, out_dir) -> None:
    if fmt is None:
        tqdm.write(f"job {item.job_id}: {item.path.name}\n{job.get('text') or ''}")
        return
    data = client.transcript(item.job_id, fmt)
    if out_dir is None:
        tqdm.write(data.decode("utf-8", errors="replace"))
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{item.path.stem}.{fmt}"
    target.write_bytes(data)
    say(f"job {item.job_id}: wrote {target}")
