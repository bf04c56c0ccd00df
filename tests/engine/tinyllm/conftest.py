"""Fixtures shared by the TinyLLM tests: a small corpus and one nano model pretrained on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine.tinyllm.training_support import TrainRun, make_corpus, run_train


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of a few standard library modules, the nano model's pretraining corpus."""
    return make_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def pretrained(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path) -> tuple[Path, TrainRun]:
    """A nano model pretrained for 40 steps (tokenizer included) with validation every 20 steps."""
    root = tmp_path_factory.mktemp("pretrained")
    out = root / "model"
    run = run_train(
        "pretrain", "--preset", "nano", "--data", str(corpus_dir), "--max-steps", "40",
        "--eval-every", "20", "--save-every", "20", "--batch-size", "4", "--lr", "1e-3", "--out", str(out),
        cache=root / "cache",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    return out, run
