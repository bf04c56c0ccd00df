"""The router routeshell ships (``make router``): it loads without a note, every decision it gives
validates, and its card, its evaluation and its directory come from one build."""

from __future__ import annotations

import json

from engine.router.evaluate import best_row
from engine.router.registry import SHIPPED_ROUTER, load_router
from engine.schemas import validator

PROBES = ["move every pdf from 2025 into finance/2025", "tests/test_api.py fails since the merge, fix it",
          "split utils.py into a package", "", "\x1b]0;owned\x07 \udcff" * 30]  # fmt: skip


def test_the_shipped_router_loads_and_every_decision_validates() -> None:
    router, note = load_router({"kind": "model"})
    assert note is None
    meta = json.loads((SHIPPED_ROUTER / "router.json").read_text())
    assert router.name == f"model:{meta['kind']}"
    for probe in PROBES:
        decision = router.route(probe)
        assert decision.router == router.name
        assert validator("decision").is_valid(decision.as_json())
    assert router.route("tests/test_api.py fails since the merge, fix it").topology == "loop"


def test_the_shipped_router_is_the_best_of_its_evaluation_and_the_card_says_so() -> None:
    report = json.loads((SHIPPED_ROUTER / "evaluation.json").read_text())
    meta = json.loads((SHIPPED_ROUTER / "router.json").read_text())
    best = best_row(report)
    assert meta["kind"] == best["kind"]
    rows = {row["router"]: row for row in report["rows"]}
    assert best["scores"]["decision_exact"]["value"] > rows["heuristic"]["scores"]["decision_exact"]["value"]
    assert any(row["kind"] == "lora" for row in report["rows"])
    card = (SHIPPED_ROUTER / "MODEL_CARD.md").read_text()
    assert "make router" in card
    assert f"{best['scores']['decision_exact']['value']:.3f}" in card
    assert meta["metrics"]["held_out_tasks"] == report["held_out_tasks"]


def test_the_shipped_router_is_small() -> None:
    size = sum(path.stat().st_size for path in SHIPPED_ROUTER.iterdir())
    assert size < 25 * 1024 * 1024
