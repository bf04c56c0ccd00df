"""Replies a hostile or misconfigured server sends: too big, not UTF-8, HTML, escape sequences."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.config.profiles import Endpoint
from engine.llm.client import ChatClient, ChatReply, EndpointError
from tests.helpers import assert_one_line_error, run_routeshell
from tests.scripted_llm import Raw, Reply, ScriptedLLM, Status

HELLO: list[Any] = [{"role": "user", "content": "Say hello."}]
CAP = 64 * 1024
EMOJI = "😀".encode()  # 4 bytes; the first two are half a character
HTML = b"<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head><body>It works</body></html>\n"


def client(llm: ScriptedLLM, *, max_reply_bytes: int = CAP, max_retries: int = 0) -> ChatClient:
    endpoint = Endpoint(base_url=llm.base_url, model="m", api_key=None, timeout_s=10, max_retries=max_retries,
                        max_reply_bytes=max_reply_bytes)  # fmt: skip
    return ChatClient(endpoint, sleep=lambda seconds: None)


def chat(llm: ScriptedLLM, *, stream: bool, **settings: Any) -> tuple[ChatReply, list[str]]:
    deltas: list[str] = []
    with client(llm, **settings) as chat_client:
        return chat_client.chat(HELLO, stream=stream, on_delta=deltas.append), deltas


def failure(llm: ScriptedLLM, *, stream: bool) -> str:
    with client(llm) as chat_client, pytest.raises(EndpointError) as caught:
        chat_client.chat(HELLO, stream=stream)
    return str(caught.value)


def whole(content: bytes) -> bytes:
    """A non-streamed reply whose content is ``content``, byte for byte."""
    return b'{"model": "m", "choices": [{"message": {"role": "assistant", "content": "' + content + b'"}}]}'


def sse(*contents: bytes, done: bool = True) -> bytes:
    """A streamed reply, one event per piece of content, byte for byte."""
    events = [b'data: {"choices": [{"delta": {"content": "' + piece + b'"}}]}\n\n' for piece in contents]
    return b"".join(events) + (b"data: [DONE]\n\n" if done else b"")


# -- size ------------------------------------------------------------------------------------------


def test_a_reply_announced_over_the_cap_is_not_read(scripted_llm: ScriptedLLM) -> None:
    flood = Raw(b"x" * 65536, repeat=4000)  # 256 MiB announced by Content-Length
    scripted_llm.enqueue(flood)
    reply, deltas = chat(scripted_llm, stream=False)
    assert reply.defect is not None
    assert reply.defect.startswith(f"the reply was cut off at {CAP} bytes")
    assert (reply.content, deltas) == ("", [])
    assert flood.sent < 64 * 65536


@pytest.mark.parametrize("stream", [False, True])
def test_reading_stops_at_the_cap(scripted_llm: ScriptedLLM, stream: bool) -> None:
    piece = sse(b"a" * 60_000, done=False) if stream else b"y" * 60_000
    flood = Raw(piece, content_type="text/event-stream" if stream else "application/json", repeat=4000, chunked=True)
    scripted_llm.enqueue(flood)
    reply, deltas = chat(scripted_llm, stream=stream)
    assert reply.defect is not None
    assert "max_reply_bytes" in reply.defect
    assert len(reply.content) <= CAP
    assert "".join(deltas) == reply.content
    # The server was stopped long before its 240 MB were out: the client closed the connection.
    assert flood.sent < 200 * 60_000


def test_a_reply_under_the_cap_is_whole(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.enqueue(Reply("z" * 30_000), Reply("z" * 30_000))
    for stream in (False, True):
        reply, _ = chat(scripted_llm, stream=stream)
        assert (reply.content, reply.defect) == ("z" * 30_000, None)


# -- encoding --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "stream"),
    [
        (Raw(whole(b"half " + EMOJI[:2])), False),
        (Raw(whole(b"bad \xff byte")), False),
        (Raw(whole(b"escaped half \\ud83d")), False),
        (Raw(sse(b"half ", EMOJI[:2]), content_type="text/event-stream", chunked=True), True),
        (Raw(sse(b"escaped half \\ud83d"), content_type="text/event-stream", chunked=True), True),
    ],
    ids=["raw-bytes", "bad-byte", "json-escape", "stream-raw-bytes", "stream-json-escape"],
)
def test_a_reply_that_is_not_utf8_comes_back_marked(scripted_llm: ScriptedLLM, step: Raw, stream: bool) -> None:
    scripted_llm.enqueue(step)
    reply, deltas = chat(scripted_llm, stream=stream)
    assert reply.defect is not None
    assert reply.defect.startswith("the reply is not valid UTF-8")
    assert "\ufffd" in reply.content
    # What reaches events and screens encodes as UTF-8.
    "".join(deltas).encode("utf-8")
    reply.content.encode("utf-8")


def test_an_emoji_split_across_stream_events_is_fine(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.enqueue(Raw(sse(b"a " + EMOJI + b" b"), content_type="text/event-stream", chunked=True))
    reply, _ = chat(scripted_llm, stream=True)
    assert (reply.content, reply.defect) == ("a 😀 b", None)


def test_a_lone_surrogate_in_a_message_is_sent_as_a_replacement(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.enqueue(Reply("ok"))
    with client(scripted_llm) as chat_client:
        chat_client.chat([{"role": "user", "content": "caf\udce9.txt"}])
    assert scripted_llm.requests[0]["messages"][0]["content"] == "caf\ufffd.txt"


# -- HTML and escapes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "stream"),
    [("text/html; charset=utf-8", False), ("text/html", True), ("text/plain", True), ("application/json", False)],
)
def test_an_html_page_with_status_200_says_so(scripted_llm: ScriptedLLM, content_type: str, stream: bool) -> None:
    scripted_llm.enqueue(Raw(HTML, content_type=content_type))
    message = failure(scripted_llm, stream=stream)
    assert message == (
        f"LLM endpoint {scripted_llm.base_url} answered with HTML, not a chat completion: is the base URL right? "
        "(check --base-url or the profile's llm.base_url)"
    )
    assert len(scripted_llm.requests) == 1


@pytest.mark.parametrize("stream", [False, True])
def test_error_text_from_the_server_is_escaped(scripted_llm: ScriptedLLM, stream: bool) -> None:
    scripted_llm.enqueue(Status(400, {"error": {"message": "bad \x1b]0;x\x07 \x1b[2J\u202eevil"}}))
    message = failure(scripted_llm, stream=stream)
    assert "\x1b" not in message
    assert "\x07" not in message
    assert "\u202e" not in message
    assert "HTTP 400: bad \\x1b]0;x\\x07 \\x1b[2J\\u202eevil" in message


def test_an_error_in_the_stream_is_escaped(scripted_llm: ScriptedLLM) -> None:
    event = b'data: {"error": {"message": "boom \\u001b]0;x\\u0007"}}\n\n'
    scripted_llm.enqueue(Raw(event, content_type="text/event-stream", chunked=True))
    message = failure(scripted_llm, stream=True)
    assert message.endswith("sent an error in the stream: boom \\x1b]0;x\\x07")


def test_the_cli_prints_a_hostile_error_escaped(scripted_llm: ScriptedLLM, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    scripted_llm.enqueue(Status(400, {"error": {"message": "no \x1b]0;owned\x07 such model"}}))
    result = run_routeshell("run", "--profile", "ci", "--base-url", scripted_llm.base_url, "--workspace",
                            str(workspace), "--topology", "single", "add a file")  # fmt: skip
    assert_one_line_error(result, 3, "HTTP 400: no \\x1b]0;owned\\x07 such model")
    assert "\x1b" not in result.stderr + result.stdout


@pytest.mark.parametrize("stream", [False, True])
def test_a_plain_text_error_body_is_shown_in_part_on_one_line_and_escaped(
    scripted_llm: ScriptedLLM, stream: bool
) -> None:
    body = "model 'gpt-5' is not served here;\r\n\x1b[31muse\x07 one of: " + "m" * 1000
    scripted_llm.enqueue(Status(400, body))
    message = failure(scripted_llm, stream=stream)
    assert "HTTP 400: Bad Request" not in message
    shown = "rejected the request with HTTP 400: model 'gpt-5' is not served here; \\x1b[31muse\\x07 one of: mmm"
    assert shown in message
    assert message.endswith("m…")
    assert len(message) < 400
    assert message.isprintable()


def test_an_error_body_is_read_only_in_part(scripted_llm: ScriptedLLM) -> None:
    huge = Raw(json.dumps({"error": {"message": "x" * 100}}).encode() + b" " * 10_000_000, code=400)
    scripted_llm.enqueue(huge)
    message = failure(scripted_llm, stream=False)
    assert "rejected the request with HTTP 400" in message


# -- logprobs --------------------------------------------------------------------------------------


def _scored(logprobs: list[Any]) -> dict[str, Any]:
    return {"content": [{"token": "t", "logprob": value, "bytes": [116], "top_logprobs": []} for value in logprobs]}


def _asked(llm: ScriptedLLM, *, stream: bool) -> ChatReply:
    with client(llm) as chat_client:
        return chat_client.chat(HELLO, stream=stream, logprobs="processed")


@pytest.mark.parametrize("stream", [False, True])
def test_the_logprobs_of_an_answer_are_summed(scripted_llm: ScriptedLLM, stream: bool) -> None:
    if stream:
        events = [{"choices": [{"delta": {"content": "a"}, "logprobs": _scored([-0.5])}]},
                  {"choices": [{"delta": {"content": "b"}, "logprobs": _scored([-0.25, 0.0])}]},
                  {"choices": [{"delta": {}, "finish_reason": "stop", "logprobs": None}]}]  # fmt: skip
        body = b"".join(b"data: " + json.dumps(event).encode() + b"\n\n" for event in events) + b"data: [DONE]\n\n"
        scripted_llm.enqueue(Raw(body, content_type="text/event-stream", chunked=True))
    else:
        choice = {"message": {"role": "assistant", "content": "ab"}, "logprobs": _scored([-0.5, -0.25, 0.0])}
        scripted_llm.enqueue(Raw(json.dumps({"model": "m", "choices": [choice]}).encode()))
    reply = _asked(scripted_llm, stream=stream)
    assert (reply.content, reply.logprob) == ("ab", -0.75)
    sent = scripted_llm.requests[-1]
    assert (sent["logprobs"], sent["logprobs_mode"]) == (True, "processed")


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    "logprobs",
    [
        None,
        "many",
        {"content": "x"},
        _scored([0.5]),
        _scored(["-1"]),
        _scored([True]),
        _scored([None]),
        {"content": [7]},
        {"content": [{"logprob": float("nan")}]},
    ],
    ids=["none", "string", "content-string", "positive", "text", "bool", "null", "not-object", "nan"],
)
def test_logprobs_that_are_missing_or_not_sane_give_no_sum(scripted_llm: ScriptedLLM, stream: bool,
                                                          logprobs: Any) -> None:  # fmt: skip
    # A server is not trusted: a logprob above 0, not a number or missing makes the answer unscored
    # (never more certain than it is), and the reply is still used.
    choice: dict[str, Any] = {"logprobs": logprobs}
    if stream:
        event = {"choices": [{"delta": {"content": "ok"}, **choice}]}
        body = b"data: " + json.dumps(event).encode() + b"\n\ndata: [DONE]\n\n"
        scripted_llm.enqueue(Raw(body, content_type="text/event-stream", chunked=True))
    else:
        reply = {"model": "m", "choices": [{"message": {"role": "assistant", "content": "ok"}, **choice}]}
        scripted_llm.enqueue(Raw(json.dumps(reply).encode()))
    reply = _asked(scripted_llm, stream=stream)
    assert (reply.content, reply.logprob) == ("ok", None)


def test_logprobs_not_asked_for_are_not_summed(scripted_llm: ScriptedLLM) -> None:
    choice = {"message": {"role": "assistant", "content": "ok"}, "logprobs": _scored([-1.0])}
    scripted_llm.enqueue(Raw(json.dumps({"model": "m", "choices": [choice]}).encode()))
    reply, _ = chat(scripted_llm, stream=False)
    assert reply.logprob is None
    assert "logprobs" not in scripted_llm.requests[-1]


@pytest.mark.parametrize("stream", [False, True])
def test_a_server_that_refuses_the_logprobs_mode_is_asked_again_without_it(
    scripted_llm: ScriptedLLM, stream: bool
) -> None:
    # (as a routeshell server from before the extension refuses it)
    refusal = {"error": {"message": "unrecognized request argument: logprobs_mode", "type": "invalid_request_error",
                         "param": "logprobs_mode", "code": None}}  # fmt: skip
    scripted_llm.enqueue(Status(400, refusal), Reply("ok", logprobs=[-0.5]))
    reply = _asked(scripted_llm, stream=stream)
    assert (reply.content, reply.logprob) == ("ok", None)  # raw logprobs are not the ones asked for
    first, second = scripted_llm.requests[-2:]
    assert first["logprobs_mode"] == "processed"
    assert "logprobs_mode" not in second
    assert second["logprobs"] is True


def test_any_other_400_is_not_asked_again(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.enqueue(Status(400, {"error": {"message": "messages: too long", "type": "x", "param": "messages"}}))
    with client(scripted_llm) as chat_client, pytest.raises(EndpointError, match="too long"):
        chat_client.chat(HELLO, logprobs="processed")
    assert len(scripted_llm.requests) == 1
