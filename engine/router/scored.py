"""Routers that score the closed candidate set, and the router that turns scores into a decision.

A :class:`CandidateModel` gives, for each task, a probability for each of the 28 canonical
decisions (:func:`~engine.router.candidates.candidates`). :class:`ScoredRouter` answers with the
most probable one, so its decision always validates, with a reason naming the probabilities; on
any error of the model it answers with the heuristic router and says why in the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from engine.names import display_line
from engine.router.candidates import Candidate, candidates
from engine.router.decision import RouterDecision
from engine.router.heuristic import HeuristicRouter

#: How far over 1 a probability may be (a sum of floats rounds).
_SLACK = 1e-6


class CandidateModel(Protocol):
    """Anything that scores the candidate set; ``kind`` names it in tables (``mlp``, ``tfidf``...)."""

    kind: str

    def probabilities(self, texts: Sequence[str]) -> list[list[float]]:
        """Return, for each text, one probability per candidate, in :func:`candidates` order."""
        ...


def ranked(probabilities: Sequence[float]) -> list[tuple[Candidate, float]]:
    """Return the candidates with their probabilities, most probable first (ties in candidate order).

    Raise ``ValueError`` when one is not a number from 0 to 1 (NaN, say, from a damaged model):
    a router that gives those has failed, and its answer is not used.
    """
    bad = next((p for p in probabilities if not 0.0 <= p <= 1.0 + _SLACK), None)
    if bad is not None:
        raise ValueError(f"the model gave a probability of {bad!r}, not a number from 0 to 1")
    pairs = list(zip(candidates(), probabilities, strict=True))
    return sorted(pairs, key=lambda pair: -pair[1])


def one_hot(candidate: Candidate) -> list[float]:
    """Probability 1 on ``candidate`` and 0 elsewhere."""
    return [1.0 if c == candidate else 0.0 for c in candidates()]


class ScoredRouter:
    """A :class:`~engine.router.decision.Router` over a :class:`CandidateModel`, with the heuristic
    router as its fallback."""

    def __init__(self, model: CandidateModel, *, name: str | None = None) -> None:
        self.model = model
        self.name = name or f"model:{model.kind}"
        self.fallback = HeuristicRouter()

    def route(self, task: str) -> RouterDecision:
        """Return the most probable candidate for ``task``, or the heuristic's decision when the model fails."""
        try:
            (probabilities,) = self.model.probabilities([task])
            (best, p), *rest = ranked(probabilities)
        except Exception as err:  # any failure of a model falls back, and the decision says why
            decision = self.fallback.route(task)
            why = display_line(f"{type(err).__name__}: {err}")[:200]
            return RouterDecision(decision.topology, decision.roles, decision.max_rounds,
                                  f"the {self.name} router failed ({why}); heuristic: {decision.reason}"[:500],
                                  router="heuristic")  # fmt: skip
        runner_up = f"; next {rest[0][0].key} ({rest[0][1]:.2f})" if rest else ""
        return best.decision(f"{self.name}: {best.key} with p={p:.2f}{runner_up}", router=self.name)
