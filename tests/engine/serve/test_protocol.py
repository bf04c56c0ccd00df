"""The OpenAI request models and response shapes, and the streamed reasoning split, without a model."""

from __future__ import annotations

import random
from typing import Any

import pytest

from engine.serve import protocol
from engine.serve.protocol import ChatRequest, ChoiceResult, CompletionRequest, parse_request
from engine.serve.reasoning import split_answer
from engine.serve.serving import ReasoningSplitter
from engine.serve.types import ServeError, TokenLogprob, TopLogprob

HELLO = [{"role": "user", "content": "hi"}]


def refused(kind: Any, body: Any) -> ServeError:
    with pytest.raises(ServeError) as caught:
        parse_request(kind, body)
    assert caught.value.status == 400
    return caught.value


def test_chat_request_reads_the_openai_shapes() -> None:
    request = parse_request(
        ChatRequest,
        {
            "model": "m",
            "messages": [
                {"role": "developer", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            ],
            "stop": "x",
            "max_completion_tokens": 5,
            "max_tokens": 9,
            "logprobs": True,
            "top_logprobs": 2,
            "stream": True,
            "stream_options": {"include_usage": True},
            "user": "someone",
            "metadata": {"k": "v"},
            "tool_choice": "none",
        },
    )
    assert [m.as_chat() for m in request.messages] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "ab"},
    ]
    assert request.stop == ("x",)
    assert request.effective_max_tokens() == 5
    assert request.logprob_count() == 2
    assert request.include_usage


def test_self_consistency_counts_samples() -> None:
    request = parse_request(ChatRequest, {"model": "m", "messages": HELLO, "self_consistency": 5})
    assert request.samples == 5
    assert parse_request(ChatRequest, {"model": "m", "messages": HELLO, "n": 3}).samples == 3


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": HELLO}, "model"),
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": HELLO, "temperature": 2.01}, "temperature"),
        ({"model": "m", "messages": HELLO, "frequency_penalty": -3}, "frequency_penalty"),
        ({"model": "m", "messages": HELLO, "max_tokens": 0}, "max_tokens"),
        ({"model": "m", "messages": HELLO, "max_tokens": "5"}, "max_tokens"),  # a count is a JSON number
        ({"model": "m", "messages": HELLO, "max_tokens": True}, "max_tokens"),
        ({"model": "m", "messages": HELLO, "n": 1.5}, "n"),
        ({"model": "m", "messages": HELLO, "seed": "7"}, "seed"),
        ({"model": "m", "messages": HELLO, "top_logprobs": 2}, "top_logprobs"),
        ({"model": "m", "messages": HELLO, "stop": ["x" * 300]}, "stop"),
        ({"model": "m", "messages": HELLO, "stop": [1]}, "stop"),
        ({"model": "m", "messages": HELLO, "function_call": "auto"}, "function_call"),
        ({"model": "m", "messages": HELLO, "modalities": ["audio"]}, "modalities"),
        ({"model": "m", "messages": HELLO, "stream_options": {"include_usage": True, "x": 1}}, "stream_options.x"),
        ({"model": "m", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"model": "m", "messages": HELLO, "response_format": {"type": "json_schema"}}, "response_format"),
    ],
)
def test_chat_refusals_name_the_field(body: dict[str, Any], param: str) -> None:
    assert refused(ChatRequest, body).param == param


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m", "prompt": ["a", "b"]}, "prompt"),
        ({"model": "m", "prompt": ""}, "prompt"),
        ({"model": "m", "prompt": [1, "x"]}, "prompt"),
        ({"model": "m", "prompt": "a", "echo": True}, "echo"),
        ({"model": "m", "prompt": "a", "suffix": "z"}, "suffix"),
        ({"model": "m", "prompt": "a", "best_of": 3}, "best_of"),
        ({"model": "m", "prompt": "a", "logprobs": 21}, "logprobs"),
    ],
)
def test_completion_refusals_name_the_field(body: dict[str, Any], param: str) -> None:
    assert refused(CompletionRequest, body).param == param


#: Every numeric field of each request kind: a JSON boolean is a number in none of them.
NUMERIC = {
    ChatRequest: (
        "temperature", "top_p", "top_k", "max_tokens", "max_completion_tokens", "seed", "n",
        "presence_penalty", "frequency_penalty", "self_consistency", "top_logprobs",
    ),
    CompletionRequest: (
        "temperature", "top_p", "top_k", "max_tokens", "seed", "n", "presence_penalty",
        "frequency_penalty", "self_consistency", "logprobs", "best_of",
    ),
}  # fmt: skip


@pytest.mark.parametrize(("kind", "field"), [(kind, field) for kind, fields in NUMERIC.items() for field in fields])
@pytest.mark.parametrize("flag", [True, False])
def test_a_boolean_is_no_number(kind: Any, field: str, flag: bool) -> None:
    base = {"model": "m", "messages": HELLO} if kind is ChatRequest else {"model": "m", "prompt": "a"}
    if field == "top_logprobs":
        base["logprobs"] = True
    err = refused(kind, {**base, field: flag})
    assert err.param == field
    assert "valid number" in str(err) or "valid integer" in str(err)


def test_every_numeric_field_is_checked_for_booleans() -> None:
    for kind, fields in NUMERIC.items():
        numeric = {
            name
            for name, info in kind.model_fields.items()
            if any(word in str(info.annotation) for word in ("int", "float", "Int", "Float"))
            and "list" not in str(info.annotation)  # the token ids of a prompt: checked one by one
        }
        assert numeric == set(fields)


def test_a_text_part_whose_text_is_no_string_says_so() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}
    err = refused(ChatRequest, body)
    assert err.param == "messages[0].content"
    assert "the text of content part 0 must be a string" in str(err)
    assert "only text content parts" not in str(err)


def test_completion_prompt_may_be_one_element_list_or_token_ids() -> None:
    assert parse_request(CompletionRequest, {"model": "m", "prompt": ["a"]}).prompt == "a"
    assert parse_request(CompletionRequest, {"model": "m", "prompt": [[1, 2]]}).prompt == [1, 2]


def test_non_object_body_is_refused() -> None:
    assert "JSON object" in str(refused(ChatRequest, [1]))


def test_response_shapes() -> None:
    lp = TokenLogprob("ab", -0.5, [97, 98], [TopLogprob("ab", -0.5, [97, 98]), TopLogprob("c", -1.0, [99])])
    choice = ChoiceResult(0, "abab", "cancelled", reasoning="why", logprobs=(lp, lp))
    chat = protocol.chat_response("chatcmpl-1", 5, "m", [choice], (3, 2))
    assert chat["choices"][0]["message"] == {"role": "assistant", "content": "abab", "reasoning_content": "why"}
    assert chat["choices"][0]["finish_reason"] == "stop"
    assert chat["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert chat["choices"][0]["logprobs"]["content"][0]["top_logprobs"][1] == {
        "token": "c",
        "logprob": -1.0,
        "bytes": [99],
    }
    text = protocol.completion_response("cmpl-1", 5, "m", [choice], (3, 2))
    assert text["choices"][0]["logprobs"]["text_offset"] == [0, 2]
    assert text["choices"][0]["logprobs"]["top_logprobs"][0] == {"ab": -0.5, "c": -1.0}
    assert protocol.usage_chunk("x", 5, "m", "chat", (1, 1))["choices"] == []
    assert protocol.models_list(["a", "b"], 5, "a")["data"][1]["owned_by"] == "routeshell"


@pytest.mark.parametrize(
    "text",
    [
        "【推理过程】\n3 加 4 等于 7\n【最终答案】\n7",
        "【推理过程】\n还在想",
        "【最终答案】\n7",
        "没有标记的回答",
        "【推",
        "",
    ],
)
def test_streamed_reasoning_split_agrees_with_the_whole_text_split(text: str) -> None:
    wanted_reasoning, wanted_content = split_answer(text, "zh")
    for seed in range(20):
        pieces = random.Random(seed)
        splitter = ReasoningSplitter("zh")
        reasoning = content = ""
        at = 0
        while True:
            end = min(len(text), at + pieces.randint(1, 4))
            thought, said = splitter.feed(text[at:end], final=end == len(text))
            reasoning, content = reasoning + thought, content + said
            at = end
            if at == len(text):
                break
        assert reasoning.strip() == (wanted_reasoning or "")
        assert content.strip() == wanted_content.strip()


@pytest.mark.parametrize(
    ("kind", "body", "param"),
    [
        (ChatRequest, {"model": "m", "messages": [{"role": "user", "content": "\ud800"}]}, "messages[0].content"),
        (ChatRequest, {"model": "m", "messages": HELLO, "stop": "\udfff"}, "stop"),
        (CompletionRequest, {"model": "m", "prompt": "a\ud800"}, "prompt"),
        (ChatRequest, {"model": "m", "messages": HELLO, "temperature": float("nan")}, "temperature"),
        (ChatRequest, {"model": "m", "messages": HELLO, "top_p": float("inf")}, "top_p"),
        (ChatRequest, {"model": "m", "messages": HELLO, "stream": "yes"}, "stream"),
        (ChatRequest, {"model": "m", "messages": HELLO, "logprobs": 1}, "logprobs"),
    ],
)
def test_hostile_values_are_refused(kind: Any, body: dict[str, Any], param: str) -> None:
    assert refused(kind, body).param == param
