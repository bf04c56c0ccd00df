"""Asking the planner again without the choices the dry run refused: which choices are at fault,
found against a real workspace as the earlier steps leave it, and the schema without them; and
without a step done twice, where it came again."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import jsonschema

import engine
from engine.planner.guided import dry_run_problems, guided_schema, refused_values, unrepeated_schema
from engine.planner.narrow import narrowed_schema
from engine.planner.prompt import entries_from_root


def _workspace(root: Path) -> Path:
    (root / "docs").mkdir()
    (root / "docs" / "a.pdf").write_text("the quarterly report")
    (root / "docs" / "b.txt").write_text("zebra crossing")
    (root / "docs" / "c d.txt").write_text("plain")
    (root / "archive").mkdir()
    return root


def _refused(root: Path, *steps: dict[str, Any]) -> list[tuple[str, Any]]:
    plan = {"version": 1, "steps": list(steps)}
    return refused_values(root, plan, dry_run_problems(root, plan))


def test_a_filter_that_selects_nothing_on_its_own_is_at_fault(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    assert _refused(root, {"op": "delete", "match": {"glob": "photos/**"}}) == [("glob", "photos/**")]
    match = {"glob": "docs/**", "contains": "walrus", "ext": [".pdf", ".mp4"]}
    assert _refused(root, {"op": "delete", "match": match}) == [("contains", "walrus"), ("ext", ".mp4")]
    # Each filter selects something on its own, only not together: no one of them is at fault.
    both = {"glob": "docs/**", "contains": "zebra", "ext": [".pdf"]}
    assert _refused(root, {"op": "delete", "match": both}) == []
    # A plan the dry run accepts has nothing at fault.
    assert _refused(root, {"op": "delete", "match": {"glob": "docs/**", "ext": [".pdf"]}}) == []


def test_a_selection_is_tried_on_the_workspace_as_the_steps_before_it_leave_it(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    moved = {"op": "move", "match": {"glob": "docs/**"}, "to": "archive"}
    assert _refused(root, moved, {"op": "tag", "match": {"glob": "docs/**"}, "tags": ["x"]}) == [("glob", "docs/**")]
    # ... and nothing under root changed while it was tried.
    assert sorted(p.name for p in (root / "docs").iterdir()) == ["a.pdf", "b.txt", "c d.txt"]
    assert list((root / "archive").iterdir()) == []


def test_only_an_empty_selection_puts_values_at_fault_and_only_filters_that_choose_what_files_are(
    tmp_path: Path,
) -> None:
    root = _workspace(tmp_path)
    # A rename that changes no name, a move to where files are: asked again, answers overreached.
    rename = {"op": "rename", "match": {"glob": "docs/**"}, "find": "_", "replace": "-"}
    assert _refused(root, rename) == []
    assert _refused(root, {"op": "move", "match": {"glob": "docs/**"}, "to": "docs"}) == []
    # Dates, sizes and an exclude are never left out: without one, a selection only grows.
    for key, value in (("modified_before", "3650d"), ("larger_than", "1GB"), ("exclude", ["docs/**"])):
        assert _refused(root, {"op": "delete", "match": {"glob": "docs/**", key: value}}) == []
    match = {"glob": "docs/**", "name_regex": "^zz", "tag": "nope", "larger_than": "1GB"}
    assert _refused(root, {"op": "delete", "match": match}) == [("name_regex", "^zz"), ("tag", "nope")]


def test_problems_that_point_nowhere_put_nothing_at_fault(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    plan = {"version": 1, "steps": [{"op": "delete", "match": {"glob": "photos/**"}}]}
    for where in ("/steps/7/match", "/steps/x/match", "/goal", "", "/steps/-1/match"):
        assert refused_values(root, plan, [(where, "selects nothing: no file matches")]) == []
    assert refused_values(root, {"steps": "nope"}, [("/steps/0/match", "selects nothing")]) == []
    assert refused_values(root, {"version": 1, "steps": ["x"]}, [("/steps/0/match", "selects nothing")]) == []
    # A reply that is no plan at all gives its problems (or none), never an exception.
    for hostile in ({"steps": [{"op": "no-such-op"}]}, {"version": 1, "steps": [{"op": "delete", "path": "../x"}]}):
        problems = dry_run_problems(root, hostile)
        assert all(isinstance(where, str) and isinstance(why, str) for where, why in problems)


SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "steps": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "glob": {"$ref": "#/$defs/glob"},
                    "exclude": {"type": "array", "items": {"$ref": "#/$defs/glob"}},
                    "ext": {"type": "array", "items": {"enum": [".pdf", ".txt"]}},
                    "to": {"enum": ["archive"]},
                },
            },
        }
    },
    "$defs": {"glob": {"enum": ["docs/**", "photos/**", "**"]}},
}


def test_the_schema_loses_only_the_refused_choice_of_that_key() -> None:
    edited = guided_schema(SCHEMA, [("glob", "photos/**"), ("ext", ".txt")])
    assert edited is not None
    valid = jsonschema.Draft202012Validator(edited).is_valid
    assert not valid({"steps": [{"glob": "photos/**"}]})
    assert valid({"steps": [{"glob": "docs/**", "exclude": ["photos/**"]}]})  # shared: exclude keeps it
    assert not valid({"steps": [{"ext": [".txt"]}]})
    assert valid({"steps": [{"ext": [".pdf"]}]})
    assert SCHEMA["$defs"]["glob"]["enum"] == ["docs/**", "photos/**", "**"]  # the original is untouched
    # The last choice of a key stays (a field with nothing to choose could make the schema unsatisfiable),
    # and a value that is not offered changes nothing: no narrower schema, so no guided ask.
    assert guided_schema(SCHEMA, [("to", "archive")]) is None
    assert guided_schema(SCHEMA, [("glob", "elsewhere/**"), ("contains", "x")]) is None


def _accepts(grammar: Any, tokenizer: Any, plan: dict[str, Any]) -> bool:
    constraint = grammar.new()
    for token in tokenizer.encode(json.dumps(plan, separators=(",", ":")), add_special_tokens=False):
        constraint.consume(token)
    return constraint.error is None and constraint.accepting()


def test_a_step_done_again_cannot_come_again_where_it_came_under_the_grammar_either(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from engine.serve.grammar import compile_schema

    (tmp_path / "Downloads").mkdir()
    (tmp_path / "Downloads" / "league fixtures.zip").write_bytes(b"PK")
    said = "unzip the league fixtures into fixtures/2026-27 then bin the zip"
    schema = narrowed_schema(said, entries_from_root(tmp_path), dt.date(2026, 5, 1))
    mkdir = {"op": "mkdir", "path": "fixtures"}
    extract = {"op": "extract", "from": "Downloads/league fixtures.zip", "to": "fixtures/2026-27"}
    delete = {"op": "delete", "path": "Downloads/league fixtures.zip"}
    twice = {"version": 1, "steps": [mkdir, extract, mkdir]}
    assert unrepeated_schema(schema, {"version": 1, "steps": [mkdir, extract, delete]}) is None  # nothing repeats
    assert unrepeated_schema(schema, {"steps": "x"}) is None
    edited = unrepeated_schema(schema, twice)
    assert edited is not None
    # The steps before the repeated one stay as they were; there, "fixtures" was mkdir's only choice,
    # so no mkdir may come; any other step may, and the plan may end.
    allowed = [[mkdir, extract, delete], [mkdir, extract], [mkdir, extract, delete, delete]]
    refused = [[mkdir, extract, mkdir], [delete], [mkdir, delete], [extract, extract, delete]]
    valid = jsonschema.Draft202012Validator(edited).is_valid
    assert all(valid({"version": 1, "steps": steps}) for steps in allowed)
    assert not any(valid({"version": 1, "steps": steps}) for steps in refused)
    assert jsonschema.Draft202012Validator(schema).is_valid(twice)  # the original is untouched
    tokenizer = AutoTokenizer.from_pretrained(Path(engine.__file__).parent / "models" / "base")
    grammar = compile_schema(edited, tokenizer)
    assert all(_accepts(grammar, tokenizer, {"version": 1, "steps": steps}) for steps in allowed[:2])
    assert not any(_accepts(grammar, tokenizer, {"version": 1, "steps": steps}) for steps in refused)
    # Where the repeated path is one choice among several, only that path goes.
    made = {"op": "mkdir", "path": "fixtures/2026-27"}
    edited = unrepeated_schema(schema, {"version": 1, "steps": [extract, extract]})
    assert edited is not None
    valid = jsonschema.Draft202012Validator(edited).is_valid
    assert not valid({"version": 1, "steps": [extract, extract]})
    assert valid({"version": 1, "steps": [extract, delete]})
    assert not valid({"version": 1, "steps": [made]})


def test_hostile_answers_put_nothing_at_fault_and_never_raise(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    nothing = "selects nothing: no file matches"
    for step in (
        {"op": "delete", "match": "docs/**"},
        {"op": "delete", "match": {"glob": 5}},
        {"op": "delete", "match": {"glob": "docs/**", "contains": {"x": [1]}}},
        {"op": "delete", "match": {"glob": "../**"}},
        {"op": "delete", "match": {"glob": "docs/**", "ext": [".pdf", {"a": 1}, None]}},
        {"op": "rename", "match": {"glob": "docs/**"}, "find": ["x"], "replace": None},
    ):
        plan = {"version": 1, "steps": [step]}
        got = refused_values(root, plan, [("/steps/0/match", nothing), ("/steps/0/find", "no name changes")])
        assert all(isinstance(key, str) for key, _ in got)
    assert sorted(p.name for p in (root / "docs").iterdir()) == ["a.pdf", "b.txt", "c d.txt"]


def test_a_narrower_schema_too_big_for_the_server_is_not_asked() -> None:
    from engine.planner.guided import MAX_GUIDED_SCHEMA_CHARS
    from engine.serve.grammar import MAX_SCHEMA_BYTES

    assert MAX_GUIDED_SCHEMA_CHARS == MAX_SCHEMA_BYTES
    huge = {**SCHEMA, "$defs": {"glob": {"enum": ["docs/**", "photos/**", *(f"g{i:06}/**" for i in range(8000))]}}}
    assert guided_schema(huge, [("glob", "photos/**")]) is None
    assert guided_schema(SCHEMA, [("glob", "photos/**")]) is not None


def test_the_steps_before_are_followed_as_of_now_when_no_time_is_given(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    # (As the Agent pane asks: no time given, so "older than a day" is counted back from now.)
    old = {"op": "move", "match": {"glob": "docs/**", "modified_before": "1d"}, "to": "archive"}
    moved = {"op": "tag", "match": {"glob": "docs/**", "ext": [".pdf"]}, "tags": ["x"]}
    plan = {"version": 1, "steps": [old, moved]}
    for path in (root / "docs").iterdir():
        os.utime(path, (1e9, 1e9))  # 2001: older than a day
    assert refused_values(root, plan, dry_run_problems(root, plan)) == [("glob", "docs/**")]
