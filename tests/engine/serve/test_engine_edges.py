"""The engine at its edges, on a real nano model: end tokens, grammars that fail while decoding."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.serve.engine import Engine, collect
from engine.serve.loaded import LoadedModel, load_model
from engine.serve.types import GenerationRequest, SamplingParams
from tests.engine.tinyllm.training_support import TrainRun


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def loaded(pretrained: tuple[Path, TrainRun]) -> LoadedModel:
    return load_model(pretrained[0], dtype="fp32")


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
