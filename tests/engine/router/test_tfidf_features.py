"""A saved TF-IDF router computes the features scikit-learn computed when it was fitted, without
importing scikit-learn, and a ``tfidf.json`` whose parts do not fit together is refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from engine.router.baselines import SavedVectorizer, TfidfModel
from engine.router.generator import generate_requests
from engine.router.router_dir import RouterDirError, load_model, save_model
from tests.engine.router.test_learned import _meta

SHIPPED = Path(__file__).resolve().parents[3] / "engine" / "router" / "default"
TASKS = generate_requests(200, seed=5)
WORDS = sorted({word for t in TASKS for word in t.text.lower().split()})


@pytest.fixture(scope="module")
def fitted() -> TfidfModel:
    """A TF-IDF router fitted here (in the worker that runs these tests, not in each that collects them)."""
    return TfidfModel.fit([t.text for t in TASKS], [t.gold for t in TASKS])  # type: ignore[misc]


@given(st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=12)), max_size=40).map(" ".join))
@example("the the the tests tests fix fix fix fix")  # repeated words and pairs: the logarithm of counts
@example("")  # no term at all: a row of zeros, not a division by zero
@example("ÉCRIRE les Tests_unitaires\u00a0et\u2003FIX  x y")  # case, underscores, Unicode spaces, one-letter words
@settings(max_examples=300)
def test_the_features_are_scikit_learns(fitted: TfidfModel, text: str) -> None:
    expected = fitted.vectorizer.transform([text]).toarray()
    saved = SavedVectorizer(fitted.vectorizer.vocabulary_, fitted.vectorizer.idf_)
    assert np.allclose(saved.transform([text]), expected, rtol=1e-12, atol=1e-15)


def test_a_saved_router_routes_as_the_fitted_one_many_texts_at_once(fitted: TfidfModel, tmp_path: Path) -> None:
    save_model(tmp_path / "r", fitted, _meta("tfidf"))  # type: ignore[arg-type]
    loaded, _ = load_model(tmp_path / "r")
    texts = [t.text for t in generate_requests(600, seed=6)]  # more than one chunk of rows
    assert np.allclose(loaded.probabilities(texts), fitted.probabilities(texts), atol=1e-9)


def test_routing_with_the_shipped_router_does_not_import_scikit_learn() -> None:
    probe = (
        "import sys\n"
        "from engine.router.router_dir import load_model\n"
        f"model, _ = load_model(__import__('pathlib').Path({str(SHIPPED)!r}))\n"
        "print(model.probabilities(['move the pdfs into finance'])[0])\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'scipy', 'pandas'}))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    probabilities, heavy = result.stdout.splitlines()
    assert sum(json.loads(probabilities)) == pytest.approx(1.0)
    assert heavy == "[]"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda d: d["vocabulary"].update({"zzz extra": len(d["idf"]) + 5}), "column numbers are not those of"),
        (lambda d: d["vocabulary"].update({"zzz extra": -1}), "column numbers are not those of"),
        (lambda d: d["vocabulary"].update({"zzz extra": True}), "not a map of terms to column numbers"),
        (lambda d: d["idf"].pop(), "column numbers are not those of"),
        (lambda d: [row.pop() for row in d["coef"]], "do not fit"),
        (lambda d: d["coef"][0].pop(), "coef is not a table of numbers"),
        (lambda d: d["idf"].append("x"), "idf is not a table of numbers"),
        # numpy would take these for numbers, or fail past a float's range
        (lambda d: d["idf"].__setitem__(0, "1.0"), "idf is not a table of numbers"),
        (lambda d: d["idf"].__setitem__(0, True), "idf is not a table of numbers"),
        (lambda d: d["idf"].__setitem__(0, 10**400), "idf is not a table of numbers"),
        (lambda d: d["coef"][0].__setitem__(0, -(10**400)), "coef is not a table of numbers"),
        (lambda d: d["idf"].__setitem__(0, -1.5), "idf holds -1.5, not a positive weight"),
        (lambda d: d["classes"].append(d["classes"][0]), "classes names '.*' twice"),
        (lambda d: d["classes"].__setitem__(0, "single:\x1bx"), "classes names 'single:\\\\x1bx', no decision"),
        (lambda d: d.__setitem__("classes", 3), "classes is not a list of decisions"),
        (lambda d: d.pop("vocabulary"), "has no 'vocabulary'"),
        (lambda d: d.pop("coef"), "has no 'coef', which a router of .* classes needs"),
        (lambda d: d["intercept"].append(0.0), "do not fit"),
    ],
)
def test_a_tfidf_json_whose_parts_do_not_fit_is_refused_in_one_line(
    fitted: TfidfModel, tmp_path: Path, change: object, why: str
) -> None:
    save_model(tmp_path / "r", fitted, _meta("tfidf"))  # type: ignore[arg-type]
    data = json.loads((tmp_path / "r" / "tfidf.json").read_text())
    change(data)  # type: ignore[operator]
    (tmp_path / "r" / "tfidf.json").write_text(json.dumps(data))
    with pytest.raises(RouterDirError, match=f"cannot load the tfidf router in .*: tfidf.json.*{why}") as caught:
        load_model(tmp_path / "r")
    assert "\n" not in str(caught.value)


def test_two_classes_with_the_largest_weights_allowed_give_probabilities(fitted: TfidfModel, tmp_path: Path) -> None:
    save_model(tmp_path / "r", fitted, _meta("tfidf"))  # type: ignore[arg-type]
    data = json.loads((tmp_path / "r" / "tfidf.json").read_text())
    data["classes"] = data["classes"][:2]
    data["coef"] = [[-1e6] * len(data["idf"])]
    data["intercept"] = [-1e6]
    (tmp_path / "r" / "tfidf.json").write_text(json.dumps(data))
    loaded, _ = load_model(tmp_path / "r")
    for row in loaded.probabilities(["fix the failing test", ""]):
        assert sum(row) == pytest.approx(1.0)
        assert max(row) == pytest.approx(1.0)
