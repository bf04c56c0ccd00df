"""The header deadline on real uvicorn: slow headers are cut off, slow answers are not."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn

import engine.serve.http_protocol as http_protocol


async def late_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await asyncio.sleep(1.5)  # three deadlines long
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"late"})


class LeaveWatcher:
    """An app that reads the request's body, then waits for its client to leave, which it records;
    a client still there after ``patience`` seconds is answered "stayed"."""

    def __init__(self, patience: float) -> None:
        self.patience = patience
        self.left = threading.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        try:
            async with asyncio.timeout(self.patience):
                while (await receive())["type"] != "http.disconnect":
                    pass
            self.left.set()
        except TimeoutError:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"stayed"})


@contextmanager
def uvicorn_on_loopback(app: Any) -> Iterator[tuple[str, int]]:
    """``app`` served by uvicorn with the header-deadline protocol, on a thread, for the block."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app, http=http_protocol.HeaderDeadlineProtocol, log_config=None, lifespan="off", log_level="warning"
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    yield sock.getsockname()[:2]
    running.should_exit = True
    thread.join(10)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, int]]:
    monkeypatch.setattr(http_protocol, "HEADER_TIMEOUT_S", 0.5)
    with uvicorn_on_loopback(late_app) as address:
        yield address


def read_to_end(sock: socket.socket) -> bytes:
    sock.settimeout(30)
    received = b""
    while data := sock.recv(1000):
        received += data
    return received


def test_a_slow_answer_on_a_kept_alive_connection_is_not_cut(server: tuple[str, int]) -> None:
    host, port = server
    with httpx.Client(timeout=10) as client:
        for _ in range(2):  # the second request comes after a response, on the same connection
            response = client.get(f"http://{host}:{port}/")
            assert response.text == "late"


def test_headers_that_never_end_are_cut_off(server: tuple[str, int]) -> None:
    with socket.create_connection(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        sock.settimeout(5)
        started = time.monotonic()
        assert sock.recv(100) == b""
        assert 0.3 < time.monotonic() - started < 4


def test_a_body_still_coming_after_its_answer_is_cut_off(server: tuple[str, int]) -> None:
    """The app answers without reading the body; a client that goes on sending it a byte at a time
    must not hold the connection once its answer is sent."""
    with socket.create_connection(server) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
        sock.settimeout(0.1)
        received = b""
        started = time.monotonic()
        while time.monotonic() - started < 8:
            try:
                sock.sendall(b" ")
                data = sock.recv(1000)
            except TimeoutError:
                continue
            except OSError:  # reset by the server
                break
            if not data:
                break
            received += data
        assert received.startswith(b"HTTP/1.1 200")
        assert b"late" in received
        assert time.monotonic() - started < 5, "the connection is still open"


@pytest.mark.parametrize(
    "chunks",
    [
        b"ffffffffffffffffffff\r\nabc\r\n0\r\n\r\n",  # 20 hex digits: more than any body
        b"4000001\r\n",  # one byte over 64 MiB still to come
        b"zz\r\nabc\r\n0\r\n\r\n",  # no hex at all
    ],
)
def test_a_chunk_size_that_is_no_size_is_400_at_once(server: tuple[str, int], chunks: bytes) -> None:
    with socket.create_connection(server) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks)
        sock.settimeout(5)
        started = time.monotonic()
        received = b""
        while data := sock.recv(1000):
            received += data
        assert time.monotonic() - started < 1  # before the app's late answer, and the header deadline
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert b"connection: close" in head.lower()
    assert json.loads(body)["error"]["type"] == "invalid_request_error"


def test_a_chunk_up_to_the_limit_is_read(server: tuple[str, int]) -> None:
    with socket.create_connection(server) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4000000\r\nabc")
        sock.settimeout(5)
        assert sock.recv(1000).startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("version", [b"1.1", b"1.0"])
def test_a_request_whose_client_then_shuts_down_its_sending_side_is_answered(
    server: tuple[str, int], version: bytes
) -> None:
    """netcat, curl with some options and scripts send a request and shut down their sending
    side: that end of input used to close the connection, with the request unanswered."""
    with socket.create_connection(server) as sock:
        sock.sendall(b"POST / HTTP/" + version + b"\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        sock.shutdown(socket.SHUT_WR)
        received = read_to_end(sock)  # the connection is closed after the answer
    # An HTTP/1.1 client is sent an interim 100 first (an HTTP/1.0 one must not be).
    interim = b"HTTP/1.1 100 Continue\r\n\r\n" if version == b"1.1" else b""
    assert received.startswith(interim + b"HTTP/1.1 200 OK\r\n"), received
    assert received.partition(b"200 OK")[2].count(b"late") == 1


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{}",  # a body shorter than said
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n",  # no last chunk
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Le",  # headers cut off
    ],
)
def test_a_request_cut_short_by_the_end_of_its_input_is_400(server: tuple[str, int], request_bytes: bytes) -> None:
    with socket.create_connection(server) as sock:
        sock.sendall(request_bytes)
        sock.shutdown(socket.SHUT_WR)
        received = read_to_end(sock)
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert b"connection: close" in head.lower()
    error = json.loads(body)["error"]
    assert error["message"] == "the client shut down its sending side before the whole request arrived"


def test_a_client_that_closes_its_socket_while_waiting_is_seen_to_leave() -> None:
    """A closed socket also ends the server's input, as a shut-down sending side does; the app must
    still learn that this client left, rather than work on an answer nobody reads."""
    request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
    app = LeaveWatcher(patience=60)
    with uvicorn_on_loopback(app) as address:
        with socket.create_connection(address) as sock:
            sock.sendall(request)
        assert app.left.wait(60)
    # One that only shut down its sending side is still there: it gets its answer.
    app = LeaveWatcher(patience=1)
    with uvicorn_on_loopback(app) as address, socket.create_connection(address) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        assert b"\r\n\r\n6\r\nstayed\r\n" in read_to_end(sock)
    assert not app.left.is_set()
