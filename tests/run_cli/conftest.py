"""Fixtures of the ``routeshell run`` tests: a small workspace and a wide transcript."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """A small workspace with one module the plans change."""
    root = tmp_path / "ws"
    root.mkdir()
    (root / "app.py").write_text("VALUE = 1\n")
    return root


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wide transcript, so that no checked line is wrapped whatever terminal runs the tests."""
    monkeypatch.setenv("COLUMNS", "200")
