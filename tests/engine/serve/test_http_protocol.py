"""The header deadline on real uvicorn: slow headers are cut off, slow answers are not."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
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


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, int]]:
    monkeypatch.setattr(http_protocol, "HEADER_TIMEOUT_S", 0.5)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        late_app, http=http_protocol.HeaderDeadlineProtocol, log_config=None, lifespan="off", log_level="warning"
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
