"""Baseline routers that need no neural network: constants, the majority class, the heuristic, and
TF-IDF with logistic regression.

Each is a :class:`~engine.router.scored.CandidateModel`. The TF-IDF model is saved as JSON (its
vocabulary, IDF weights and coefficients), never as a pickle, so loading a router directory runs
no code from it.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.names import quoted_name
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
        found: list[list[float]] = []
        scores = [
            row
            for start in range(0, len(texts), _CHUNK)
            for row in self.classifier.predict_proba(self.vectorizer.transform(texts[start : start + _CHUNK]))
        ]
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
        """Read ``tfidf.json`` from ``directory``; raise ``ValueError`` for one that does not fit together."""
        import numpy as np

        data = json.loads(read_capped(directory / "tfidf.json", MAX_TFIDF_BYTES).decode("utf-8"))
        if not isinstance(data, dict):
            raise ValueError("tfidf.json is not an object")
        missing = [key for key in ("vocabulary", "idf", "classes") if key not in data]
        if missing:
            raise ValueError(f"tfidf.json has no {missing[0]!r}")
        idf = _weights(data["idf"], "idf")
        if idf.size and idf.min() <= 0:
            raise ValueError(f"tfidf.json: idf holds {idf.min():g}, not a positive weight")
        vectorizer = SavedVectorizer(data["vocabulary"], idf)
        classes = _classes(data["classes"])
        if len(classes) == 1:
            return cls(vectorizer, _Single(classes[0]))
        missing = [key for key in ("coef", "intercept") if key not in data]
        if missing:
            raise ValueError(f"tfidf.json has no {missing[0]!r}, which a router of {len(classes)} classes needs")
        coef, intercept = _weights(data["coef"], "coef"), _weights(data["intercept"], "intercept")
        rows = 1 if len(classes) == 2 else len(classes)
        if coef.shape != (rows, len(vectorizer.idf_)) or intercept.shape != (rows,):
            raise ValueError(f"tfidf.json: coef {list(coef.shape)} and intercept {list(intercept.shape)} do not fit "
                             f"{len(classes)} classes and {len(vectorizer.idf_)} terms")  # fmt: skip
        return cls(vectorizer, _Linear(np.asarray(classes), coef, intercept))


#: The words sklearn's ``TfidfVectorizer`` counts: runs of two or more word characters.
_TOKEN = re.compile(r"(?u)\b\w\w+\b")
#: Texts turned into features at once: a row is as long as the vocabulary (12,000 terms shipped).
_CHUNK = 256


class SavedVectorizer:
    """The features a fitted ``TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)`` computes, from
    its saved vocabulary and IDF weights, without importing scikit-learn (a second of every start
    that routes).

    A text is lowercased and cut into words; each word and each pair of neighbouring words in the
    vocabulary counts, its weight is ``(1 + log(count)) * idf``, and the row is scaled to unit length.
    """

    def __init__(self, vocabulary: object, idf: Any) -> None:
        if not isinstance(vocabulary, dict) or not all(
            isinstance(term, str) and type(index) is int for term, index in vocabulary.items()
        ):
            raise ValueError("tfidf.json: vocabulary is not a map of terms to column numbers")
        if idf.ndim != 1 or sorted(vocabulary.values()) != list(range(len(idf))):
            raise ValueError(f"tfidf.json: the vocabulary's {len(vocabulary)} column numbers are not those of "
                             f"the {idf.size} idf weights")  # fmt: skip
        self.vocabulary_: dict[str, int] = vocabulary
        self.idf_ = idf

    def transform(self, texts: Sequence[str]) -> Any:
        """One row of features per text (a dense array)."""
        import numpy as np

        features = np.zeros((len(texts), len(self.idf_)))
        for row, text in zip(features, texts, strict=True):
            words = _TOKEN.findall(text.lower())
            pairs = map(" ".join, itertools.pairwise(words))
            terms = Counter(term for term in (*words, *pairs) if term in self.vocabulary_)
            for term, count in terms.items():
                column = self.vocabulary_[term]
                row[column] = (1 + math.log(count)) * self.idf_[column]
            length = np.sqrt(row @ row)
            if length > 0:
                row /= length
        return features


def _weights(values: Any, name: str) -> Any:
    """``values`` as an array of floats; raise ``ValueError`` for any that is not finite or is so
    large that a score could overflow (trained weights stay far below :data:`MAX_WEIGHT`)."""
    import numpy as np

    rows = values if isinstance(values, list) and values and isinstance(values[0], list) else [values]
    # (numpy would read "1.0" and true as numbers, and fail on an integer past a float's range.)
    if not all(isinstance(row, list) and all(type(x) in (int, float) for x in row) for row in rows):
        raise ValueError(f"tfidf.json: {name} is not a table of numbers")
    try:
        array = np.asarray(values, dtype=np.float64)
    except (ValueError, OverflowError):  # rows of different lengths, an integer with 400 digits
        raise ValueError(f"tfidf.json: {name} is not a table of numbers") from None
    finite = np.isfinite(array)
    if not finite.all():
        raise ValueError(f"tfidf.json: {name} holds {float(array[~finite].flat[0])}, not a finite number")
    if array.size and np.abs(array).max() > MAX_WEIGHT:
        largest = np.abs(array).max()
        raise ValueError(f"tfidf.json: {name} holds {largest:g}, more than a weight can be ({MAX_WEIGHT:g})")
    return array


def _classes(keys: object) -> list[int]:
    """The candidate numbers of the decisions ``keys`` names; ``ValueError`` for a list that is not
    one of distinct decisions of this version."""
    if not isinstance(keys, list) or not keys or not all(isinstance(key, str) for key in keys):
        raise ValueError("tfidf.json: classes is not a list of decisions")
    index = candidate_index()
    for key in keys:
        if key not in index:
            raise ValueError(f"tfidf.json: classes names {quoted_name(key[:80])}, no decision of this version")
    if len(set(keys)) < len(keys):
        twice = next(key for key in keys if keys.count(key) > 1)
        raise ValueError(f"tfidf.json: classes names {quoted_name(twice[:80])} twice")
    return [index[key] for key in keys]


def _sigmoid(x: float) -> float:
    """``1 / (1 + exp(-x))``, which overflows for no ``x``."""
    if x >= 0:
        return 1 / (1 + math.exp(-x))
    e = math.exp(x)
    return e / (1 + e)


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
                p = _sigmoid(float(row[0]))
                rows.append([1 - p, p])
                continue
            top = max(row)
            weights = [math.exp(float(x) - top) for x in row]
            total = sum(weights)
            rows.append([w / total for w in weights])
        return rows
