"""A router whose weights are not finite numbers (NaN, infinity, or so large that a score
overflows) is refused when it is loaded, and one that gives such probabilities is not used."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from engine.jsonl import json_text
from engine.router.baselines import TfidfModel
from engine.router.candidates import candidates
from engine.router.evaluate import predict
from engine.router.generator import generate_requests
from engine.router.labels import LabelledTask
from engine.router.registry import load_router
from engine.router.router_dir import FORMAT_VERSION, RouterDirError, load_model, save_model
from engine.router.scored import ScoredRouter
from tests.helpers import assert_one_line_error, run_routeshell

TASKS = generate_requests(120, seed=5)


def _meta(kind: str) -> dict[str, object]:
    return {"format": FORMAT_VERSION, "kind": kind, "candidates": [c.key for c in candidates()], "data": [],
            "label_sources": {}, "train_tasks": len(TASKS), "metrics": {}, "command": "test"}  # fmt: skip


@pytest.fixture(scope="module")
def tfidf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("routers") / "tfidf"
    model = TfidfModel.fit([t.text for t in TASKS], [t.gold for t in TASKS])
    save_model(directory, model, _meta("tfidf"))  # type: ignore[arg-type]
    return directory


def _damaged(source: Path, target: Path, key: str, value: float) -> Path:
    """A copy of the tfidf router in ``source`` with every number of ``key`` set to ``value``."""
    target.mkdir()
    (target / "router.json").write_bytes((source / "router.json").read_bytes())
    data = json.loads((source / "tfidf.json").read_text())
    data[key] = [[value] * len(row) for row in data[key]] if key == "coef" else [value] * len(data[key])
    (target / "tfidf.json").write_text(json.dumps(data))
    return target


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [
        ("coef", math.nan, "coef holds nan, not a finite number"),
        ("coef", 1e308, "coef holds 1e+308, more than a weight can be"),
        ("intercept", -math.inf, "intercept holds -inf, not a finite number"),
        ("idf", math.nan, "idf holds nan, not a finite number"),
    ],
)
def test_weights_that_are_not_finite_are_refused_at_load(
    tfidf_dir: Path, tmp_path: Path, key: str, value: float, needle: str
) -> None:
    damaged = _damaged(tfidf_dir, tmp_path / "bad", key, value)
    with pytest.raises(RouterDirError, match=re.escape(needle)):
        load_model(damaged)
    router, note = load_router({"kind": "model", "model_dir": str(damaged)})
    assert type(router).__name__ == "HeuristicRouter"
    assert note is not None
    assert needle in note
    assert note.endswith("using the heuristic router")


def test_embedding_router_weights_that_are_not_finite_are_refused_at_load(tmp_path: Path) -> None:
    import torch

    from engine.router.embedded import KnnModel

    vectors = torch.full((4, 8), math.nan)
    save_model(tmp_path / "knn", KnnModel(vectors, torch.zeros(4, dtype=torch.long), 3), _meta("knn"))  # type: ignore[arg-type]
    with pytest.raises(RouterDirError, match=r"knn\.safetensors: vectors holds a weight that is not a finite number"):
        load_model(tmp_path / "knn")


class _NaN:
    kind = "nan"

    def probabilities(self, texts: Sequence[str]) -> list[list[float]]:
        return [[math.nan] * len(candidates()) for _ in texts]


def test_a_model_that_gives_nan_falls_back_and_scores_as_invalid() -> None:
    decision = ScoredRouter(_NaN()).route("fix the failing test_login")
    assert decision.router == "heuristic"
    assert decision.topology == "loop"
    assert "the model:nan router failed (ValueError: the model gave a probability of nan" in decision.reason
    (prediction,) = predict(_NaN(), [LabelledTask(TASKS[0], TASKS[0].gold, "", "files_gold", "")])
    assert prediction.chosen is None


def test_json_never_holds_nan_or_infinity() -> None:
    text = json_text({"p": math.nan, "rows": [math.inf, 1.5, {"q": -math.inf}], "n": 2})
    assert json.loads(text) == {"p": None, "rows": [None, 1.5, {"q": None}], "n": 2}


def test_route_refuses_a_router_with_nan_weights_in_one_line(tfidf_dir: Path, tmp_path: Path) -> None:
    damaged = _damaged(tfidf_dir, tmp_path / "bad", "coef", math.nan)
    result = run_routeshell("route", "--router", str(damaged), "--json", "fix the failing test")
    assert_one_line_error(result, 2, "cannot load the tfidf router", "not a finite number")
    result = run_routeshell("route", "--router", str(tfidf_dir), "--json", "fix the failing test")
    assert result.returncode == 0, result.stderr
    assert all(math.isfinite(c["probability"]) for c in json.loads(result.stdout)["candidates"])
