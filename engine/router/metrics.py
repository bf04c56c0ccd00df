"""How well a router routes: accuracy and macro-F1 of the topology, exact matches of the roles and
of the whole decision, the schema-valid rate and latency, with bootstrap confidence intervals.

Decisions are compared in canonical form (:func:`~engine.router.candidates.canonical`): two
decisions that run the same way are the same decision.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypedDict

from engine.kinds import TOPOLOGIES
from engine.router.candidates import Candidate

#: Bootstrap resamples behind each confidence interval, and its level.
BOOTSTRAP_SAMPLES = 1000
CONFIDENCE = 0.95


class Interval(TypedDict):
    """A metric on the evaluation set, with its bootstrap confidence interval."""

    value: float
    low: float
    high: float


class RouterScores(TypedDict):
    """Every metric of one router on one evaluation set."""

    tasks: int
    topology_accuracy: Interval
    topology_macro_f1: Interval
    roles_exact: Interval
    decision_exact: Interval
    schema_valid: float
    latency_p50_ms: float
    latency_p95_ms: float


@dataclass(frozen=True)
class Prediction:
    """One routed task: the label, what the router chose (None when its answer was not a valid
    decision) and how long the router took."""

    label: Candidate
    chosen: Candidate | None
    seconds: float


def macro_f1(pairs: Sequence[tuple[str, str | None]], classes: Sequence[str] = TOPOLOGIES) -> float:
    """Return the mean F1 over ``classes`` of (label, predicted) pairs; a class never labelled nor
    predicted is left out of the mean."""
    scores = []
    for name in classes:
        true_positive = sum(1 for label, guess in pairs if label == name and guess == name)
        labelled = sum(1 for label, _ in pairs if label == name)
        predicted = sum(1 for _, guess in pairs if guess == name)
        if labelled == 0 and predicted == 0:
            continue
        scores.append(2 * true_positive / (labelled + predicted))
    return sum(scores) / len(scores) if scores else 0.0


def _share(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags) if flags else 0.0


_METRICS: dict[str, Callable[[Sequence[Prediction]], float]] = {
    "topology_accuracy": lambda ps: _share(
        [p.chosen is not None and p.chosen.topology == p.label.topology for p in ps]
    ),
    "topology_macro_f1": lambda ps: macro_f1([(p.label.topology, p.chosen.topology if p.chosen else None) for p in ps]),
    "roles_exact": lambda ps: _share([p.chosen is not None and p.chosen.roles == p.label.roles for p in ps]),
    "decision_exact": lambda ps: _share([p.chosen == p.label for p in ps]),
}


def percentile(values: Sequence[float], q: float) -> float:
    """Return the ``q``-th percentile (0-100) of ``values`` by linear interpolation; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    at = (len(ordered) - 1) * q / 100
    low = int(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def score(predictions: Sequence[Prediction], *, seed: int = 0, resamples: int = BOOTSTRAP_SAMPLES) -> RouterScores:
    """Return every metric of ``predictions``, each with a percentile bootstrap interval over tasks."""
    rng = random.Random(seed)
    count = len(predictions)
    draws = [[predictions[rng.randrange(count)] for _ in range(count)] for _ in range(resamples if count else 0)]
    tail = (1 - CONFIDENCE) / 2 * 100

    def interval(metric: Callable[[Sequence[Prediction]], float]) -> Interval:
        values = [metric(draw) for draw in draws]
        return {"value": round(metric(predictions), 4), "low": round(percentile(values, tail), 4),
                "high": round(percentile(values, 100 - tail), 4)}  # fmt: skip

    latencies = [p.seconds * 1000 for p in predictions]
    return {
        "tasks": count,
        "topology_accuracy": interval(_METRICS["topology_accuracy"]),
        "topology_macro_f1": interval(_METRICS["topology_macro_f1"]),
        "roles_exact": interval(_METRICS["roles_exact"]),
        "decision_exact": interval(_METRICS["decision_exact"]),
        "schema_valid": round(_share([p.chosen is not None for p in predictions]), 4),
        "latency_p50_ms": round(percentile(latencies, 50), 3),
        "latency_p95_ms": round(percentile(latencies, 95), 3),
    }
