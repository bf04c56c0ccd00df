"""uvicorn's HTTP/1.1 protocol with a deadline for each request's headers and a bound on its chunks.

uvicorn times out a kept-alive connection that sends nothing, but not one that sends its
headers a byte at a time, nor a new connection that sends nothing at all: each such client holds
a connection open forever, and enough of them use up the server's file descriptors before any
API key is checked. Here a connection that is waiting for a request's headers, from when it
opens or its previous response ends, is closed after :data:`HEADER_TIMEOUT_S`; so is one still
sending the rest of a body that its answer did not wait for. A request whose headers have arrived
is never cut while it is being answered, however long its answer takes: the app bounds the time
its body may take to arrive (``engine.serve.app.BODY_TIMEOUT_S``, 408).

A chunked body with a chunk of which more than :data:`MAX_CHUNK_BYTES` are still to come is
refused with a 400 at once, as a malformed chunk-size line is: no body this server reads is that
large, and waiting for such a chunk would only hold the connection.

A client that leaves in the middle of an answer is noticed at the first write that finds its
connection closing: the request is marked as disconnected there and then (the app stops its
stream) and nothing more is written to the connection. Without it every write of a burst (a
stream of ``n`` choices sends ``n`` chunks at a time) until the event loop reports the lost
connection went to the closed socket, and asyncio logged ``socket.send() raised exception.``
from the fifth on.

A client may shut down its sending side once its request is sent (curl with some options, netcat,
scripts): the end of its input then says only that no further request will come, and its answer
is still sent, on a connection closed after it. uvicorn closed the connection at that end of
input and dropped the request. From the server's side a client that closed its socket looks the
same until data reaches it, which it answers with a reset: so an HTTP/1.1 client whose answer has
not begun is sent an interim ``100 Continue`` (which every HTTP/1.1 client accepts before any
answer), and the socket is checked for that reset, at growing intervals, until the answer begins.
A client found gone is disconnected as before, and the app stops its work. A request cut short by
the end of its input (headers or a body not all sent) is answered 400 and closed.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from typing import Any, cast

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

#: Seconds a connection has to deliver a request's headers.
HEADER_TIMEOUT_S = 10.0
#: The largest chunk of a chunked request body, in bytes: the most the server ever reads of a body
#: (``engine.serve.app.DRAIN_LIMIT_BYTES``).
MAX_CHUNK_BYTES = 64 << 20
#: Seconds from a client's end of input to the first check of whether it is still there, and the
#: most between two checks: the check waits for the reset a closed socket answers the interim
#: response with, which takes a round trip.
GONE_CHECK_FIRST_S = 0.01
GONE_CHECK_MAX_S = 1.0


class HeaderDeadlineProtocol(H11Protocol):
    """:class:`H11Protocol` that closes a connection which takes too long to send a request's headers
    and refuses a chunk larger than :data:`MAX_CHUNK_BYTES`."""

    _header_deadline: asyncio.TimerHandle | None = None
    _gone_check: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(cast(asyncio.Transport, _WhileOpen(transport, self._client_gone)))
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.SEND_BODY and self._pending_chunk() > MAX_CHUNK_BYTES:
            self.send_400_response(f"a chunk of the request body is larger than {MAX_CHUNK_BYTES} bytes")

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._stop_gone_check()
        super().connection_lost(exc)

    def eof_received(self) -> bool:  # type: ignore[override]  # asyncio's is bool | None; uvicorn's None
        """The client sent all it will send: answer a request that arrived whole (True keeps the
        sending side open), refuse one cut short with a 400, and close an idle connection."""
        cycle = self.cycle
        waiting = cycle is not None and not cycle.response_complete and not cycle.disconnected
        if waiting and self.conn.their_state in (h11.DONE, h11.MUST_CLOSE):
            # No further request can come; a request pipelined behind this one is not read either.
            cycle.keep_alive = False
            if not cycle.response_started and self.conn.their_http_version == b"1.1":
                self._probe()
            # An HTTP/1.0 client must not be sent a 1xx: one that closed its socket is noticed
            # when its answer is written, as one whose answer has begun is.
            return True
        if self.conn.their_state is h11.SEND_BODY or self.conn.trailing_data[0]:
            self.send_400_response("the client shut down its sending side before the whole request arrived")
            self._client_gone()
        return False

    def _client_gone(self) -> None:
        # What connection_lost does for the request, which the event loop calls only later.
        if self.cycle is not None and not self.cycle.response_complete and not self.cycle.disconnected:
            self.cycle.disconnected = True
            self.cycle.message_event.set()

    def send_400_response(self, msg: str) -> None:
        """Answer 400 with an OpenAI error body and close; only close when an answer has begun."""
        if self.transport.is_closing():
            return
        if self.conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            self.transport.close()
            return
        body = json.dumps({"error": {"message": msg, "type": "invalid_request_error", "param": None, "code": None}})
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        for event in (
            h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
            h11.Data(data=body.encode()),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event) or b"")
        self.transport.close()

    def _probe(self) -> None:
        self.transport.write(
            self.conn.send(h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")) or b""
        )
        # uvicorn would send a second 100 to a client that asked for one and whose body is read later.
        self.cycle.waiting_for_100_continue = False
        self._gone_check = self.loop.call_later(GONE_CHECK_FIRST_S, self._check_gone, GONE_CHECK_FIRST_S)

    def _check_gone(self, waited: float) -> None:
        self._gone_check = None
        cycle = self.cycle
        if self.transport.is_closing() or cycle.response_started or cycle.disconnected:
            return
        sock = self.transport.get_extra_info("socket")
        # A reset is kept as the socket's pending error (EPIPE once the client's end of input came).
        if sock is not None and sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            self.transport.close()  # connection_lost then disconnects the request
            return
        delay = min(waited * 2, GONE_CHECK_MAX_S)
        self._gone_check = self.loop.call_later(delay, self._check_gone, delay)

    def _stop_gone_check(self) -> None:
        if self._gone_check is not None:
            self._gone_check.cancel()
            self._gone_check = None

    def _pending_chunk(self) -> int:
        # h11 reads the chunk-size line but keeps the size to itself (its chunked reader's count of
        # the bytes still due in the current chunk); 0 when the body is not chunked.
        count = getattr(getattr(self.conn, "_reader", None), "_bytes_in_chunk", 0)
        return count if isinstance(count, int) else 0

    def _arm(self) -> None:
        self._disarm()
        self._header_deadline = self.loop.call_later(HEADER_TIMEOUT_S, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        # h11 stays IDLE until a request's headers are complete: then no request is running. A
        # request still sending a body after its answer ended is not running either.
        waiting = self.conn.their_state is h11.IDLE
        leftover = self.conn.their_state is h11.SEND_BODY and self.conn.our_state in (h11.DONE, h11.MUST_CLOSE)
        if (waiting or leftover) and not self.transport.is_closing():
            self.transport.close()


class _WhileOpen:
    """A transport that writes only while it is open: a write to one that is closing (closed by the
    server, or by the client going away) is dropped, and ``gone()`` is called instead."""

    def __init__(self, transport: asyncio.Transport, gone: Callable[[], None]) -> None:
        self._transport = transport
        self._gone = gone

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._transport.is_closing():
            self._gone()
            return
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
