"""Running the app with uvicorn, with bounds on what idle or slow clients can hold.

uvicorn has a keep-alive timeout (idle time between requests) and a concurrency limit, but
no limit on how long a client may take to send a request's headers: a connection that sends
nothing, or a byte now and then, is kept forever. 21,000 such connections exhausted the file
descriptors and made /healthz time out (issue 8). `HeaderTimeoutH11Protocol` closes a
connection whose request headers are not complete `timeout_headers` seconds after it opened
(or after the first byte of the next request on a kept-alive connection).
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from qa.config import Settings


class HeaderTimeoutH11Protocol(H11Protocol):
    timeout_headers: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        self._start_header_timer()

    def _waiting_for_request(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _start_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.timeout_headers, self._headers_late)

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self._waiting_for_request() and not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._waiting_for_request():  # the first bytes of a (next) request
            self._start_header_timer()
        super().data_received(data)

    def handle_events(self) -> None:
        super().handle_events()
        if not self._waiting_for_request():  # a request's headers are complete
            self._stop_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)


def run(app: Any, settings: Settings, *, host: str, port: int) -> None:
    """Serve app until interrupted, with the limits of settings (QA_LIMIT_CONCURRENCY, ...)."""

    class Protocol(HeaderTimeoutH11Protocol):
        timeout_headers = settings.timeout_headers

    uvicorn.run(
        app, host=host, port=port, http=Protocol,
        # Past this many connections or running requests, uvicorn answers 503 at once
        # instead of queueing: memory and file descriptors stay bounded.
        limit_concurrency=settings.limit_concurrency,
        # Keep-alive outlasts clients' idle expiry (httpx: 5 s, uvicorn's default too); when
        # both are equal, a busy client can reuse a connection the server is closing and see
        # a reset.
        timeout_keep_alive=settings.timeout_keep_alive,
        backlog=settings.backlog,
    )
