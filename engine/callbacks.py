"""Job-completion callbacks: a job submitted with a `callback_url` is announced there when it
ends (done, failed or cancelled), so API clients need not poll.

The worker's operations pool runs `deliver_due` every DELIVER_EVERY_S: each due callback is
one POST of the job's JSON (the same document as GET /api/v1/jobs/{id}), answered by any
2xx; anything else (another status, a redirect, a refused connection, a timeout after
TIMEOUT_S) is tried again after ATTEMPT_DELAYS_S, then given up with a `callback.failed`
event. Delivery state lives in jobs.db (schema/007), so a restarted worker carries on where
the last one stopped. That also makes delivery at-least-once: a worker killed between the
receiver's answer and the database write sends again, so receivers should treat the job id
(X-Seaco-Job) as the key. With SEACO_CALLBACK_SECRET set, X-Seaco-Signature carries
`sha256=` + the HMAC-SHA256 of the exact body, which receivers can check.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from apscheduler.schedulers.base import BaseScheduler

from engine import __version__
from engine.config import Settings
from engine.cron import ensure_ops_executor
from engine.errors import InvalidCallbackUrlError
from engine.jobs import job_document
from engine.store import Store, now_ms

log = logging.getLogger("seaco.callbacks")
MAX_URL_CHARS = 2000
TIMEOUT_S = 10
DELIVER_EVERY_S = 2
# Wait after the 1st, 2nd, ... failed attempt; after the last delay's attempt fails, give up
# (six attempts over about seven hours: a receiver down for a deploy or a night still gets it).
ATTEMPT_DELAYS_S = (30, 120, 600, 3600, 6 * 3600)
MAX_ATTEMPTS = len(ATTEMPT_DELAYS_S) + 1


def check_callback_url(url: str | None, settings: Settings) -> str | None:
    """The callback URL to store (None for none), or InvalidCallbackUrlError saying why not.
    Checked before the upload is read, so a typo costs the client no upload time."""
    if url is None or not url.strip():
        return None
    url = url.strip()
    if len(url) > MAX_URL_CHARS:
        raise InvalidCallbackUrlError(f"callback_url is longer than {MAX_URL_CHARS} characters.")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise InvalidCallbackUrlError("callback_url must not contain spaces or control characters.")
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise InvalidCallbackUrlError(f"callback_url is not a valid URL: {exc}.") from None
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise InvalidCallbackUrlError(
            "callback_url must be an http:// or https:// URL with a host name, "
            "e.g. https://example.com/asr-done."
        )
    allowed = settings.callback_host_list
    if allowed and host not in allowed:
        raise InvalidCallbackUrlError(
            f"callback_url's host {host!r} is not one this service may call "
            f"(SEACO_CALLBACK_HOSTS: {', '.join(allowed)})."
        )
    return url


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def callback_view(row: dict[str, Any] | None) -> dict[str, Any] | None:
    """A callback's delivery as the API and the job page show it."""
    if row is None:
        return None
    if row["delivered_at"] is not None:
        state = "delivered"
    elif row["gave_up_at"] is not None:
        state = "failed"
    else:
        state = "pending"
    return {
        "url": row["url"],
        "state": state,
        "attempts": row["attempts"],
        "delivered_at": row["delivered_at"],
        "next_attempt_at": row["next_at"] if state == "pending" else None,
        "last_status": row["last_status"],
        "last_error": row["last_error"],
    }


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a delivery: following it would re-send the job's text
    to wherever the receiver points (and urllib turns a redirected POST into a GET)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects())


def post_json(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST and return the HTTP status (a non-2xx answer is a status too, not an error)."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _OPENER.open(request, timeout=TIMEOUT_S) as response:
            response.read(65_536)  # let the receiver finish; the answer itself is not used
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@dataclass(frozen=True)
class Attempt:
    job_id: int
    attempt: int
    status: int | None
    error: str | None  # None: delivered
    gave_up: bool = False


def deliver_due(store: Store, settings: Settings, now: int | None = None) -> list[Attempt]:
    """Make one attempt at every callback that is due; record each outcome."""
    attempts = []
    for due in store.callbacks_due(now):
        job = store.get(due.job_id)
        body = json.dumps(job_document(job), ensure_ascii=False).encode()
        number = due.attempts + 1
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": f"seaco-asr/{__version__}",
            "X-Seaco-Event": f"job.{job.state.value}",
            "X-Seaco-Job": str(job.id),
            "X-Seaco-Attempt": str(number),
        }
        if settings.callback_secret:
            headers["X-Seaco-Signature"] = signature(settings.callback_secret, body)
        status: int | None = None
        try:
            status = post_json(due.url, body, headers)
            error = None if 200 <= status < 300 else f"HTTP {status}"
        except Exception as exc:  # refused, timed out, DNS, TLS: all worth another try
            error = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
        at = now_ms() if now is None else now
        gave_up = error is not None and number >= MAX_ATTEMPTS
        next_at = None
        if error is not None and not gave_up:
            next_at = at + ATTEMPT_DELAYS_S[number - 1] * 1000
        store.record_callback_attempt(
            job.id,
            attempts=number,
            status=status,
            error=error,
            next_at=next_at,
            gave_up=gave_up,
            now=at,
        )
        if gave_up:
            store.add_event(
                "callback.failed",
                f"Gave up announcing job {job.id} to {due.url} after {number} attempts: {error}.",
                level="warning",
                job_id=job.id,
                data={"url": due.url, "error": error},
            )
        attempts.append(Attempt(job.id, number, status, error, gave_up))
    return attempts


def register(scheduler: BaseScheduler, settings: Settings, store: Store) -> None:
    """Deliver due callbacks every DELIVER_EVERY_S on the operations pool, one run at a time
    (a slow receiver delays other callbacks, never a heartbeat or a job)."""

    def run() -> None:
        try:
            for a in deliver_due(store, settings):
                if a.error is not None:
                    log.warning("callback for job %d, attempt %d: %s", a.job_id, a.attempt, a.error)
        except Exception:  # the database is busy: the next run tries again
            log.exception("callback delivery failed")

    scheduler.add_job(
        run,
        "interval",
        seconds=DELIVER_EVERY_S,
        id="callbacks.deliver",
        replace_existing=True,
        executor=ensure_ops_executor(scheduler),
        coalesce=True,
        max_instances=1,
    )
