"""The table of plan ops: every part of the engine reads the same declaration of each op."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.plans.model import PATH_KEYS, InvalidPlan, parse_plan
from engine.plans.op_table import OPS
from engine.schemas import load_schema
from tests.helpers import run_routeshell


def test_the_schema_and_the_table_name_the_same_ops() -> None:
    schema = load_schema("plan")
    assert schema["$defs"]["step"]["properties"]["op"]["enum"] == list(OPS)
    for name, op in OPS.items():
        shape = schema["$defs"][name]["properties"]
        assert {key.key for key in op.paths} | set(op.texts) | set(op.defaults) <= set(shape), name
        wanted = {key.key: {"$ref": "#/$defs/paths" if key.many else "#/$defs/path"} for key in op.paths}
        assert all(shape[key] == ref for key, ref in wanted.items()), name


def test_every_op_declares_what_the_engine_needs() -> None:
    for name, op in OPS.items():
        assert op.name == name
        assert f'"op": "{name}"' in op.usage
        assert PATH_KEYS[name] == tuple((key.key, key.write) for key in op.paths)


@pytest.mark.parametrize(
    ("step", "where", "reason"),
    [
        ({"op": "delete", "path": "."}, "/steps/0/path", "is the workspace root itself"),
        ({"op": "delete", "path": "a/.."}, "/steps/0/path", "is the workspace root itself"),
        ({"op": "move", "from": "x", "to": "."}, "/steps/0/to", "is the workspace root itself"),
        ({"op": "move", "from": "./", "to": "x"}, "/steps/0/from", "is the workspace root itself"),
        ({"op": "copy", "from": ".", "to": "sub"}, "/steps/0/from", "is the workspace root itself"),
        ({"op": "mkdir", "path": "."}, "/steps/0/path", "is the workspace root itself"),
        ({"op": "write", "path": "newdir/", "content": ""}, "/steps/0/path", "names a file"),
        ({"op": "write", "path": "a.txt/", "content": "", "overwrite": True}, "/steps/0/path", "names a file"),
        ({"op": "append", "path": "a.txt/", "content": ""}, "/steps/0/path", "names a file"),
        ({"op": "patch", "path": "a.txt//", "find": "a", "replace": "b"}, "/steps/0/path", "names a file"),
        ({"op": "move", "from": "a.txt", "to": "dir/"}, "/steps/0/to", "names a file"),
        ({"op": "copy", "from": "a.txt", "to": "dir/"}, "/steps/0/to", "names a file"),
    ],
)
def test_paths_that_cannot_mean_what_they_say_are_refused_at_validation(
    step: dict[str, Any], where: str, reason: str
) -> None:
    with pytest.raises(InvalidPlan) as info:
        parse_plan(json.dumps({"version": 1, "steps": [step]}))
    assert f"invalid plan at {where}: " in str(info.value)
    assert reason in str(info.value)


@pytest.mark.parametrize(
    "step",
    [
        {"op": "mkdir", "path": "dir/"},
        {"op": "delete", "path": "dir/"},
        {"op": "move", "from": "dir/", "to": "other"},
        {"op": "copy", "from": "dir/", "to": "other"},
    ],
)
def test_a_trailing_slash_on_a_directory_path_is_fine(step: dict[str, Any]) -> None:
    parse_plan(json.dumps({"version": 1, "steps": [step]}))


def test_the_validation_error_reaches_the_cli_as_one_line(tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps({"version": 1, "steps": [{"op": "write", "path": "newdir/", "content": "x"}]}))
    result = run_routeshell("plan", "validate", str(plan_file))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "/steps/0/path" in result.stdout + result.stderr
