"""Token auth for both APIs (/api and /v1): a FastAPI dependency on every route."""

from __future__ import annotations

import hmac

from fastapi import Request
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine import web_process


def require_token(request: Request) -> None:
    """Bearer-token auth when SEACO_API_TOKENS is set (none set: every request passes).
    Every configured token is compared in constant time (hmac.compare_digest); a missing or
    wrong one raises a 401 HTTPException, answered with `WWW-Authenticate: Bearer`."""
    tokens = web_process.settings().token_list
    if not tokens:
        return
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    ok = scheme.lower() == "bearer" and any(
        hmac.compare_digest(given.strip().encode(), t.encode()) for t in tokens
    )
    if not ok:
        raise StarletteHTTPException(401, "A valid API token is required (Authorization: Bearer).")
