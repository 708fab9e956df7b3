"""ASGI middleware and helpers at the edge: the body limit, a JSON-safe copy of errors, 422 for
every unparseable JSON body, and the security headers of the page."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException  # FastAPI's is a subclass; this one is raised
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa.api.schemas import MAX_BODY_BYTES


def safe(value: Any) -> Any:
    """A JSON-safe copy: non-finite floats and unencodable strings become their repr."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {str(safe(k)): safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [safe(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)


def safe_errors(errors: Any) -> Any:
    """FastAPI's validation errors, made JSON-safe (they echo inputs JSON cannot carry)."""
    return safe(jsonable_encoder(errors, custom_encoder={float: lambda f: safe(f)}))


def _unparseable_reason(exc: BaseException) -> str | None:
    """Why Python's JSON parser refused a body, for the errors that are not JSONDecodeError."""
    if isinstance(exc, UnicodeDecodeError):
        return f"the body is not valid UTF-8 ({exc.reason} at byte {exc.start})"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, ValueError):
        if "integer string conversion" in str(exc):  # its advice is for the server's Python
            return f"an integer literal has more than {sys.get_int_max_str_digits()} digits"
        return str(exc)
    return None


class JSONBodyRoute(APIRoute):
    """A route whose JSON body, when Python cannot parse it (invalid UTF-8, nesting deeper than
    the parser recurses, an integer literal over 4,300 digits), is a 422 `json_invalid` like
    any other malformed JSON. FastAPI turns only JSONDecodeError into a 422 and answers these
    400 "There was an error parsing the body" before the key check runs; as a
    RequestValidationError they also go through the app's handler, so 401 still comes first."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except HTTPException as exc:
                reason = _unparseable_reason(exc.__cause__) if exc.__cause__ else None
                if exc.status_code != 400 or reason is None:
                    raise
                raise RequestValidationError([{
                    "type": "json_invalid", "loc": ("body",), "msg": "JSON decode error",
                    "input": {}, "ctx": {"error": reason},
                }]) from exc.__cause__

        return route_handler


class BodyLimitMiddleware:
    """Answer 413 to a body over max_bytes: at once when Content-Length says so, else while
    counting what arrives (a chunked body has no Content-Length). Bodies are small, so the
    accepted ones are buffered and handed to the app whole."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None:
            if not length.strip().isdigit():
                await self._reply(scope, receive, send, 400, "invalid Content-Length header")
                return
            if int(length) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"request body is larger than {self.max_bytes} bytes"
        await self._reply(scope, receive, send, 413, detail)

    @staticmethod
    async def _reply(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
        await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)


# The page's policy: its own scripts and styles only, no inline code, no other origin; the API
# it calls is the same origin. frame-ancestors: the page cannot be framed (clickjacking).
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class SecurityHeadersMiddleware:
    """nosniff and no referrer on every response; a strict CSP unless the route set one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                headers.setdefault("Content-Security-Policy", PAGE_CSP)
            await send(message)

        await self.app(scope, receive, send_with_headers)
