"""The chat client against a real scripted HTTP server on loopback: replies, retries, streams, failures."""

from __future__ import annotations

import socket
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from engine.config.profiles import Endpoint
from engine.errors import ExitCode
from engine.llm.client import ChatClient, EndpointError, Usage
from tests.scripted_llm import Drop, Hold, Reply, Respond, ScriptedLLM, Stall, Status, Step

KEY = "sk-test-secret-0123456789"
HELLO = [{"role": "user", "content": "Say hello."}]


def client_for(
    url: str, *, api_key: str | None = KEY, timeout_s: float = 5.0, max_retries: int = 2, **kwargs: Any
) -> tuple[ChatClient, list[float]]:
    """A client for ``url`` whose backoff waits are recorded instead of slept."""
    waits: list[float] = []
    endpoint = Endpoint(base_url=url, model="test-model", api_key=api_key, timeout_s=timeout_s, max_retries=max_retries)
    return ChatClient(endpoint, sleep=waits.append, **kwargs), waits


def fails(client: ChatClient, *, stream: bool = False) -> EndpointError:
    """Call the client, expecting an EndpointError with a one-line message; return it."""
    with client, pytest.raises(EndpointError) as caught:
        client.chat(HELLO, stream=stream)
    error = caught.value
    assert error.exit_code == ExitCode.ENDPOINT
    assert "\n" not in str(error)
    assert KEY not in str(error)
    return error


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_plain_reply_with_server_usage(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.enqueue(Reply("hello there", usage={"prompt_tokens": 7, "completion_tokens": 3}))
    client, waits = client_for(scripted_llm.base_url + "/")
    with client:
        reply = client.chat(HELLO)
    assert (reply.content, reply.model, reply.finish_reason, reply.attempts) == ("hello there", "test-model", "stop", 1)
    assert reply.usage == Usage(7, 3)
    assert reply.usage.as_dict() == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10, "estimated": False}
    request = scripted_llm.requests[0]
    assert request["_path"] == "/v1/chat/completions"
    assert {k: v for k, v in request.items() if not k.startswith("_")} == {"model": "test-model", "messages": HELLO}
    assert waits == []


@pytest.mark.parametrize(("api_key", "expected"), [(KEY, f"Bearer {KEY}"), (None, None)])
def test_bearer_header_only_with_a_key(scripted_llm: ScriptedLLM, api_key: str | None, expected: str | None) -> None:
    scripted_llm.enqueue(Reply("ok"))
    client, _ = client_for(scripted_llm.base_url, api_key=api_key)
    with client:
        client.chat(HELLO)
    assert scripted_llm.requests[0]["_headers"].get("authorization") == expected


def test_optional_fields_are_passed_through(scripted_llm: ScriptedLLM) -> None:
    schema = {"type": "json_schema", "json_schema": {"name": "plan", "schema": {"type": "object"}}}
    scripted_llm.enqueue(Reply({"steps": []}))
    client, _ = client_for(scripted_llm.base_url)
    with client:
        reply = client.chat(HELLO, response_format=schema, temperature=0.0, max_tokens=64)
    assert reply.content == '{"steps": []}'
    request = scripted_llm.requests[0]
    assert (request["response_format"], request["temperature"], request["max_tokens"]) == (schema, 0.0, 64)


def test_non_streaming_on_delta_gets_the_whole_content_once(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.enqueue(Reply("all at once"))
    deltas: list[str] = []
    client, _ = client_for(scripted_llm.base_url)
    with client:
        client.chat(HELLO, on_delta=deltas.append)
    assert deltas == ["all at once"]


def test_server_error_then_success_is_retried_with_the_same_body(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.enqueue(Status(500), Reply("ok"))
    client, waits = client_for(scripted_llm.base_url)
    with client:
        reply = client.chat(HELLO)
    assert (reply.content, reply.attempts) == ("ok", 2)
    assert len(waits) == 1
    assert 0.5 <= waits[0] <= 0.55
    first, second = scripted_llm.requests
    assert first == second


def test_backoff_doubles_and_is_capped_then_gives_up(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.enqueue(*[Status(503, {"error": {"message": "model is loading"}})] * 4)
    client, waits = client_for(scripted_llm.base_url, max_retries=3, max_wait_s=1.5)
    error = fails(client)
    # Base 0.5 s doubling, plus up to 10 % jitter, capped at max_wait_s.
    assert 0.5 <= waits[0] <= 0.55
    assert 1.0 <= waits[1] <= 1.1
    assert waits[2] == 1.5
    assert str(error) == f"LLM endpoint {scripted_llm.base_url} answered HTTP 503 after 4 attempts: model is loading"
    assert error.status == 503
    assert scripted_llm.pending() == 0


def test_retry_after_seconds_replaces_the_backoff(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.enqueue(Status(429, headers={"Retry-After": "2"}), Reply("ok"))
    client, waits = client_for(scripted_llm.base_url)
    with client:
        assert client.chat(HELLO).attempts == 2
    assert waits == [2.0]


@pytest.mark.parametrize(
    ("offset", "low", "high"),
    [(timedelta(seconds=4), 2.0, 4.0), (timedelta(hours=1), 5.0, 5.0), (timedelta(hours=-1), 0.0, 0.0)],
    ids=["soon", "capped", "past"],
)
def test_retry_after_http_date(scripted_llm: ScriptedLLM, offset: timedelta, low: float, high: float) -> None:
    when = format_datetime(datetime.now(UTC) + offset, usegmt=True)
    scripted_llm.enqueue(Status(503, headers={"Retry-After": when}), Reply("ok"))
    client, waits = client_for(scripted_llm.base_url, max_wait_s=5.0)
    with client:
        client.chat(HELLO)
    assert len(waits) == 1
    assert low <= waits[0] <= high


@pytest.mark.parametrize(
    ("status", "api_key", "needles"),
    [
        (400, KEY, ["rejected the request with HTTP 400: bad messages"]),
        (401, KEY, ["HTTP 401: bad messages", "the API key was refused", "OPENAI_API_KEY", "api_key"]),
        (401, None, ["HTTP 401", "no API key was sent", "OPENAI_API_KEY"]),
        (403, KEY, ["HTTP 403", "the API key was refused"]),
        (404, KEY, ["HTTP 404: bad messages", "base_url", "'test-model'"]),
    ],
)
def test_client_errors_are_not_retried(
    scripted_llm: ScriptedLLM, status: int, api_key: str | None, needles: list[str]
) -> None:
    scripted_llm.enqueue(Status(status, {"error": {"message": "bad messages", "type": "invalid_request_error"}}))
    client, waits = client_for(scripted_llm.base_url, api_key=api_key)
    error = fails(client)
    assert str(error).startswith(f"LLM endpoint {scripted_llm.base_url} ")
    for needle in needles:
        assert needle in str(error)
    assert (len(scripted_llm.requests), waits, error.status) == (1, [], status)


def test_the_api_key_echoed_by_the_server_is_masked(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.enqueue(Status(401, {"error": {"message": f"Incorrect API key provided: {KEY}."}}))
    error = fails(client_for(scripted_llm.base_url)[0])
    assert "Incorrect API key provided: ****" in str(error)


@pytest.mark.parametrize("key", ["k", "sk-live_1"])
def test_a_short_key_is_masked_only_where_it_stands_alone(scripted_llm: ScriptedLLM, key: str) -> None:
    scripted_llm.enqueue(Status(401, {"error": {"message": f"check your key ({key}); keys like {key}x are revoked"}}))
    error = str(fails(client_for(scripted_llm.base_url, api_key=key)[0]))
    assert f"check your key (****); keys like {key}x are revoked" in error


def test_a_stalled_server_times_out(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.enqueue(Stall(3), Stall(3))
    client, waits = client_for(scripted_llm.base_url, timeout_s=0.3, max_retries=1)
    error = fails(client)
    assert str(error).startswith(f"LLM endpoint {scripted_llm.base_url} timed out after 0.3 s (2 attempts);")
    assert len(waits) == 1


def test_connection_refused_names_the_url_and_what_to_check() -> None:
    url = f"http://127.0.0.1:{unused_port()}/v1"
    client, waits = client_for(url, max_retries=2)
    error = fails(client)
    assert str(error) == (
        f"LLM endpoint {url} is unreachable (connection refused) after 3 attempts; is the server running? "
        "(check --base-url or the profile's llm.base_url)"
    )
    assert len(waits) == 2


def test_a_url_without_a_scheme_fails_at_once() -> None:
    client, waits = client_for("127.0.0.1:9/v1")
    error = fails(client)
    assert "is not an http(s) URL" in str(error)
    assert waits == []


def test_a_dropped_connection_is_retried(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.enqueue(Drop(), Reply("ok"))
    client, _ = client_for(scripted_llm.base_url)
    with client:
        assert client.chat(HELLO).attempts == 2


def test_dropped_every_time_gives_up(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.enqueue(Drop(), Drop())
    error = fails(client_for(scripted_llm.base_url, max_retries=1)[0])
    assert "dropped the connection" in str(error)
    assert "after 2 attempts" in str(error)


def test_an_exhausted_script_answers_500(scripted_llm: ScriptedLLM) -> None:
    error = fails(client_for(scripted_llm.base_url, max_retries=0)[0])
    assert str(error).endswith("answered HTTP 500 after 1 attempt: script exhausted")
    assert scripted_llm.unexpected == 1


@pytest.mark.parametrize(
    ("reply", "needle"),
    [
        (Status(200, "{gateway}"), "malformed reply: not JSON (starts with '{gateway}')"),
        (Status(200, {"choices": []}), "malformed reply: no choices[0].message.content"),
        (Status(200, {"choices": [{"message": {"content": None}}]}), "content is not a string"),
    ],
)
def test_malformed_replies_are_not_retried(scripted_llm: ScriptedLLM, reply: Step, needle: str) -> None:
    scripted_llm.enqueue(reply)
    error = fails(client_for(scripted_llm.base_url)[0])
    assert needle in str(error)
    assert len(scripted_llm.requests) == 1


def test_streamed_deltas_arrive_in_order_with_stream_usage(scripted_llm: ScriptedLLM) -> None:
    text = "The quick brown fox jumps over the lazy dog."
    scripted_llm.enqueue(Reply(text, usage={"prompt_tokens": 11, "completion_tokens": 9}))
    deltas: list[str] = []
    client, _ = client_for(scripted_llm.base_url)
    with client:
        reply = client.chat(HELLO, stream=True, on_delta=deltas.append)
    assert len(deltas) > 1
    assert "".join(deltas) == reply.content == text
    assert (reply.usage, reply.finish_reason, reply.attempts) == (Usage(11, 9), "stop", 1)
    request = scripted_llm.requests[0]
    assert (request["stream"], request["stream_options"]) == (True, {"include_usage": True})


@pytest.mark.parametrize(
    "usage",
    [{"prompt_tokens": -5, "completion_tokens": 1}, {"prompt_tokens": 1, "completion_tokens": 2**63},
     {"prompt_tokens": True, "completion_tokens": 1}, {"prompt_tokens": 1.5, "completion_tokens": 1}],
    ids=["negative", "past-64-bits", "bool", "float"],
)  # fmt: skip
def test_a_usage_that_is_no_count_of_tokens_is_estimated(scripted_llm: ScriptedLLM, usage: dict[str, Any]) -> None:
    """A negative count would lower a run's total under its budget; one past 2**63 ended the run
    in a traceback when the session database recorded it."""
    messages = [{"role": "user", "content": "abcdefgh"}]
    scripted_llm.enqueue(Reply("hello", usage=usage), Reply("hello", usage=usage))
    client, _ = client_for(scripted_llm.base_url)
    with client:
        assert client.chat(messages).usage == client.chat(messages, stream=True).usage == Usage(2, 2, estimated=True)


def test_usage_is_estimated_when_the_server_reports_none(scripted_llm: ScriptedLLM) -> None:
    messages = [{"role": "system", "content": "abcd"}, {"role": "user", "content": "efghi"}]
    scripted_llm.enqueue(Reply("hello", usage=None), Reply("hello", usage=None))
    client, _ = client_for(scripted_llm.base_url)
    with client:
        streamed = client.chat(messages, stream=True)
        plain = client.chat(messages)
    # ceil(9 / 4) prompt tokens, ceil(5 / 4) completion tokens.
    assert streamed.usage == plain.usage == Usage(3, 2, estimated=True)
    assert (streamed.usage + Usage(1, 1)).as_dict() == {
        "prompt_tokens": 4,
        "completion_tokens": 3,
        "total_tokens": 7,
        "estimated": True,
    }


def test_a_stream_that_fails_before_content_is_retried(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.enqueue(Status(502), Reply("hello world", cut_after=0), Reply("hello world"))
    deltas: list[str] = []
    client, waits = client_for(scripted_llm.base_url)
    with client:
        reply = client.chat(HELLO, stream=True, on_delta=deltas.append)
    assert (reply.content, reply.attempts, len(waits)) == ("hello world", 3, 2)
    assert "".join(deltas) == "hello world"


def test_a_stream_broken_after_content_is_not_retried(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.enqueue(Reply("abcdefghijklmnop", pieces=8, cut_after=3), Reply("never sent"))
    error = fails(client_for(scripted_llm.base_url)[0], stream=True)
    assert "stream broke after 6 characters" in str(error)
    assert scripted_llm.pending() == 1


def test_a_stream_ending_without_done_keeps_its_content(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.enqueue(Reply("complete enough", send_done=False))
    client, _ = client_for(scripted_llm.base_url)
    with client:
        assert client.chat(HELLO, stream=True).content == "complete enough"


def test_an_exception_from_on_delta_propagates_unretried(scripted_llm: ScriptedLLM) -> None:
    class Cancelled(Exception):
        pass

    def cancel(piece: str) -> None:
        raise Cancelled(piece)

    scripted_llm.enqueue(Reply("some text"), Reply("spare"))
    client, _ = client_for(scripted_llm.base_url)
    with client, pytest.raises(Cancelled):
        client.chat(HELLO, stream=True, on_delta=cancel)
    assert scripted_llm.pending() == 1


def test_held_and_computed_replies(scripted_llm: ScriptedLLM) -> None:
    released = threading.Event()

    def echo(body: dict[str, Any]) -> Step:
        return Reply(f"you said: {body['messages'][-1]['content']}")

    scripted_llm.enqueue(Hold(released, Respond(echo)))
    timer = threading.Timer(0.05, released.set)
    timer.start()
    client, _ = client_for(scripted_llm.base_url)
    with client:
        assert client.chat(HELLO).content == "you said: Say hello."
    assert released.is_set()


def test_a_password_in_the_base_url_is_masked_in_the_error_line() -> None:
    """The line reaches screens and CI logs: the user name stays, the password does not."""
    port = unused_port()
    client, _ = client_for(f"http://ci-user:s3cret-pw@127.0.0.1:{port}/v1", max_retries=0)
    with client:
        error = fails(client)
    assert "s3cret-pw" not in str(error)
    assert f"LLM endpoint http://ci-user:****@127.0.0.1:{port}/v1 " in str(error)
