"""Fixtures of the agent tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.agents.calc_task import CALC


@pytest.fixture
def root(tmp_path: Path) -> Path:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "calc.py").write_text(CALC)
    return workspace


# The graph-level fixtures, for the test modules beside test_graph.py.
from tests.agents.test_graph import checkpointer, graph_run  # noqa: E402, F401
