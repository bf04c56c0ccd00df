"""The hand-written planner evaluation set: every gold plan is a valid reply that really applies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import engine.planner
from engine.files.tags import is_markdown
from engine.planner.cases import Case
from engine.planner.effect import plan_effect, reply_problems
from engine.planner.fixtures import changed_paths
from engine.planner.prompt import PLANNER_OPS

DATA = Path(engine.planner.__file__).parent / "data" / "handwritten.jsonl"
#: Requests written after the decoding rules of their version, to measure what those rules never saw.
LATER = DATA.with_name("handwritten-later.jsonl")
#: Requests written by someone who had not read the decoding rules.
THIRD = DATA.with_name("handwritten-third.jsonl")
#: And a fourth, over workspaces of its own, written after the rules had been shaped by the third.
FOURTH = DATA.with_name("handwritten-fourth.jsonl")
#: And a fifth, written after rules had been shaped by the fourth.
FIFTH = DATA.with_name("handwritten-fifth.jsonl")
#: And a sixth, over four more workspaces, written after the fifth had been scored.
SIXTH = DATA.with_name("handwritten-sixth.jsonl")
#: And a seventh, over four more workspaces, written after rules had been shaped by the sixth.
SEVENTH = DATA.with_name("handwritten-seventh.jsonl")
#: And an eighth, over four more workspaces, written after rules had been shaped by the seventh.
EIGHTH = DATA.with_name("handwritten-eighth.jsonl")
#: And a ninth, over four more workspaces, written after rules had been shaped by the eighth.
NINTH = DATA.with_name("handwritten-ninth.jsonl")
#: And a tenth, over four more workspaces, written after rules had been shaped by the ninth.
TENTH = DATA.with_name("handwritten-tenth.jsonl")
#: And an eleventh, over four more workspaces, written after rules had been shaped by the tenth.
ELEVENTH = DATA.with_name("handwritten-eleventh.jsonl")
#: A twelfth, written after rules had been shaped by the tenth, a thirteenth while rules were shaped
#: by the eleventh and the twelfth, and a fourteenth while rules were shaped by the thirteenth.
TWELFTH = DATA.with_name("handwritten-twelfth.jsonl")
THIRTEENTH = DATA.with_name("handwritten-thirteenth.jsonl")
FOURTEENTH = DATA.with_name("handwritten-fourteenth.jsonl")
#: A fifteenth and a sixteenth, written together while no rule was being shaped, and scored unread
#: (rules were later shaped by their failures and the fourteenth's).
FIFTEENTH = DATA.with_name("handwritten-fifteenth.jsonl")
SIXTEENTH = DATA.with_name("handwritten-sixteenth.jsonl")
#: A seventeenth and an eighteenth, written together before those rules, and scored unread.
SEVENTEENTH = DATA.with_name("handwritten-seventeenth.jsonl")
EIGHTEENTH = DATA.with_name("handwritten-eighteenth.jsonl")
#: A nineteenth and a twentieth, written together once those had been scored, and scored unread.
NINETEENTH = DATA.with_name("handwritten-nineteenth.jsonl")
TWENTIETH = DATA.with_name("handwritten-twentieth.jsonl")
#: A twenty-first and a twenty-second, written together after the card of the twentieth, and scored unread.
TWENTYFIRST = DATA.with_name("handwritten-twentyfirst.jsonl")
TWENTYSECOND = DATA.with_name("handwritten-twentysecond.jsonl")
#: A twenty-third and a twenty-fourth, written together after the card of the twenty-second, and scored unread.
TWENTYTHIRD = DATA.with_name("handwritten-twentythird.jsonl")
TWENTYFOURTH = DATA.with_name("handwritten-twentyfourth.jsonl")
#: A twenty-fifth and a twenty-sixth, written together after the card of the twenty-fourth, and scored unread.
TWENTYFIFTH = DATA.with_name("handwritten-twentyfifth.jsonl")
TWENTYSIXTH = DATA.with_name("handwritten-twentysixth.jsonl")


def _load(path: Path = DATA) -> list[Case]:
    with path.open(encoding="utf-8") as handle:
        return [Case.from_json(json.loads(line)) for line in handle if line.strip()]


CASES = _load()
LATER_CASES = _load(LATER)
THIRD_CASES = _load(THIRD)
FOURTH_CASES = _load(FOURTH)
FIFTH_CASES = _load(FIFTH)
SIXTH_CASES = _load(SIXTH)
SEVENTH_CASES = _load(SEVENTH)
EIGHTH_CASES = _load(EIGHTH)
NINTH_CASES = _load(NINTH)
TENTH_CASES = _load(TENTH)
ELEVENTH_CASES = _load(ELEVENTH)
TWELFTH_CASES = _load(TWELFTH)
THIRTEENTH_CASES = _load(THIRTEENTH)
FOURTEENTH_CASES = _load(FOURTEENTH)
FIFTEENTH_CASES = _load(FIFTEENTH)
SIXTEENTH_CASES = _load(SIXTEENTH)
SEVENTEENTH_CASES = _load(SEVENTEENTH)
EIGHTEENTH_CASES = _load(EIGHTEENTH)
NINETEENTH_CASES = _load(NINETEENTH)
TWENTIETH_CASES = _load(TWENTIETH)
TWENTYFIRST_CASES = _load(TWENTYFIRST)
TWENTYSECOND_CASES = _load(TWENTYSECOND)
TWENTYTHIRD_CASES = _load(TWENTYTHIRD)
TWENTYFOURTH_CASES = _load(TWENTYFOURTH)
TWENTYFIFTH_CASES = _load(TWENTYFIFTH)
TWENTYSIXTH_CASES = _load(TWENTYSIXTH)


def test_the_set_is_big_enough_and_its_ids_are_unique() -> None:
    ids = [case.id for case in CASES]
    assert len(CASES) >= 40
    assert len(set(ids)) == len(ids)
    assert all(case_id.startswith("hand_") for case_id in ids)


def test_every_planner_op_appears_in_some_gold_plan() -> None:
    used = {step["op"] for case in CASES for step in case.plan["steps"]}
    assert set(PLANNER_OPS) <= used, sorted(set(PLANNER_OPS) - used)


def test_some_requests_cannot_be_done_with_file_operations() -> None:
    empty = [case for case in CASES if case.plan["steps"] == []]
    assert empty
    assert all(case.plan.get("goal") for case in empty)


def test_tagged_notes_carry_their_tags_in_front_matter() -> None:
    for case in CASES:
        for spec in case.fixture.files:
            if spec.tags and is_markdown(spec.path):
                assert spec.text is not None, (case.id, spec.path)
                assert spec.text.startswith("---\ntags: [" + ", ".join(spec.tags) + "]\n---\n"), (case.id, spec.path)


def test_the_later_sets_have_their_own_ids() -> None:
    for cases, prefix in (
        (LATER_CASES, "later_"),
        (THIRD_CASES, "third_"),
        (FOURTH_CASES, "fourth_"),
        (FIFTH_CASES, "fifth_"),
        (SIXTH_CASES, "sixth_"),
        (SEVENTH_CASES, "seventh_"),
        (EIGHTH_CASES, "eighth_"),
        (NINTH_CASES, "ninth_"),
        (TENTH_CASES, "tenth_"),
        (ELEVENTH_CASES, "eleventh_"),
        (TWELFTH_CASES, "twelfth_"),
        (THIRTEENTH_CASES, "thirteenth_"),
        (FOURTEENTH_CASES, "fourteenth_"),
        (FIFTEENTH_CASES, "fifteenth_"),
        (SIXTEENTH_CASES, "sixteenth_"),
        (SEVENTEENTH_CASES, "seventeenth_"),
        (EIGHTEENTH_CASES, "eighteenth_"),
        (NINETEENTH_CASES, "nineteenth_"),
        (TWENTIETH_CASES, "twentieth_"),
        (TWENTYFIRST_CASES, "twentyfirst_"),
        (TWENTYSECOND_CASES, "twentysecond_"),
        (TWENTYTHIRD_CASES, "twentythird_"),
        (TWENTYFOURTH_CASES, "twentyfourth_"),
        (TWENTYFIFTH_CASES, "twentyfifth_"),
        (TWENTYSIXTH_CASES, "twentysixth_"),
    ):
        ids = [case.id for case in cases]
        assert len(set(ids)) == len(ids) >= 10
        assert all(case_id.startswith(prefix) for case_id in ids)


EVERY = [
    *CASES,
    *LATER_CASES,
    *THIRD_CASES,
    *FOURTH_CASES,
    *FIFTH_CASES,
    *SIXTH_CASES,
    *SEVENTH_CASES,
    *EIGHTH_CASES,
    *NINTH_CASES,
    *TENTH_CASES,
    *ELEVENTH_CASES,
    *TWELFTH_CASES,
    *THIRTEENTH_CASES,
    *FOURTEENTH_CASES,
    *FIFTEENTH_CASES,
    *SIXTEENTH_CASES,
    *SEVENTEENTH_CASES,
    *EIGHTEENTH_CASES,
    *NINETEENTH_CASES,
    *TWENTIETH_CASES,
    *TWENTYFIRST_CASES,
    *TWENTYSECOND_CASES,
    *TWENTYTHIRD_CASES,
    *TWENTYFOURTH_CASES,
    *TWENTYFIFTH_CASES,
    *TWENTYSIXTH_CASES,
]


@pytest.mark.parametrize("case", EVERY, ids=[case.id for case in EVERY])
def test_the_gold_plan_is_a_valid_reply_that_applies(case: Case, tmp_path: Path) -> None:
    assert reply_problems(case.plan) == []
    effect = plan_effect(case.fixture, case.today, case.plan, scratch=tmp_path)
    assert effect.applied, effect.refused
    if case.plan["steps"]:
        assert changed_paths(effect.before, effect.tree), "the plan leaves the workspace as it was"
    else:
        assert effect.tree == effect.before
