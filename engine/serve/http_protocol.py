"""uvicorn's HTTP/1.1 protocol with a deadline for each request's headers.

uvicorn times out a kept-alive connection that sends nothing, but not one that sends its
headers a byte at a time, nor a new connection that sends nothing at all: each such client holds
a connection open forever, and enough of them use up the server's file descriptors before any
API key is checked. Here a connection that is waiting for a request's headers, from when it
opens or its previous response ends, is closed after :data:`HEADER_TIMEOUT_S`. A request whose
headers have arrived is never cut, however long its answer takes.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

#: Seconds a connection has to deliver a request's headers.
HEADER_TIMEOUT_S = 10.0


class HeaderDeadlineProtocol(H11Protocol):
    """:class:`H11Protocol` that closes a connection which takes too long to send a request's headers."""

    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._header_deadline = self.loop.call_later(HEADER_TIMEOUT_S, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        # h11 stays IDLE until a request's headers are complete: then no request is running.
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()
