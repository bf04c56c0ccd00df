"""Fitting routers on the training pool and comparing them on the held-out split.

The labelled samples are split by task id (:func:`~engine.router.tasks.is_held_out`): routers
learn from the pool only, and every router, learned or not, is scored on the held-out tasks, one
task at a time, as a shell would ask it. With ``cv`` the fittable kinds are also cross-validated
on the pool (5 folds), which says how much their score moves with the data they see.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from engine.errors import UsageError
from engine.router.baselines import CONSTANTS, HeuristicModel, TfidfModel, constant, majority
from engine.router.candidates import Candidate
from engine.router.cost import CostReport, cost_report, read_oracle
from engine.router.labels import LabelledTask, read_samples
from engine.router.metrics import Prediction, RouterScores, score
from engine.router.router_dir import load_model
from engine.router.scored import CandidateModel, ranked
from engine.router.tasks import folds, partition

#: Kinds fitted on the pool by ``eval router`` itself, in table order.
FITTED = ("tfidf", "knn", "mlp")
BASELINES = ("heuristic", *CONSTANTS, "majority", *FITTED)


class RouterRow(TypedDict):
    """One router's line of the evaluation table."""

    router: str
    kind: str
    scores: RouterScores
    by_source: dict[str, float]
    cv_decision_exact: list[float] | None
    cost: CostReport | None


class RouterReport(TypedDict):
    """The whole evaluation."""

    data: list[str]
    train_tasks: int
    held_out_tasks: int
    held_out_by_source: dict[str, int]
    rows: list[RouterRow]


@dataclass(frozen=True)
class RouterEvalOptions:
    """What to evaluate: the labelled data, trained router directories, and which baselines."""

    data: tuple[Path, ...]
    routers: tuple[Path, ...] = ()
    baselines: tuple[str, ...] = BASELINES
    cv: bool = False
    seed: int = 0
    drop_no_output: bool = False
    resamples: int = 1000
    oracle: Path | None = None
    progress: Callable[[str], None] = field(default=lambda line: None)


def fit_model(kind: str, texts: Sequence[str], labels: Sequence[Candidate], *, seed: int = 0) -> CandidateModel:
    """Fit a router of ``kind`` (``tfidf``, ``knn``, ``mlp``, ``majority``) on ``texts`` and their labels."""
    if kind == "tfidf":
        return TfidfModel.fit(texts, labels, seed=seed)
    if kind == "majority":
        return majority(labels)
    if kind in ("knn", "mlp"):
        import importlib

        # By name: the embedding routers load torch, which the rest of engine.router never does.
        embedded = importlib.import_module("engine.router.embedded")
        model: CandidateModel = embedded.fit_embedded(kind, texts, labels, seed=seed)
        return model
    raise UsageError(f"unknown router kind {kind!r} (choose tfidf, knn or mlp)")


def predict(
    model: CandidateModel, tasks: Sequence[LabelledTask], scores: dict[str, list[float]] | None = None
) -> list[Prediction]:
    """Route each task alone with ``model``, timing each decision; each task's probabilities go
    into ``scores`` (by task id) when it is given."""
    found = []
    for item in tasks:
        started = time.perf_counter()
        try:
            (probabilities,) = model.probabilities([item.task.text])
            chosen: Candidate | None = ranked(probabilities)[0][0]
        except Exception:  # a model that fails on a task scores it as an invalid decision
            chosen, probabilities = None, []
        found.append(Prediction(item.label, chosen, time.perf_counter() - started))
        if scores is not None and probabilities:
            scores[item.task.task_id] = probabilities
    return found


def split_samples(samples: Sequence[LabelledTask]) -> tuple[list[LabelledTask], list[LabelledTask]]:
    """Return (training pool, held-out) samples by task id."""
    return partition(samples)


def _row(name: str, kind: str, predictions: list[Prediction], held: Sequence[LabelledTask], resamples: int,
         seed: int, cv: list[float] | None = None, cost: CostReport | None = None) -> RouterRow:  # fmt: skip
    by_source: dict[str, list[bool]] = {}
    for item, prediction in zip(held, predictions, strict=True):
        by_source.setdefault(item.task.source, []).append(prediction.chosen == prediction.label)
    return {"router": name, "kind": kind, "scores": score(predictions, seed=seed, resamples=resamples),
            "by_source": {src: round(sum(v) / len(v), 4) for src, v in sorted(by_source.items())},
            "cv_decision_exact": cv, "cost": cost}  # fmt: skip


def _cross_validate(kind: str, pool: Sequence[LabelledTask], seed: int) -> list[float]:
    scores = []
    for train, valid in folds(pool):
        if not train or not valid:
            continue
        model = fit_model(kind, [s.task.text for s in train], [s.label for s in train], seed=seed)
        probabilities = model.probabilities([s.task.text for s in valid])
        hits = [ranked(p)[0][0] == s.label for p, s in zip(probabilities, valid, strict=True)]
        scores.append(round(sum(hits) / len(hits), 4))
    return scores


def evaluate_routers(options: RouterEvalOptions) -> RouterReport:
    """Fit the baselines on the pool and score them, and the given routers, on the held-out split."""
    samples, _ = read_samples(options.data, drop_no_output=options.drop_no_output)
    pool, held = split_samples(samples)
    if not held:
        raise UsageError("the data holds no held-out task (about one task in five is held out by its id; "
                         "label more tasks)")  # fmt: skip
    if not pool:
        raise UsageError("the data holds no task to learn from: every task is held out")
    texts, labels = [s.task.text for s in pool], [s.label for s in pool]
    table = read_oracle(options.oracle) if options.oracle is not None else None
    rows: list[RouterRow] = []

    def scored(name: str, kind: str, model: CandidateModel, cv: list[float] | None = None) -> RouterRow:
        routed: dict[str, list[float]] = {}
        predictions = predict(model, held, routed)
        cost = cost_report(routed, table) if table is not None else None
        return _row(name, kind, predictions, held, options.resamples, options.seed, cv, cost)

    for name in options.baselines:
        options.progress(f"{name}: fitting and routing {len(held)} held-out tasks")
        if name == "heuristic":
            model: CandidateModel = HeuristicModel()
        elif name in CONSTANTS:
            model = constant(name)
        else:
            model = fit_model(name, texts, labels, seed=options.seed)
        cv = _cross_validate(name, pool, options.seed) if options.cv and name in FITTED else None
        rows.append(scored(name, model.kind, model, cv))
    for directory in options.routers:
        options.progress(f"{directory}: routing {len(held)} held-out tasks")
        model, meta = load_model(directory)
        rows.append(scored(str(directory), meta["kind"], model))
    return {
        "data": [str(path.absolute()) for path in options.data],
        "train_tasks": len(pool),
        "held_out_tasks": len(held),
        "held_out_by_source": dict(sorted(Counter(s.task.source for s in held).items())),
        "rows": rows,
    }


def best_row(report: RouterReport) -> RouterRow:
    """The row with the best full-decision exact match (then topology macro-F1, then the lower p50 latency)."""
    return max(report["rows"], key=lambda r: (r["scores"]["decision_exact"]["value"],
                                              r["scores"]["topology_macro_f1"]["value"],
                                              -r["scores"]["latency_p50_ms"]))  # fmt: skip


def describe(row: RouterRow) -> dict[str, Any]:
    """A row as the flat numbers a model card or a table shows."""
    s = row["scores"]
    return {"router": row["router"], "decision_exact": s["decision_exact"]["value"],
            "topology_accuracy": s["topology_accuracy"]["value"], "p50_ms": s["latency_p50_ms"]}  # fmt: skip
