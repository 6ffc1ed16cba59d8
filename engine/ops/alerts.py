"""Alerts: written where an operator looks, and sent where one is told.

Every alert goes to <data>/logs/alerts.log (one line each, never rotated away: alerts are
rare) and becomes an `alert.<kind>` event (the Operations page lists them); when configured
it is also POSTed as JSON to SEACO_ALERT_WEBHOOK_URL and mailed through SEACO_ALERT_SMTP.
A delivery that fails is logged and noted on the event; it never raises, because the check
that raised the alert must go on running.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import smtplib
import socket
import ssl
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from engine.config import Settings
from engine.store import Store, now_ms

log = logging.getLogger("seaco.alerts")
ALERT_LOG = "alerts.log"
SEND_TIMEOUT_S = 10


@dataclass
class Delivery:
    """Where an alert went: 'ok' or the error, per channel that is configured."""

    channels: dict[str, str] = field(default_factory=dict)


def send_webhook(url: str, payload: dict[str, Any], timeout_s: float = SEND_TIMEOUT_S) -> None:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        response.read()


def send_email(settings: Settings, subject: str, body: str) -> None:
    """smtps:// is TLS from the start; smtp:// upgrades with STARTTLS when the server offers
    it, and refuses to send a password over a connection that was not upgraded."""
    url = urllib.parse.urlsplit(settings.alert_smtp)
    if url.scheme not in ("smtp", "smtps") or not url.hostname:
        raise ValueError("SEACO_ALERT_SMTP must look like smtp://user:password@host:587")
    recipients = [a.strip() for a in settings.alert_email_to.split(",") if a.strip()]
    if not recipients:
        raise ValueError("SEACO_ALERT_EMAIL_TO names no recipient")
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.alert_email_from or f"seaco-asr@{socket.gethostname()}"
    message["To"] = ", ".join(recipients)
    message.set_content(body)
    user = urllib.parse.unquote(url.username or "")
    password = urllib.parse.unquote(url.password or "")
    if url.scheme == "smtps":
        client: smtplib.SMTP = smtplib.SMTP_SSL(
            url.hostname,
            url.port or 465,
            timeout=SEND_TIMEOUT_S,
            context=ssl.create_default_context(),
        )
    else:
        client = smtplib.SMTP(url.hostname, url.port or 587, timeout=SEND_TIMEOUT_S)
    with client:
        client.ehlo()
        secure = url.scheme == "smtps"
        if not secure and client.has_extn("starttls"):
            client.starttls(context=ssl.create_default_context())
            client.ehlo()
            secure = True
        if user:
            if not secure:
                raise ValueError("the mail server offers no STARTTLS; not sending the password")
            client.login(user, password)
        client.send_message(message)


def raise_alert(
    store: Store,
    settings: Settings,
    kind: str,
    message: str,
    *,
    data: dict[str, Any] | None = None,
    now: int | None = None,
) -> Delivery:
    """Record and send one alert (see the module docstring)."""
    at = now_ms() if now is None else now
    when = dt.datetime.fromtimestamp(at / 1000).astimezone().isoformat(timespec="seconds")
    delivery = Delivery()
    try:
        settings.log_dir.mkdir(parents=True, exist_ok=True)
        with open(settings.log_dir / ALERT_LOG, "a", encoding="utf-8") as f:
            f.write(f"{when} {kind} {message}\n")
        delivery.channels["alert log"] = "ok"
    except OSError as exc:
        delivery.channels["alert log"] = f"failed: {exc}"
    log.warning("ALERT %s: %s", kind, message)
    payload = {
        "kind": kind,
        "message": message,
        "at": when,
        "host": socket.gethostname(),
        "data": data or {},
    }
    if settings.alert_webhook_url:
        delivery.channels["webhook"] = _attempt(
            lambda: send_webhook(settings.alert_webhook_url, payload), "webhook"
        )
    if settings.alert_smtp:
        delivery.channels["e-mail"] = _attempt(
            lambda: send_email(settings, f"[seaco-asr] {kind}", f"{when}\n\n{message}\n"),
            "e-mail",
        )
    store.add_event(
        f"alert.{kind}",
        message,
        level="warning",
        now=at,
        data={**(data or {}), "delivery": delivery.channels},
    )
    return delivery


def _attempt(send, channel: str) -> str:
    try:
        send()
    except Exception as exc:  # a mail server or webhook being down must not stop the check
        log.error("alert %s could not be sent: %s", channel, exc)
        return f"failed: {exc}"
    return "ok"
