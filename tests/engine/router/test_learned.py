"""Learned routers: every decision validates, they save and load exactly, they beat the heuristic
on requests whose words do not give them away, and any failure falls back to the heuristic."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import pytest

from engine.router.baselines import HeuristicModel, TfidfModel, constant, majority
from engine.router.candidates import candidates
from engine.router.evaluate import RouterEvalOptions, best_row, evaluate_routers, predict
from engine.router.generator import generate_requests
from engine.router.labels import LabelledTask, gold_label, make_sample, write_samples
from engine.router.metrics import Prediction, macro_f1, percentile, score
from engine.router.registry import load_router
from engine.router.router_dir import FORMAT_VERSION, RouterDirError, RouterWriteError, load_model, save_model
from engine.router.scored import ScoredRouter, ranked
from engine.router.tasks import is_held_out
from engine.schemas import validator
from tests.helpers import small_disk

TASKS = generate_requests(450, seed=11)
POOL = [t for t in TASKS if not is_held_out(t.task_id)]
HELD = [t for t in TASKS if is_held_out(t.task_id)]
PROBES = ["move the pdfs into finance", "test_login is red, fix it", "", "x" * 5000, "\x1b[31m\udcff\n;DROP"]


def _labelled(tasks: Sequence[object]) -> list[LabelledTask]:
    return [LabelledTask(t, t.gold, "", "files_gold", "") for t in tasks]  # type: ignore[attr-defined]


def _meta(kind: str) -> dict[str, object]:
    return {"format": FORMAT_VERSION, "kind": kind, "candidates": [c.key for c in candidates()], "data": [],
            "label_sources": {}, "train_tasks": len(POOL), "metrics": {}, "command": "test"}  # fmt: skip


@pytest.fixture(scope="module")
def fitted() -> dict[str, object]:
    from engine.router.embedded import fit_embedded

    texts, labels = [t.text for t in POOL], [t.gold for t in POOL]
    return {"tfidf": TfidfModel.fit(texts, labels), "mlp": fit_embedded("mlp", texts, labels),
            "knn": fit_embedded("knn", texts, labels)}  # fmt: skip


@pytest.mark.parametrize("kind", ["tfidf", "mlp", "knn"])
def test_a_learned_router_saves_loads_and_always_answers_a_valid_decision(
    fitted: dict[str, object], kind: str, tmp_path: Path
) -> None:
    model = fitted[kind]
    save_model(tmp_path / "r", model, _meta(kind))  # type: ignore[arg-type]
    loaded, meta = load_model(tmp_path / "r")
    assert meta["kind"] == kind
    before = model.probabilities(PROBES)  # type: ignore[attr-defined]
    after = loaded.probabilities(PROBES)
    for row, again in zip(before, after, strict=True):
        assert sum(row) == pytest.approx(1.0, abs=1e-4)
        assert again == pytest.approx(row, abs=2e-3)  # knn keeps its vectors in float16
    router = ScoredRouter(loaded)
    for probe in PROBES:
        decision = router.route(probe)
        assert validator("decision").is_valid(decision.as_json())
        assert decision.router == f"model:{kind}"


@pytest.mark.parametrize("kind", ["tfidf", "mlp", "knn"])
def test_learned_routers_beat_the_heuristic_where_words_mislead_it(fitted: dict[str, object], kind: str) -> None:
    held = _labelled(HELD)
    learned = score(predict(fitted[kind], held), resamples=10)  # type: ignore[arg-type]
    heuristic = score(predict(HeuristicModel(), held), resamples=10)
    assert learned["decision_exact"]["value"] > heuristic["decision_exact"]["value"] + 0.1
    assert learned["schema_valid"] == 1.0


class _Broken:
    kind = "broken"

    def probabilities(self, texts: Sequence[str]) -> list[list[float]]:
        raise RuntimeError("weights are gone")


def test_a_failing_model_falls_back_to_the_heuristic_and_says_so() -> None:
    decision = ScoredRouter(_Broken()).route("fix the failing test_login")
    assert decision.router == "heuristic"
    assert decision.topology == "loop"
    assert decision.reason.startswith("the model:broken router failed (RuntimeError: weights are gone); heuristic:")


def test_constants_and_majority() -> None:
    assert ranked(constant("always-loop").probabilities(["x"])[0])[0][0].key == "loop:builder+tester:3"
    labels = [t.gold for t in POOL]
    top = max(set(labels), key=labels.count)
    assert majority(labels).candidate == top  # type: ignore[arg-type]


def test_metrics_by_hand() -> None:
    assert macro_f1([("single", "single"), ("loop", "single"), ("loop", "loop"), ("pipeline", None)]) == pytest.approx(
        (2 / 3 + 2 / 3 + 0) / 3
    )
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    gold = [t.gold for t in HELD[:20]]
    right = [Prediction(g, g, 0.001) for g in gold]  # type: ignore[arg-type]
    wrong = [Prediction(g, None, 0.002) for g in gold]  # type: ignore[arg-type]
    half = score(right[:10] + wrong[10:], resamples=200)
    assert half["decision_exact"]["value"] == 0.5
    assert half["decision_exact"]["low"] < 0.5 < half["decision_exact"]["high"]
    assert half["schema_valid"] == 0.5


def test_evaluation_compares_every_router_on_the_held_out_split(tmp_path: Path, fitted: dict[str, object]) -> None:
    data = tmp_path / "labels.jsonl"
    write_samples(data, [make_sample(t, gold_label(t), "gold") for t in TASKS])
    save_model(tmp_path / "r", fitted["tfidf"], _meta("tfidf"))  # type: ignore[arg-type]
    options = RouterEvalOptions((data,), (tmp_path / "r",), ("heuristic", "always-single", "majority", "tfidf"),
                                cv=True, resamples=50)  # fmt: skip
    report = evaluate_routers(options)
    assert report["held_out_tasks"] == len(HELD)
    assert report["train_tasks"] == len(POOL)
    names = [row["router"] for row in report["rows"]]
    assert names == ["heuristic", "always-single", "majority", "tfidf", str(tmp_path / "r")]
    tfidf = report["rows"][3]
    assert tfidf["cv_decision_exact"] is not None
    assert len(tfidf["cv_decision_exact"]) == 5
    assert report["rows"][4]["scores"]["decision_exact"] == tfidf["scores"]["decision_exact"]
    assert best_row(report)["kind"] == "tfidf"


def test_a_router_directory_is_checked_and_replaced_whole(tmp_path: Path, fitted: dict[str, object]) -> None:
    out = tmp_path / "r"
    save_model(out, fitted["tfidf"], _meta("tfidf"))  # type: ignore[arg-type]
    meta = json.loads((out / "router.json").read_text())
    (out / "router.json").write_text(json.dumps({**meta, "candidates": ["single:builder"]}))
    with pytest.raises(RouterDirError, match="another candidate set"):
        load_model(out)
    (out / "router.json").write_text("{")
    with pytest.raises(RouterDirError, match="cannot read"):
        load_model(out)
    (out / "router.json").write_text(json.dumps(meta))
    for damage in ('{"vocabulary": 5}', "[]", '{"vocabulary": {}, "idf": "x", "classes": [], "coef": 1}'):
        (out / "tfidf.json").write_text(damage)
        with pytest.raises(RouterDirError, match="cannot load the tfidf router"):
            load_model(out)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(RouterDirError.__mro__[1], match="not a router"):
        save_model(tmp_path / "other", fitted["tfidf"], _meta("tfidf"))  # type: ignore[arg-type]
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_a_full_disk_keeps_the_old_router(tmp_path: Path, fitted: dict[str, object]) -> None:
    with small_disk(tmp_path / "disk", "256k") as disk:
        save_model(disk / "r", constant_model := _Tiny(), _meta("tfidf"))  # type: ignore[arg-type]
        with pytest.raises(RouterWriteError, match="No space left on device"):
            save_model(disk / "r", fitted["tfidf"], _meta("tfidf"))  # type: ignore[arg-type]
        assert json.loads((disk / "r" / "tfidf.json").read_text()) == constant_model.data
        assert sorted(p.name for p in disk.iterdir()) == ["r"]


class _Tiny:
    kind = "tfidf"
    data: ClassVar[dict[str, object]] = {
        "vocabulary": {"x": 0}, "idf": [1.0], "classes": ["single:builder"], "coef": [], "intercept": []
    }  # fmt: skip

    def save(self, directory: Path) -> None:
        (directory / "tfidf.json").write_text(json.dumps(self.data))


def test_the_profile_router_kind_model_loads_a_router_directory(tmp_path: Path, fitted: dict[str, object]) -> None:
    save_model(tmp_path / "r", fitted["mlp"], _meta("mlp"))  # type: ignore[arg-type]
    router, note = load_router({"kind": "model", "model_dir": str(tmp_path / "r")})
    assert note is None
    assert router.name == "model:mlp"
    assert router.route("tests/test_storage.py keeps failing, fix it").topology == "loop"
