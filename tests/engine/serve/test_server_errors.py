"""Bad requests, keys, disconnects and overload: every refusal an OpenAI error with a 4xx, the
server up throughout."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from engine.serve.app import BODY_TIMEOUT_S, MAX_JSON_DEPTH, json_depth
from tests.engine.serve.server_support import ServeProcess, serving, wait_until
from tests.engine.tinyllm.training_support import TrainRun

KEY = "sk-errors-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
HELLO = [{"role": "user", "content": "def hello"}]


@pytest.fixture(scope="module")
def server(pretrained: tuple[Path, TrainRun]) -> Iterator[ServeProcess]:
    """One request decodes at a time and two may wait: the 32-client test overloads it."""
    with serving(pretrained[0], "--name", "nano", "--api-key", KEY, "--max-batch", "1", "--max-queue", "2") as process:
        yield process


@pytest.fixture
def client(server: ServeProcess) -> openai.OpenAI:
    return server.client(KEY)


def post(server: ServeProcess, path: str, content: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{server.root}{path}", content=content, headers={**AUTH, **(headers or {})}, timeout=60)


def assert_openai_error(response: httpx.Response, status: int, *needles: str, param: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert isinstance(error["message"], str)
    assert error["type"]
    assert "Traceback" not in response.text
    for needle in needles:
        assert needle in error["message"]
    if param is not None:
        assert error["param"] == param


def chat(**fields: Any) -> bytes:
    return json.dumps({"model": "nano", "messages": HELLO, **fields}).encode()


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b'{"model": "nano", "messages": [', "not valid JSON"),
        (b"", "empty"),
        (b"[1, 2]", "JSON object"),
        (b'{"model": "nano", "messages": "\xff\xfe"}', "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nests more than 128 levels"),
        (b'{"model": "nano", "messages": ' + b"[" * 500 + b"]" * 500 + b"}", "nests more than 128 levels"),
        (b'{"model": "nano", "messages": ' + b"[" * 129 + b"]" * 129 + b"}", "nests more than 128 levels"),
        (chat(max_tokens=1)[:-1] + b"9" * 5000 + b"}", "a number of more than 1000 digits"),
    ],
)
def test_malformed_body_is_400(server: ServeProcess, body: bytes, needle: str) -> None:
    response = post(server, "/v1/chat/completions", body)
    assert_openai_error(response, 400, needle)
    assert "sys." not in response.text


def test_json_depth_counts_objects_and_arrays_without_recursion() -> None:
    assert json_depth(3, 10) == 0
    assert json_depth({"a": [1, {"b": []}]}, 10) == 4
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    assert json_depth(deep, MAX_JSON_DEPTH) == MAX_JSON_DEPTH + 1  # stops one past the limit


@pytest.mark.parametrize(
    ("fields", "param", "needle"),
    [
        ({"model": None}, "model", "model"),
        ({"temperature": 3}, "temperature", "less than or equal to 2"),
        ({"temperature": True}, "temperature", "valid number"),
        ({"top_p": False}, "top_p", "valid number"),
        ({"presence_penalty": True}, "presence_penalty", "valid number"),
        ({"seed": True}, "seed", "valid integer"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}, None, "must be a string"),
        ({"top_p": -1}, "top_p", ""),
        ({"n": 17}, "n", ""),
        ({"top_logprobs": 21, "logprobs": True}, "top_logprobs", ""),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "at most 4"),
        ({"presence_penalty": 2.5}, "presence_penalty", ""),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools", "not supported"),
        ({"logit_bias": {"1": 5}}, "logit_bias", "not supported"),
        ({"n": 2, "self_consistency": 3}, "n", "self_consistency"),
        ({"self_consistency": 0}, "self_consistency", ""),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].role", ""),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}, None, "text"),
        ({"messages": []}, "messages", ""),
        ({"bogus": 1}, "bogus", "unrecognized"),
        ({"response_format": {"type": "xml"}}, None, ""),
    ],
)
def test_bad_fields_are_400_naming_the_field(
    server: ServeProcess, fields: dict[str, Any], param: str | None, needle: str
) -> None:
    body = {"model": "nano", "messages": HELLO, **fields}
    body = {key: value for key, value in body.items() if value is not None}
    assert_openai_error(post(server, "/v1/chat/completions", json.dumps(body).encode()), 400, needle, param=param)


def test_a_compressed_body_is_415(server: ServeProcess) -> None:
    body = gzip.compress(chat(max_tokens=1))
    for encoding in ("gzip", "br", "identity, gzip"):
        response = post(server, "/v1/chat/completions", body, {"Content-Encoding": encoding})
        assert_openai_error(response, 415, "Content-Encoding", "not supported")
    plain = post(server, "/v1/chat/completions", chat(max_tokens=1), {"Content-Encoding": "identity"})
    assert plain.status_code == 200


def test_a_body_that_never_ends_is_408_and_its_connection_closed(server: ServeProcess) -> None:
    host, port = server.root.removeprefix("http://").rsplit(":", 1)
    head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(f"{head}Content-Length: 91\r\n\r\n".encode() + b'{"model":')
        sock.settimeout(BODY_TIMEOUT_S + 20)
        started = time.monotonic()
        received = b""
        while data := sock.recv(4096):  # until the server closes the connection
            received += data
        waited = time.monotonic() - started
    assert BODY_TIMEOUT_S - 1 < waited < BODY_TIMEOUT_S + 10
    head_lines, _, body = received.partition(b"\r\n\r\n")
    assert head_lines.startswith(b"HTTP/1.1 408")
    error = json.loads(body)["error"]
    assert error["message"] == f"the request body did not arrive within {BODY_TIMEOUT_S:g} seconds"
    assert wait_until(lambda: any(event.get("status") == 408 for event in server.events), timeout=30)
    assert server.health()["status"] == "ok"


def raw_request(server: ServeProcess, request: bytes) -> bytes:
    """Send ``request`` on a socket of its own, shut down its sending side, and read to the end."""
    host, port = server.root.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while data := sock.recv(1 << 16):
            received += data
    return received


def test_a_client_that_shuts_down_its_sending_side_after_its_request_gets_the_answer(server: ServeProcess) -> None:
    """As netcat and scripts do: the end of the server's input used to drop the request unanswered."""
    head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
    for stream in (False, True):
        body = chat(max_tokens=3, stream=stream)
        received = raw_request(server, f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        interim, _, answer = received.partition(b"\r\n\r\n")
        assert interim == b"HTTP/1.1 100 Continue"
        status, _, content = answer.partition(b"\r\n\r\n")
        assert status.startswith(b"HTTP/1.1 200 OK\r\n"), received
        if stream:
            assert content.endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n"), content  # its last event, last chunk
        else:
            assert json.loads(content)["choices"][0]["finish_reason"] in ("stop", "length")
    # A body shorter than its Content-Length, then the end of input: a 400, and the server stays up.
    body = chat(max_tokens=3)
    received = raw_request(server, f"{head}Content-Length: {len(body) + 5}\r\n\r\n".encode() + body)
    status, _, content = received.partition(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert "before the whole request arrived" in json.loads(content)["error"]["message"]
    assert server.health()["status"] == "ok"
    assert "Exception" not in server.stderr


def test_unknown_model_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-7", messages=HELLO, max_tokens=2)  # type: ignore[arg-type]
    assert "nano" in caught.value.message  # it says what is served


def test_max_tokens_beyond_the_context_is_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="nano", messages=HELLO, max_tokens=100_000)  # type: ignore[arg-type]
    assert caught.value.param == "max_tokens"
    assert caught.value.code == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="nano", messages=HELLO, max_completion_tokens=100_000)  # type: ignore[arg-type]
    assert caught.value.param == "max_completion_tokens"
    assert "max_completion_tokens is 100000 but the prompt" in caught.value.message


def test_prompt_longer_than_the_context_is_400(client: openai.OpenAI) -> None:
    long = [{"role": "user", "content": "word " * 3000}]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="nano", messages=long)  # type: ignore[arg-type]
    assert caught.value.code == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model="nano", prompt="word " * 3000)


def test_token_id_prompt_outside_the_vocabulary_is_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model="nano", prompt=[1, 10_000_000], max_tokens=2)


def test_wrong_or_missing_key_is_401(server: ServeProcess) -> None:
    with pytest.raises(openai.AuthenticationError):
        server.client("sk-wrong").chat.completions.create(model="nano", messages=HELLO)  # type: ignore[arg-type]
    response = httpx.post(f"{server.url}/chat/completions", content=chat(), timeout=30)
    assert_openai_error(response, 401, "API key")
    assert_openai_error(httpx.get(f"{server.url}/models", headers={"Authorization": "Basic x"}, timeout=30), 401)
    # The key is checked before the body is read: a bad body without a key is still a 401.
    assert_openai_error(httpx.post(f"{server.url}/completions", content=b"{", timeout=30), 401)


def test_health_and_metrics_need_no_key(server: ServeProcess) -> None:
    assert httpx.get(f"{server.root}/health", timeout=30).status_code == 200
    assert httpx.get(f"{server.root}/metrics", timeout=30).status_code == 200


def test_oversized_body_is_413(server: ServeProcess, client: openai.OpenAI) -> None:
    huge = [{"role": "user", "content": "x" * (2 << 20)}]
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="nano", messages=huge)  # type: ignore[arg-type]
    assert caught.value.status_code == 413
    assert_openai_error(post(server, "/v1/completions", b" " * (3 << 20)), 413, "larger than")


def test_unsupported_schema_is_400(client: openai.OpenAI) -> None:
    schema = {"type": "object", "properties": {"a": {"$ref": "https://example.com/elsewhere.json"}}}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="nano",
            messages=HELLO,  # type: ignore[arg-type]
            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
        )
    assert caught.value.param == "response_format"


def test_unknown_path_and_method_are_openai_errors(server: ServeProcess) -> None:
    assert_openai_error(httpx.get(f"{server.url}/engines", headers=AUTH, timeout=30), 404)
    assert_openai_error(httpx.get(f"{server.url}/chat/completions", headers=AUTH, timeout=30), 405)


def test_head_is_answered_where_get_is_with_no_body(server: ServeProcess) -> None:
    for path, headers in (("/health", {}), ("/metrics", {}), ("/v1/models", AUTH)):
        got = httpx.get(f"{server.root}{path}", headers=headers, timeout=30)
        head = httpx.head(f"{server.root}{path}", headers=headers, timeout=30)
        assert (head.status_code, head.content) == (got.status_code, b""), path
        assert head.headers["content-type"] == got.headers["content-type"]
    assert httpx.head(f"{server.root}/v1/models", timeout=30).status_code == 401


#: A request that, left alone, generates all of its 200 tokens (checked by the first test).
LONG = {"max_tokens": 200, "temperature": 1.0, "seed": 4}


def test_the_long_request_runs_to_its_length(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="nano", messages=HELLO, **LONG)  # type: ignore[arg-type]
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens == 200  # type: ignore[union-attr]


def test_a_stream_whose_client_leaves_frees_its_slot(server: ServeProcess) -> None:
    # The nano model may decode all 200 tokens before a loaded machine sees the connection close:
    # a stream that is cut short at least once in three tries is one the server stops.
    used = []
    for _ in range(3):
        assert wait_until(lambda: server.health()["running"] == 0, timeout=60)
        before = server.health()["completion_tokens"]
        body = chat(**LONG, stream=True)
        with httpx.stream("POST", f"{server.url}/chat/completions", content=body, headers=AUTH, timeout=60) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if line.startswith("data: ") and '"content": "' in line and '"content": ""' not in line:
                    break
        # The connection is closed: the sequence leaves the batch, its slot free again.
        assert wait_until(lambda: server.health()["running"] == 0, timeout=60)
        used.append(server.health()["completion_tokens"] - before)
        if used[-1] < 200:
            break
    assert min(used) < 200, used
    assert "Exception" not in server.stderr
    assert "failed" not in server.stderr


def test_a_waiting_client_that_leaves_frees_its_slot(server: ServeProcess) -> None:
    assert wait_until(lambda: (h := server.health())["running"] == 0 and h["waiting"] == 0, timeout=60)
    before = server.health()["completion_tokens"]
    events = len(server.events)
    # Two choices of 200 tokens decode one after another here (--max-batch 1): far longer than
    # the client waits, however fast the machine (the body is sent before the read timeout starts).
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{server.url}/chat/completions", content=chat(**LONG, n=2), headers=AUTH, timeout=0.1)
    assert wait_until(lambda: server.health()["running"] == 0, timeout=60)
    assert server.health()["completion_tokens"] - before < 400
    # The request log says the client left, and nothing failed on the way.
    assert wait_until(lambda: any(e.get("status") == 499 for e in server.events[events:]), timeout=30)
    assert "Exception" not in server.stderr
    assert "failed" not in server.stderr


def test_overload_is_503_with_retry_after_and_health_answers(server: ServeProcess) -> None:
    statuses: list[int] = []
    retry_after: list[str] = []
    health: list[int] = []
    done = threading.Event()

    def one_client() -> None:
        response = post(server, "/v1/chat/completions", chat(max_tokens=60))
        statuses.append(response.status_code)
        if response.status_code == 503:
            assert response.json()["error"]["code"] == "overloaded"
            retry_after.append(response.headers.get("retry-after", ""))

    def poll_health() -> None:
        while not done.is_set():
            health.append(httpx.get(f"{server.root}/health", timeout=30).status_code)

    poller = threading.Thread(target=poll_health)
    poller.start()
    clients = [threading.Thread(target=one_client) for _ in range(32)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join(120)
    done.set()
    poller.join(60)
    assert len(statuses) == 32
    assert set(statuses) <= {200, 503}
    assert 200 in statuses
    assert 503 in statuses
    assert retry_after
    assert all(value.isdigit() and int(value) >= 1 for value in retry_after)
    assert health
    assert set(health) == {200}
    # Still serving afterwards.
    assert server.client(KEY).chat.completions.create(model="nano", messages=HELLO, max_tokens=2).choices  # type: ignore[arg-type]


def test_more_choices_than_the_server_can_hold_is_400(client: openai.OpenAI) -> None:
    # This server runs one sequence and queues two: four choices could never all be admitted.
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="nano", messages=HELLO, n=4, max_tokens=2)  # type: ignore[arg-type]
    assert caught.value.param == "n"
