"""Upload size limit for /api and /v1, enforced before the body is read.

A request that declares a Content-Length over the limit is refused before one byte of its
body is read. A request without one (Transfer-Encoding: chunked) or with a false one is
counted while it streams and refused the moment it passes the limit, so no client can make
the server spool more than SEACO_MAX_UPLOAD_MB (plus multipart overhead) to disk.
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine import web_process
from engine.web.error_handlers import error_body

MULTIPART_OVERHEAD = 1024 * 1024  # field headers and boundaries around the file itself


class _BodyTooLarge(Exception):
    """Raised from `receive` to stop the framework reading (it turns it into some error
    response, which the limiter replaces with its 413)."""


class BodyLimit:
    """ASGI middleware: 413 `audio_too_large` for bodies over the upload limit."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = web_process.settings().max_upload_bytes + MULTIPART_OVERHEAD
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            await self._refuse(scope, receive, send)
            return

        received = 0
        too_large = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    too_large = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if too_large:
                return  # whatever the app answers to the aborted read, the answer is 413
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _BodyTooLarge:
            pass
        except Exception:
            if not too_large:
                raise
        if too_large and not started:
            await self._refuse(scope, receive, send)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send) -> None:
        mb = web_process.settings().max_upload_mb
        body = error_body(
            "audio_too_large",
            f"The upload is larger than the {mb} MB limit (SEACO_MAX_UPLOAD_MB).",
            413,
        )
        # The rest of the body is never read: closing the connection is cheaper than draining.
        await JSONResponse(body, status_code=413, headers={"Connection": "close"})(
            scope, receive, send
        )
