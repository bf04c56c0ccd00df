"""Baseline routers that need no neural network: constants, the majority class, the heuristic, and
TF-IDF with logistic regression.

Each is a :class:`~engine.router.scored.CandidateModel`. The TF-IDF model is saved as JSON (its
vocabulary, IDF weights and coefficients), never as a pickle, so loading a router directory runs
no code from it.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.router.candidates import Candidate, candidate_by_key, candidate_index, candidates, canonical
from engine.router.heuristic import HeuristicRouter
from engine.router.scored import one_hot
from engine.textfile import read_capped

#: The most bytes ``tfidf.json`` may hold: the shipped router's is 3 MiB (12,000 terms, 10 classes),
#: so this leaves room for twenty times that; a longer file, or one that is no regular file (a link
#: to ``/dev/zero``), is refused in one line instead of filling the memory.
MAX_TFIDF_BYTES = 64 << 20

#: The largest weight ``tfidf.json`` may hold: logistic regression at C=10 stays below 100, and
#: with weights up to this a score cannot overflow.
MAX_WEIGHT = 1e6

#: The constant baselines by name: the cheapest decision, the most expensive pipeline, and a test loop.
CONSTANTS: dict[str, str] = {
    "always-single": "single:builder",
    "always-pipeline": "pipeline:planner+builder+tester+refactor",
    "always-loop": "loop:builder+tester:3",
}


class ConstantModel:
    """Always the same candidate."""

    def __init__(self, kind: str, candidate: Candidate) -> None:
        self.kind = kind
        self.candidate = candidate

    def probabilities(self, texts: Sequence[str]) -> list[list[float]]:
        return [one_hot(self.candidate) for _ in texts]


def majority(labels: Sequence[Candidate]) -> ConstantModel:
    """The most common label of the training data (ties in candidate order)."""
    counts = Counter(labels)
    best = max(candidates(), key=lambda c: (counts[c], -candidate_index()[c.key]))
    return ConstantModel("majority", best)


def constant(name: str) -> ConstantModel:
    """One of :data:`CONSTANTS`."""
    return ConstantModel(name, candidate_by_key(CONSTANTS[name]))


class HeuristicModel:
    """The heuristic router, as a model that is sure of its one answer."""

    kind = "heuristic"

    def __init__(self) -> None:
        self.router = HeuristicRouter()

    def probabilities(self, texts: Sequence[str]) -> list[list[float]]:
        return [one_hot(canonical(self.router.route(text))) for text in texts]


class TfidfModel:
    """Word and bigram TF-IDF features, multinomial logistic regression over the candidates seen in training."""

    kind = "tfidf"

    def __init__(self, vectorizer: Any, classifier: Any) -> None:
        self.vectorizer = vectorizer
        self.classifier = classifier

    @classmethod
    def fit(cls, texts: Sequence[str], labels: Sequence[Candidate], *, seed: int = 0) -> TfidfModel:
        """Fit on ``texts`` and their labels."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1, lowercase=True)
        features = vectorizer.fit_transform(texts)
        targets = [candidate_index()[label.key] for label in labels]
        if len(set(targets)) < 2:
            return cls(vectorizer, _Single(targets[0]))
        classifier = LogisticRegression(C=10.0, max_iter=2000, random_state=seed)
        classifier.fit(features, targets)
        return cls(vectorizer, classifier)

    def probabilities(self, texts: Sequence[str]) -> list[list[float]]:
        scores = self.classifier.predict_proba(self.vectorizer.transform(texts))
        found: list[list[float]] = []
        for row in scores:
            full = [0.0] * len(candidates())
            for index, p in zip(self.classifier.classes_, row, strict=True):
                full[int(index)] = float(p)
            found.append(full)
        return found

    def save(self, directory: Path) -> None:
        """Write ``tfidf.json`` into ``directory``."""
        data = {
            "vocabulary": {term: int(i) for term, i in self.vectorizer.vocabulary_.items()},
            "idf": [float(x) for x in self.vectorizer.idf_],
            "classes": [candidates()[int(i)].key for i in self.classifier.classes_],
            "coef": [[float(x) for x in row] for row in getattr(self.classifier, "coef_", [])],
            "intercept": [float(x) for x in getattr(self.classifier, "intercept_", [])],
        }
        (directory / "tfidf.json").write_text(json.dumps(data), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> TfidfModel:
        """Read ``tfidf.json`` from ``directory``."""
        import numpy as np
        from sklearn.feature_extraction.text import TfidfVectorizer

        data = json.loads(read_capped(directory / "tfidf.json", MAX_TFIDF_BYTES).decode("utf-8"))
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True,
                                     vocabulary=data["vocabulary"])  # fmt: skip
        vectorizer.idf_ = _weights(data["idf"], "idf")
        classes = [candidate_index()[key] for key in data["classes"]]
        if len(classes) == 1:
            return cls(vectorizer, _Single(classes[0]))
        coef, intercept = _weights(data["coef"], "coef"), _weights(data["intercept"], "intercept")
        return cls(vectorizer, _Linear(np.asarray(classes), coef, intercept))


def _weights(values: Any, name: str) -> Any:
    """``values`` as an array of floats; raise ``ValueError`` for any that is not finite or is so
    large that a score could overflow (trained weights stay far below :data:`MAX_WEIGHT`)."""
    import numpy as np

    array = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(array)
    if not finite.all():
        raise ValueError(f"tfidf.json: {name} holds {float(array[~finite].flat[0])}, not a finite number")
    if array.size and np.abs(array).max() > MAX_WEIGHT:
        largest = np.abs(array).max()
        raise ValueError(f"tfidf.json: {name} holds {largest:g}, more than a weight can be ({MAX_WEIGHT:g})")
    return array


class _Single:
    """A classifier for training data with one label only."""

    def __init__(self, index: int) -> None:
        self.classes_ = [index]

    def predict_proba(self, features: Any) -> list[list[float]]:
        return [[1.0] for _ in range(features.shape[0])]


class _Linear:
    """Multinomial logistic regression's prediction from saved coefficients (what sklearn computes)."""

    def __init__(self, classes: Any, coef: Any, intercept: Any) -> None:
        self.classes_ = classes
        self.coef = coef
        self.intercept = intercept

    def predict_proba(self, features: Any) -> list[list[float]]:
        logits = features @ self.coef.T + self.intercept
        rows = []
        for row in logits:
            if len(self.classes_) == 2:
                # sklearn keeps one row of coefficients for two classes: the second class's log-odds.
                p = 1 / (1 + math.exp(-float(row[0])))
                rows.append([1 - p, p])
                continue
            top = max(row)
            weights = [math.exp(float(x) - top) for x in row]
            total = sum(weights)
            rows.append([w / total for w in weights])
        return rows
