"""A reasoning model behind the server: ``reasoning_content`` beside ``content``, plain and streamed,
and self-consistency over its final answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine.serve.server_support import ServeProcess, serving
from tests.engine.tinyllm.training_support import TrainRun

QUESTION = [{"role": "user", "content": "Tom has 3 apples and buys 4 more. How many apples does he have?"}]


@pytest.fixture(scope="module")
def server(reasoning_model: tuple[Path, TrainRun]) -> Iterator[ServeProcess]:
    """The reasoning model of tests/conftest.py (the English markers, 60 steps) served as ``reasoner``."""
    with serving(reasoning_model[0], "--name", "reasoner") as process:
        yield process


def test_reasoning_is_apart_from_the_answer(server: ServeProcess) -> None:
    client = server.client()
    reply = client.chat.completions.create(model="reasoner", messages=QUESTION, temperature=0, max_tokens=120)  # type: ignore[arg-type]
    message = reply.choices[0].message
    reasoning = message.model_extra["reasoning_content"]  # type: ignore[index]
    assert isinstance(reasoning, str)
    assert reasoning
    assert "Reasoning:" not in reasoning
    assert not (message.content or "").startswith("Answer:")

    chunks = list(
        client.chat.completions.create(
            model="reasoner",
            messages=QUESTION,  # type: ignore[arg-type]
            temperature=0,
            max_tokens=120,
            stream=True,
        )
    )
    deltas = [chunk.choices[0].delta for chunk in chunks if chunk.choices]
    streamed_reasoning = "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas)
    streamed_content = "".join(d.content or "" for d in deltas)
    assert streamed_reasoning.strip() == reasoning
    assert streamed_content.strip() == message.content


def test_self_consistency_votes_over_final_answers(server: ServeProcess) -> None:
    reply = server.client().chat.completions.create(
        model="reasoner",
        messages=QUESTION,  # type: ignore[arg-type]
        max_tokens=100,
        seed=1,
        extra_body={"self_consistency": 3},
    )
    votes = reply.model_extra["self_consistency"]  # type: ignore[index]
    assert votes["samples"] == 3
    assert 1 <= sum(votes["votes"].values()) <= 3
    assert reply.choices[0].message.model_extra["reasoning_content"] is not None  # type: ignore[index]
