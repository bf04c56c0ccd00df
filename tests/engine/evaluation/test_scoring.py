"""The judge's reply: checked against judge_scores.schema.json, which the code's criteria match."""

from __future__ import annotations

import json
from typing import get_type_hints

import pytest

from engine.evaluation.scoring import CRITERIA, Scores, parse_scores, response_format
from engine.schemas import load_schema
from tests.engine.evaluation.support import scores


def test_the_criteria_and_the_schema_are_in_step() -> None:
    schema = load_schema("judge_scores")
    assert schema["required"] == [*CRITERIA, "reason"]
    assert set(get_type_hints(Scores)) == set(schema["properties"])
    assert response_format()["json_schema"]["schema"]["properties"] == schema["properties"]
    assert "$id" not in response_format()["json_schema"]["schema"]


def test_a_valid_reply_is_read_plain_or_in_a_fence() -> None:
    assert parse_scores(json.dumps(scores(4))) == scores(4)
    assert parse_scores(" ```json\n" + json.dumps(scores(2)) + "\n``` ") == scores(2)
    whole = parse_scores(json.dumps({**scores(3), "overall": 5.0}))
    assert not isinstance(whole, str)
    assert type(whole["overall"]) is int


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ("", "an empty reply"),
        ("Scores: 4", "not JSON"),
        (json.dumps({**scores(3), "fluency": 0}), "/fluency: must be at least 1"),
        (json.dumps({**scores(3), "fluency": 3.5}), "/fluency: must be of type integer"),
        (json.dumps({**scores(3), "fluency": True}), "/fluency: must be of type integer"),
        (json.dumps({k: v for k, v in scores(3).items() if k != "reason"}), "/reason: missing required key"),
        (json.dumps([scores(3)]), "/: must be of type object"),
        ("[" * 100_000, "JSON nested too deeply"),
    ],
)
def test_an_invalid_reply_says_why(reply: str, problem: str) -> None:
    found = parse_scores(reply)
    assert isinstance(found, str)
    assert found.startswith(problem)
