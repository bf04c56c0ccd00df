"""The engine at its edges, on a real nano model: end tokens, grammars that fail while decoding."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from engine.serve.engine import Engine, collect
from engine.serve.loaded import LoadedModel
from engine.serve.types import GRAMMAR_FAILED, GenerationRequest, SamplingParams, ServeError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def engine(loaded: LoadedModel) -> Iterator[Engine]:
    engine = Engine(loaded, max_batch=4, max_queue=4)
    engine.start()
    yield engine
    engine.stop()


class Script:
    """A constraint that allows exactly the given tokens, one after another (a grammar of one answer)."""

    def __init__(self, tokens: list[int]) -> None:
        self.tokens = tokens
        self.at = 0

    def fill_mask(self, bitmask: object, row: int) -> None:
        assert isinstance(bitmask, np.ndarray)
        token = self.tokens[min(self.at, len(self.tokens) - 1)]
        bitmask[row] = 0
        bitmask[row, token // 32] = np.int32(np.uint32(1 << (token % 32)).view(np.int32))

    def consume(self, token: int) -> None:
        self.at += 1

    def done(self) -> bool:
        return False


class Scripted:
    def __init__(self, tokens: list[int]) -> None:
        self.tokens = tokens

    def new(self) -> Script:
        return Script(self.tokens)


def test_an_end_token_that_is_not_special_never_reaches_the_text(engine: Engine, loaded: LoadedModel) -> None:
    sep = loaded.tokenizer.convert_tokens_to_ids("<|sep|>")
    assert sep in loaded.eos_ids  # chat replies end with it (generation_config.json)
    word = loaded.text_ids("return")[-1]
    params = SamplingParams(max_tokens=10, temperature=0.0)
    prompt = tuple(loaded.text_ids("def f():\n"))
    done = collect(engine.submit(GenerationRequest("r", prompt, params, grammar=Scripted([word, word, sep]))))
    assert done.finish_reason == "stop"
    assert done.token_ids[-1] == sep
    assert "<|sep|>" not in done.text
    assert done.text == loaded.tokenizer.decode([word, word])


def test_a_grammar_that_fails_while_decoding_is_the_requests_400(engine: Engine, loaded: LoadedModel) -> None:
    """llguidance builds a huge pattern's lexer lazily and gives up on the first character: the
    sequence ends in error with the grammar's reason, and the server answers 400, not a 422 that
    blames the model."""
    import asyncio

    from engine.serve.protocol import ChatRequest, parse_request
    from engine.serve.serving import Serving

    schema = {"type": "string", "pattern": "^a{1000000}$"}
    body = {
        "model": loaded.name,
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 8,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    }
    serving = Serving(loaded, engine)
    job = serving.prepare_chat(parse_request(ChatRequest, body))
    done = collect(serving.submit(job)[0])
    assert done.finish_reason == "error", (done.text, done.token_ids)
    assert done.error is not None
    assert done.error.startswith(GRAMMAR_FAILED)
    with pytest.raises(ServeError) as refused:
        asyncio.run(serving.complete(job, serving.submit(job)))
    assert (refused.value.status, refused.value.param, refused.value.code) == (400, "response_format", "grammar_failed")


def test_a_waiting_request_that_is_cancelled_leaves_the_queue_at_once(loaded: LoadedModel) -> None:
    """Its client is gone (or the server is stopping): it must not hold a queue place, nor its
    stream stay open, until the request ahead of it ends."""
    engine = Engine(loaded, max_batch=1, max_queue=1)
    engine.start()
    try:
        word = loaded.text_ids("return")[-1]
        prompt = tuple(loaded.text_ids("def f():\n"))
        long = SamplingParams(max_tokens=250, temperature=0.0)
        running = engine.submit(GenerationRequest("long", prompt, long, grammar=Scripted([word])))
        next(iter(running))  # admitted: the next one waits in the queue
        waiting = engine.submit(GenerationRequest("short", prompt, SamplingParams(max_tokens=5)))
        waiting.cancel()
        assert collect(waiting).finish_reason == "cancelled"
        assert not running.finished  # it was not waited for
        assert engine.stats().waiting == 0
        collect(running)
    finally:
        engine.stop()


class Broken:
    """A grammar that cannot start: its request fails in prefill."""

    def new(self) -> Script:
        raise RuntimeError("this grammar cannot start")


def test_a_failing_prompt_in_a_prefill_group_fails_alone(engine: Engine, loaded: LoadedModel) -> None:
    params = SamplingParams(max_tokens=6, temperature=0.0)
    prompts = [tuple(loaded.text_ids(text)) for text in ("def parse(", "import os", "class A:")]
    alone = [collect(engine.submit(GenerationRequest(f"a{i}", p, params))).token_ids for i, p in enumerate(prompts)]
    # Held while submitting, the engine's lock makes the engine admit all three in one step: one prefill group.
    with engine._cond:
        streams = [
            engine.submit(GenerationRequest("g0", prompts[0], params)),
            engine.submit(GenerationRequest("bad", prompts[1], params, grammar=Broken())),
            engine.submit(GenerationRequest("g2", prompts[2], params)),
        ]
    done = [collect(stream) for stream in streams]
    assert [d.finish_reason for d in done] == ["length", "error", "length"]
    assert "this grammar cannot start" in (done[1].error or "")
    assert [done[0].token_ids, done[2].token_ids] == [alone[0], alone[2]]
