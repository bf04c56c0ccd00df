"""The server at its edges, as a real subprocess: clients that leave while sending, SIGTERM mid-stream."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
from pathlib import Path

import httpx

from tests.engine.serve.server_support import serving, wait_until
from tests.engine.tinyllm.training_support import TrainRun

HELLO = [{"role": "user", "content": "def hello"}]


def test_a_client_that_leaves_while_sending_is_499_and_one_that_sends_its_headers_too_slowly_is_cut_off(
    pretrained: tuple[Path, TrainRun],
) -> None:
    """Both on one server, which stays well after them and stops cleanly."""
    from engine.serve.http_protocol import HEADER_TIMEOUT_S

    with serving(pretrained[0], "--name", "nano") as server:
        host, port = server.root.removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port))) as sock:
            head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            sock.sendall(f"{head}Content-Length: 1000\r\n\r\n".encode() + b'{"model": "nano", ')
        event = server.wait_for("serve_request", timeout=60)
        assert event["status"] == 499
        assert server.health()["status"] == "ok"
        # A trailing slash is an unknown path, answered as one (not a redirect to the Host header).
        for path in ("/v1/models/", "/v1/chat/completions/"):
            response = httpx.post(f"{server.root}{path}", json={}, headers={"Host": "evil.example"}, timeout=30)
            assert response.status_code in (404, 405), response.headers
            assert "error" in response.json()
        # A WebSocket upgrade is answered as the HTTP request it is too (it was a bare 403).
        upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                   "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}  # fmt: skip
        response = httpx.get(f"{server.root}/v1/models", headers=upgrade, timeout=30)
        assert response.status_code == 200, response.text
        assert response.json()["data"][0]["id"] == "nano"
        response = httpx.get(f"{server.root}/v1/nowhere", headers=upgrade, timeout=30)
        assert response.status_code == 404
        assert "error" in response.json()
        with (
            socket.create_connection((host, int(port))) as slow,
            socket.create_connection((host, int(port))) as silent,
        ):
            slow.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            slow.settimeout(1.0)
            closed_after = None
            for second in range(int(HEADER_TIMEOUT_S) + 20):
                try:
                    slow.sendall(b"X-Slow: 1\r\n")  # a header line a second, never the blank line
                    if slow.recv(100) == b"":
                        closed_after = second
                        break
                except TimeoutError:
                    continue
                except OSError:  # reset by the server
                    closed_after = second
                    break
            assert closed_after is not None, "the slow client is still connected"
            assert closed_after >= HEADER_TIMEOUT_S - 2
            silent.settimeout(10.0)
            assert silent.recv(100) == b""  # a connection that never sent anything is gone too
            # a request whose headers arrived in time is answered, on a connection kept alive after it
            with httpx.Client(timeout=30) as client:
                assert client.get(f"{server.root}/health").status_code == 200
        assert server.health()["status"] == "ok"
        assert server.stop() == 0
        assert "ClientDisconnect" not in server.stderr
        assert "Exception" not in server.stderr


def test_sigterm_mid_stream_ends_the_stream_with_an_error_event_and_done(pretrained: tuple[Path, TrainRun]) -> None:
    """One sequence decodes at a time; long requests ahead keep the stream waiting when SIGTERM
    comes. The stream must end as a stream ends (an error event, then [DONE]), not be cut off."""
    with serving(pretrained[0], "--name", "nano", "--max-batch", "1", "--max-queue", "8") as server:
        long = {"model": "nano", "messages": HELLO, "max_tokens": 240, "temperature": 0}

        def ahead() -> None:
            with contextlib.suppress(httpx.HTTPError):  # cut off by the shutdown: not looked at here
                httpx.post(f"{server.url}/chat/completions", json=long, timeout=60)

        threads = [threading.Thread(target=ahead) for _ in range(6)]
        for thread in threads:
            thread.start()

        def queued() -> bool:
            health = server.health()
            return bool(health["running"] == 1 and health["waiting"] >= 3)

        assert wait_until(queued)
        lines: list[str] = []
        body = {**long, "stream": True}
        with httpx.stream("POST", f"{server.url}/chat/completions", json=body, timeout=60) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if line.startswith("data: ") and not lines:
                    server.process.terminate()  # SIGTERM, once the stream has begun
                if line.startswith("data: "):
                    lines.append(line.removeprefix("data: "))
        for thread in threads:
            thread.join(60)
        assert server.process.wait(60) == 0
    assert lines[-1] == "[DONE]"
    last = json.loads(lines[-2])
    assert last["error"]["message"] == "the server is stopping; try again"
    assert all(choice["finish_reason"] is None for line in lines[:-2] for choice in json.loads(line)["choices"])


def test_clients_that_leave_in_the_middle_of_a_stream_of_16_choices_leave_no_noise_in_the_log(
    pretrained: tuple[Path, TrainRun],
) -> None:
    """Each reads some chunks and goes, with a reset or a plain close; asyncio used to log
    "socket.send() raised exception." for the chunks written after that, unprefixed, on stderr."""
    request = {"model": "nano", "messages": HELLO, "stream": True, "n": 16, "max_tokens": 200}
    body = json.dumps(request).encode()
    head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n"
    with serving(pretrained[0], "--name", "nano") as server:
        host, port = server.root.removeprefix("http://").rsplit(":", 1)
        for attempt in range(24):
            with socket.create_connection((host, int(port)), timeout=60) as sock:
                sock.sendall(head.encode() + body)
                received = b""
                while received.count(b"data: ") < 17 + 5 * attempt and b"[DONE]" not in received:
                    more = sock.recv(1 << 16)  # the roles, then some text
                    assert more, received
                    received += more
                if attempt % 3:  # a reset, as a killed client's connection ends
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        assert server.health()["status"] == "ok"
        answer = server.client().chat.completions.create(model="nano", messages=HELLO, max_tokens=4)  # type: ignore[arg-type]
        assert answer.choices[0].finish_reason in ("stop", "length")
        assert server.stop() == 0
    assert "socket.send()" not in server.stderr
    assert "Traceback" not in server.stderr
