"""Upload size limit for /api and /v1: a 413 `audio_too_large` that the client receives.

The limit is SEACO_MAX_UPLOAD_MB plus `MULTIPART_OVERHEAD` (the form's field headers and
boundaries), counted in bytes of the HTTP body:

- a request that declares a Content-Length over the limit is refused before its body is
  read (no byte of it reaches the app);
- a request without one (`Transfer-Encoding: chunked`) is counted while it streams and
  stopped the moment it passes the limit, so no client can make the server spool more than
  the limit to disk.

Why the rest of the body is drained before the answer: a server that answers and closes
while the client is still sending leaves unread bytes in its socket, and the kernel then
resets the connection (RST) instead of closing it; the client's TCP stack drops what it had
not yet read, so the client sees "connection reset" (curl exit 56) instead of the 413 and
its JSON. So the limiter first reads and discards what the client is still sending, then
answers (with `Connection: close`): the 413 then always arrives.

The bound on that drain: at most `DRAIN_FACTOR` (4) times the limit, and at most
`DRAIN_MAX_S` (30 s, nginx's lingering_time) of reading. A client that overshoots by a few
times the limit (a 20 MB file against a 5 MB limit) gets a clean 413; one that sends more
(10 GB) costs the server at most 4x the limit of discarded bandwidth and 30 s of one idle
coroutine, then it gets the 413 followed by a closed connection, which it may see as a
reset. A declared Content-Length the bound cannot cover is not drained at all (reading part
of it would not prevent the reset). Neither is a request sent with `Expect: 100-continue`
(curl does so for large uploads): its client waits for the server's go-ahead before sending
the body, so the 413 is answered at once and the body never travels.

On /api the 413 has the jobs API's body, on /v1 OpenAI's (engine/web/error_handlers.py).
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine import web_process
from engine.errors import AudioTooLargeError
from engine.web.error_handlers import ErrorShape

MULTIPART_OVERHEAD = 1024 * 1024  # field headers and boundaries around the file itself
DRAIN_FACTOR = 4  # read and discard at most this many times the limit after refusing
DRAIN_MAX_S = 30.0  # and for at most this long


def too_large() -> AudioTooLargeError:
    mb = web_process.settings().max_upload_mb
    return AudioTooLargeError(f"The upload is larger than the {mb} MB limit (SEACO_MAX_UPLOAD_MB).")


async def drain(receive: Receive, max_bytes: int) -> bool:
    """Read and discard the request body until it ends, `max_bytes` have been read, the
    client disconnects or DRAIN_MAX_S pass. True when the body ended (all of it was read)."""
    drained = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DRAIN_MAX_S
    try:  # asyncio.timeout() would read better, but is Python 3.11+; we support 3.10
        while drained <= max_bytes:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            message = await asyncio.wait_for(receive(), remaining)
            if message["type"] != "http.request":
                return False  # http.disconnect
            drained += len(message.get("body", b""))
            if not message.get("more_body", False):
                return True
    except asyncio.TimeoutError:  # not the builtin TimeoutError on 3.10
        pass
    return False


class BodyLimit:
    """ASGI middleware in front of one API app: 413 `audio_too_large`, in that API's error
    `shape`, for bodies over the upload limit (see the module docstring)."""

    def __init__(self, app: ASGIApp, shape: ErrorShape):
        self.app = app
        self.shape = shape

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = web_process.settings().max_upload_bytes + MULTIPART_OVERHEAD
        headers = dict(scope["headers"])
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            expects_continue = headers.get(b"expect", b"").lower() == b"100-continue"
            if not expects_continue and int(length) <= DRAIN_FACTOR * limit:
                await drain(receive, DRAIN_FACTOR * limit)
            await self._refuse(scope, receive, send)
            return

        received = 0
        over = False  # the body passed the limit: the answer is 413
        ended = False  # the client has sent its whole body
        started = False

        async def counting_receive() -> Message:
            nonlocal received, over, ended
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                ended = not message.get("more_body", False)
                if received > limit:
                    over = True
                    raise too_large()  # stops the framework reading; its answer is dropped
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if over:
                return  # whatever the app answers to the aborted read, the answer is 413
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not over:
                raise
        if over and not started:
            if not ended:
                await drain(receive, DRAIN_FACTOR * limit)
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = self.shape.response_for(too_large())
        response.headers["Connection"] = "close"
        await response(scope, receive, send)
