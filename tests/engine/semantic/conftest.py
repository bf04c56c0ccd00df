"""The real embedding model, loaded once for every test here, and a small workspace of documents."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.semantic.index import TextEmbedder
from engine.semantic.search import load_embedder
from tests.engine.semantic.library import build_library


@pytest.fixture(scope="session")
def embedder() -> TextEmbedder:
    """all-MiniLM-L6-v2, shared by the process (loading it takes seconds, once)."""
    return load_embedder()


@pytest.fixture
def library(tmp_path: Path) -> Path:
    return build_library(tmp_path / "library")
