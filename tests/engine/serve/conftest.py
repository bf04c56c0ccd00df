"""Fixtures of the engine tests: torch on one thread, and the session's nano model loaded in fp32."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from engine.serve.loaded import LoadedModel, load_model
from tests.engine.tinyllm.training_support import TrainRun


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """torch on one thread for a module's in-process decoding (the machine's cores are shared)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def loaded(pretrained: tuple[Path, TrainRun]) -> LoadedModel:
    """The session's pretrained nano model, loaded for serving in fp32."""
    return load_model(pretrained[0], dtype="fp32")
