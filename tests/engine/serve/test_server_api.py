"""The OpenAI API of ``routeshell serve``, driven by the official ``openai`` client over loopback."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from engine.schemas import validator
from tests.engine.serve.server_support import ServeProcess, make_adapter, serving, wait_until
from tests.engine.tinyllm.training_support import TrainRun
from tests.helpers import IMPORT_LOG, imported

KEY = "sk-test-serve-key"
HELLO = [{"role": "user", "content": "def hello"}]


@pytest.fixture(scope="module")
def server(pretrained: tuple[Path, TrainRun], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """One server for the module with a LoRA adapter, its key given in the environment, as a user would."""
    adapter = make_adapter(pretrained[0], tmp_path_factory.mktemp("lora") / "router", seed=3)
    args = ("--name", "nano", "--adapter", f"router={adapter}")
    with serving(pretrained[0], *args, env={"ROUTESHELL_API_KEY": KEY, **IMPORT_LOG}) as process:
        yield process


@pytest.fixture
def client(server: ServeProcess) -> openai.OpenAI:
    return server.client(KEY)


def test_serving_an_adapter_on_a_model_not_in_4bit_never_loads_bitsandbytes(server: ServeProcess) -> None:
    # The server's imports and its engine process's, read on a thread: until nothing more comes.
    assert wait_until(lambda: "peft" in imported(server.stderr))
    seen = ""
    while seen != server.stderr:
        seen = server.stderr
        time.sleep(0.5)
    assert "bitsandbytes" not in imported(seen)


def test_ready_event_and_models(server: ServeProcess, client: openai.OpenAI) -> None:
    assert server.ready["url"].startswith("http://127.0.0.1:")
    assert server.ready["url"].endswith("/v1")
    assert server.ready["models"] == ["nano", "router"]
    models = client.models.list()
    assert [(m.id, m.owned_by) for m in models.data] == [("nano", "routeshell"), ("router", "routeshell")]


def _maps_torch(pid: int) -> bool:
    return "libtorch" in Path(f"/proc/{pid}/maps").read_text(encoding="utf-8", errors="replace")


def test_only_the_engine_process_loads_torch(server: ServeProcess, client: openai.OpenAI) -> None:
    """The HTTP process reads the tokenizer and config.json without torch (seconds of every start);
    the engine process, its child, holds the weights. Both answered a request before this looks."""
    client.chat.completions.create(model="router", messages=HELLO, max_tokens=2, temperature=0)
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read_text().split()
    assert not _maps_torch(server.process.pid)
    assert any(_maps_torch(int(child)) for child in children)


def test_an_adapter_is_a_model_of_its_own(client: openai.OpenAI) -> None:
    def text(model: str) -> str | None:
        reply = client.chat.completions.create(model=model, messages=HELLO, max_tokens=12, temperature=0)  # type: ignore[arg-type]
        assert reply.model == model
        return reply.choices[0].message.content

    assert text("router") != text("nano")


def test_chat_plain(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="nano", messages=HELLO, max_tokens=12, seed=1)
    assert reply.object == "chat.completion"
    assert reply.id.startswith("chatcmpl-")
    assert reply.model == "nano"
    (choice,) = reply.choices
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str)
    assert choice.finish_reason in ("stop", "length")
    assert reply.usage is not None
    assert reply.usage.prompt_tokens > 0
    assert 0 < reply.usage.completion_tokens <= 12
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_chat_streamed_matches_plain_and_ends_with_usage(client: openai.OpenAI) -> None:
    options: dict[str, Any] = {"model": "nano", "messages": HELLO, "max_tokens": 16, "temperature": 0}
    plain = client.chat.completions.create(**options)
    chunks = list(client.chat.completions.create(**options, stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == plain.choices[0].message.content
    finishes = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason]
    assert finishes == [plain.choices[0].finish_reason]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == plain.usage.completion_tokens  # type: ignore[union-attr]
    assert all(chunk.id == chunks[0].id for chunk in chunks)


def test_stream_without_include_usage_has_no_usage_chunk(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="nano", messages=HELLO, max_tokens=4, stream=True))
    assert all(chunk.choices for chunk in chunks)
    assert all(chunk.usage is None for chunk in chunks)


def test_completions(client: openai.OpenAI) -> None:
    reply = client.completions.create(model="nano", prompt="def ", max_tokens=8, seed=3, logprobs=2)
    assert reply.object == "text_completion"
    (choice,) = reply.choices
    assert isinstance(choice.text, str)
    assert choice.logprobs is not None
    assert len(choice.logprobs.tokens or []) == reply.usage.completion_tokens  # type: ignore[union-attr]
    assert all(len(top) <= 2 for top in choice.logprobs.top_logprobs or [])
    streamed = client.completions.create(model="nano", prompt="def ", max_tokens=8, seed=3, stream=True)
    assert "".join(chunk.choices[0].text for chunk in streamed) == choice.text


def test_n_choices_are_seeded_apart(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="nano", messages=HELLO, max_tokens=10, n=3, seed=7)
    assert [choice.index for choice in reply.choices] == [0, 1, 2]
    texts = [choice.message.content for choice in reply.choices]
    assert len(set(texts)) > 1
    assert reply.usage is not None
    # Usage counts the prompt once and every choice's tokens.
    single = client.chat.completions.create(model="nano", messages=HELLO, max_tokens=10, seed=7)
    assert reply.usage.prompt_tokens == single.usage.prompt_tokens  # type: ignore[union-attr]
    assert texts[0] == single.choices[0].message.content


def test_n_streamed(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="nano", messages=HELLO, max_tokens=6, n=2, stream=True))
    ended = {chunk.choices[0].index for chunk in chunks if chunk.choices[0].finish_reason}
    assert ended == {0, 1}


def test_seed_reproduces_and_differs(client: openai.OpenAI) -> None:
    def text(seed: int) -> str | None:
        reply = client.chat.completions.create(model="nano", messages=HELLO, max_tokens=16, seed=seed, temperature=1.0)
        return reply.choices[0].message.content

    first = text(11)
    assert text(11) == first
    assert any(text(seed) != first for seed in (12, 13, 14))


def test_stop_string_is_not_returned(client: openai.OpenAI) -> None:
    free = client.completions.create(model="nano", prompt="import ", max_tokens=40, temperature=0).choices[0]
    assert len(free.text) > 4
    stop = free.text[2:4]
    cut = client.completions.create(model="nano", prompt="import ", max_tokens=40, temperature=0, stop=[stop])
    assert cut.choices[0].text == free.text[: free.text.index(stop)]
    assert cut.choices[0].finish_reason == "stop"


def test_chat_logprobs(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="nano", messages=HELLO, max_tokens=5, logprobs=True, top_logprobs=3)
    content = reply.choices[0].logprobs.content  # type: ignore[union-attr]
    assert content is not None
    assert len(content) == reply.usage.completion_tokens  # type: ignore[union-attr]
    for item in content:
        assert item.logprob <= 0
        assert len(item.top_logprobs) == 3
        assert item.top_logprobs[0].logprob >= item.top_logprobs[-1].logprob
    tokens = [item.token for item in content]
    text = reply.choices[0].message.content
    if reply.choices[0].finish_reason == "stop" and "".join(tokens) != text:
        # A reply that ends with the model's end token: the token is counted and has its logprob,
        # but it is no text of the message.
        assert "".join(tokens[:-1]) == text
    else:
        assert "".join(tokens) == text


def test_processed_logprobs_are_those_of_what_the_grammar_lets_through(client: openai.OpenAI) -> None:
    # One answer only ("yes" or "no" in a fixed object): under the grammar every token but the choice
    # is forced, so its processed logprob is 0 (certain); the choice's two alternatives are all there is.
    schema = {"type": "object", "additionalProperties": False, "required": ["answer"],
              "properties": {"answer": {"enum": ["yes", "no"]}}}  # fmt: skip
    form: Any = {"type": "json_schema", "json_schema": {"name": "verdict", "schema": schema}}

    def ask(mode: str | None, **more: Any) -> Any:
        extra = {"logprobs_mode": mode} if mode else None
        return client.chat.completions.create(model="nano", messages=HELLO, temperature=0, logprobs=True,
                                              response_format=form, extra_body=extra, **more)  # fmt: skip

    processed = ask("processed", top_logprobs=5)
    content = processed.choices[0].logprobs.content  # type: ignore[union-attr]
    assert content
    assert all(item.logprob <= 0 for item in content)
    assert sum(item.logprob == 0.0 for item in content) >= len(content) - 2
    for item in content:
        # Nothing the grammar rules out is an alternative: a forced token has none but itself.
        assert all(math.isfinite(top.logprob) for top in item.top_logprobs)
        assert sum(math.exp(top.logprob) for top in item.top_logprobs) <= 1.0 + 1e-4
        if item.logprob == 0.0:
            assert [top.token for top in item.top_logprobs] == [item.token]
    raw = ask(None).choices[0].logprobs.content  # type: ignore[union-attr]
    assert raw
    assert [item.token for item in raw] == [item.token for item in content]
    assert sum(item.logprob for item in raw) < sum(item.logprob for item in content)
    streamed = ask("processed", stream=True)
    pieces = [item.logprob for chunk in streamed if chunk.choices and chunk.choices[0].logprobs
              for item in chunk.choices[0].logprobs.content or []]  # fmt: skip
    assert pieces == pytest.approx([item.logprob for item in content])


def test_an_unknown_logprobs_mode_is_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="logprobs_mode"):
        client.chat.completions.create(model="nano", messages=HELLO, logprobs=True,
                                       extra_body={"logprobs_mode": "cooked"})  # fmt: skip


@pytest.mark.parametrize("schema_name", ["decision", "plan"])
def test_json_schema_answer_validates(client: openai.OpenAI, schema_name: str) -> None:
    schema = validator(schema_name).schema
    reply = client.chat.completions.create(
        model="nano",
        messages=[{"role": "user", "content": "Route this task: add a test"}],
        temperature=0,
        frequency_penalty=2.0,  # a nano model repeats one token forever inside a string otherwise
        response_format={"type": "json_schema", "json_schema": {"name": schema_name, "schema": schema}},
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "stop", choice.message.content
    validator(schema_name).validate(json.loads(choice.message.content or ""))


def test_json_schema_samples_validate_or_are_cut_off(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["answer", "score"],
        "properties": {"answer": {"enum": ["yes", "no"]}, "score": {"type": "integer", "minimum": 1, "maximum": 5}},
    }
    reply = client.chat.completions.create(
        model="nano",
        messages=HELLO,
        n=4,
        seed=5,
        response_format={"type": "json_schema", "json_schema": {"name": "verdict", "schema": schema}},
    )
    for choice in reply.choices:
        assert choice.finish_reason == "stop"
        answer = json.loads(choice.message.content or "")
        assert answer["answer"] in ("yes", "no")
        assert 1 <= answer["score"] <= 5


@pytest.mark.parametrize("value", ["inbox/日本語のメモ.txt", "naïve café/Résumé.docx", "emoji 🎉 party.png"])
def test_an_answer_of_characters_spelled_byte_by_byte_comes_back_whole(client: openai.OpenAI, value: str) -> None:
    # The only answer the schema allows holds characters the tokenizer spells as single bytes: a
    # decoder that turns a run of bytes into replacement characters while its last character is
    # unfinished must not leak them into the text, streamed or not.
    form: Any = {"type": "json_schema", "json_schema": {"name": "name", "schema": {"enum": [value]}}}
    reply = client.chat.completions.create(model="nano", messages=HELLO, temperature=0, response_format=form)
    assert reply.choices[0].finish_reason == "stop"
    assert json.loads(reply.choices[0].message.content or "") == value
    chunks = client.chat.completions.create(
        model="nano", messages=HELLO, temperature=0, response_format=form, stream=True
    )
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert json.loads(streamed) == value


def test_json_object(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="nano", messages=HELLO, temperature=0, frequency_penalty=2.0, response_format={"type": "json_object"}
    )
    if reply.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(reply.choices[0].message.content or ""), dict)
    else:
        assert (reply.choices[0].message.content or "").startswith("{")


def test_answer_failing_a_rewritten_keyword_is_422(client: openai.OpenAI) -> None:
    # "not" cannot be decoded with: the grammar drops it, and the answer then always fails it.
    schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["ok"],
        "properties": {"ok": {"type": "boolean"}},
        "not": {"required": ["ok"]},
    }
    form: Any = {"type": "json_schema", "json_schema": {"name": "never", "schema": schema}}
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        client.chat.completions.create(model="nano", messages=HELLO, response_format=form, max_tokens=20)
    assert caught.value.code == "schema_not_satisfied"
    with pytest.raises(openai.APIError, match="does not satisfy the schema"):
        list(client.chat.completions.create(model="nano", messages=HELLO, response_format=form, stream=True))


def test_self_consistency_votes(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="nano", messages=HELLO, max_tokens=6, seed=2, extra_body={"self_consistency": 3}
    )
    assert len(reply.choices) == 1
    votes = reply.model_extra["self_consistency"]  # type: ignore[index]
    assert votes["samples"] == 3
    assert sum(votes["votes"].values()) <= 3
    assert reply.usage.completion_tokens <= 18  # type: ignore[union-attr]
    streamed = list(
        client.chat.completions.create(
            model="nano", messages=HELLO, max_tokens=6, seed=2, stream=True, extra_body={"self_consistency": 3}
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == reply.choices[0].message.content


def test_calculator_adds_the_result_to_the_prompt(client: openai.OpenAI) -> None:
    question = [{"role": "user", "content": "What is 12 * (3 + 4)?"}]
    plain = client.chat.completions.create(model="nano", messages=question, max_tokens=1)  # type: ignore[arg-type]
    helped = client.chat.completions.create(
        model="nano",
        messages=question,  # type: ignore[arg-type]
        max_tokens=1,
        extra_body={"calculator": True},
    )
    assert helped.usage.prompt_tokens > plain.usage.prompt_tokens  # type: ignore[union-attr]


def test_health_and_metrics_are_open(server: ServeProcess, client: openai.OpenAI) -> None:
    client.chat.completions.create(model="nano", messages=HELLO, max_tokens=3)
    health = server.health()
    assert health["status"] == "ok"
    assert health["models"] == ["nano", "router"]
    assert {"waiting", "running", "requests", "tokens_per_s"} <= set(health)
    assert health["requests"] >= 1
    # Polling /health is not a request to the model.
    assert [server.health()["requests"] for _ in range(3)] == [health["requests"]] * 3
    metrics = httpx.get(f"{server.root}/metrics", timeout=30)
    assert metrics.status_code == 200
    text = metrics.text
    for name in (
        "routeshell_requests_total",
        "routeshell_completion_tokens_total",
        "routeshell_queue_depth",
        "routeshell_running_sequences",
        "routeshell_time_to_first_token_seconds_bucket",
        "routeshell_tokens_per_second",
    ):
        assert name in text
    assert 'routeshell_requests_total{path="/v1/chat/completions",status="200"}' in text


def test_each_request_is_one_event(server: ServeProcess, client: openai.OpenAI) -> None:
    before = len(server.events)
    client.completions.create(model="nano", prompt="x", max_tokens=2)

    def logged() -> list[dict[str, Any]]:
        return [e for e in server.events[before:] if e["type"] == "serve_request" and e["path"] == "/v1/completions"]

    assert wait_until(lambda: logged(), timeout=30)
    (event,) = logged()
    assert event["status"] == 200
    assert event["method"] == "POST"
    assert event["model"] == "nano"
    assert event["completion_tokens"] >= 1
    assert event["prompt_tokens"] >= 1
