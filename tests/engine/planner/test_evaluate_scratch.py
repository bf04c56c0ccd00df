"""``eval planner`` where temporary files go cannot hold a case's workspace (a full disk, a file
system without extended attributes): one line that blames the place, exit 1, nothing left there;
a gold plan the engine refuses is still the case file's error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from engine.planner.cases import Case
from engine.planner.effect import ScratchError, plan_effect
from tests.helpers import assert_one_line_error, run_routeshell, small_disk, without_xattrs

TODAY = "2026-03-18"


def _case(name: str, workspace: list[dict[str, Any]], steps: list[dict[str, Any]]) -> Case:
    return Case.from_json({"id": name, "request": "tidy up", "today": TODAY, "kinds": ["by_name"],
                           "workspace": workspace, "plan": {"version": 1, "steps": steps}})  # fmt: skip


#: A fixture with a tagged file: making it sets an extended attribute.
TAGGED = _case("tagged", [{"path": "a.txt", "text": "a\n", "tags": ["keep"]}], [{"op": "mkdir", "path": "done"}])
#: A fixture with no tags, whose gold plan tags a file: the apply sets an extended attribute.
TAGGING = _case("tagging", [{"path": "a.txt", "text": "a\n"}], [{"op": "tag", "path": "a.txt", "tags": ["done"]}])
#: A fixture that fits a small disk, whose gold plan makes copies that do not.
COPYING = _case(
    "copying",
    [{"path": "big.txt", "text": "x" * 150_000}],
    [{"op": "copy", "from": "big.txt", "to": f"copy{index}.txt"} for index in range(3)],
)
#: A fixture larger than a small disk.
LARGE = _case(
    "large",
    [{"path": f"big{index}.txt", "text": "x" * 200_000} for index in range(3)],
    [{"op": "mkdir", "path": "done"}],
)
#: A gold plan the engine refuses wherever it runs: it moves a file that is not there.
MISSING = _case("missing", [{"path": "a.txt", "text": "a\n"}], [{"op": "move", "from": "b.txt", "to": "c.txt"}])


def _written(path: Path, *cases: Case) -> Path:
    path.write_text("".join(json.dumps(case.to_json()) + "\n" for case in cases))
    return path


def _eval(data: Path, tmp: Path) -> Any:
    """``eval planner`` on ``data`` with ``tmp`` (made) as TMPDIR."""
    tmp.mkdir()
    return run_routeshell("eval", "planner", "--data", str(data), "--predictor", "gold", env={"TMPDIR": str(tmp)})


def test_cases_apply_on_an_ordinary_disk(tmp_path: Path) -> None:
    # (What the tests below see refused is the place, not the cases.)
    for case in (TAGGED, TAGGING, COPYING, LARGE):
        assert plan_effect(case.fixture, case.today, case.plan, scratch=tmp_path / "scratch").applied
    assert not plan_effect(MISSING.fixture, MISSING.today, MISSING.plan, scratch=tmp_path / "scratch").applied


@pytest.mark.parametrize("case", [TAGGED, TAGGING], ids=lambda case: case.id)
def test_a_place_without_extended_attributes_is_one_line_and_exit_1(tmp_path: Path, case: Case) -> None:
    data = _written(tmp_path / "cases.jsonl", case)
    with without_xattrs(tmp_path / "ram") as ram:
        with pytest.raises(ScratchError, match="does not support extended attributes"):
            plan_effect(case.fixture, case.today, case.plan, scratch=ram / "scratch")
        result = _eval(data, ram / "tmp")
        assert_one_line_error(result, 1, f"cannot write the cases' workspaces in {ram / 'tmp'}: ",
                              "does not support extended attributes", "set TMPDIR to")  # fmt: skip
        assert "gold plan" not in result.stderr
        assert not any((ram / "tmp").iterdir())


@pytest.mark.parametrize("case", [LARGE, COPYING], ids=lambda case: case.id)
def test_a_full_disk_is_one_line_and_exit_1(tmp_path: Path, case: Case) -> None:
    data = _written(tmp_path / "cases.jsonl", case)
    with small_disk(tmp_path / "disk", "256k") as disk:
        with pytest.raises(ScratchError, match="no space left"):
            plan_effect(case.fixture, case.today, case.plan, scratch=disk / "scratch")
        shutil.rmtree(disk / "scratch")
        result = _eval(data, disk / "tmp")
        assert_one_line_error(result, 1, f"cannot write the cases' workspaces in {disk / 'tmp'}: ", "no space left",
                              "set TMPDIR to a directory on a disk with room")  # fmt: skip
        assert "gold plan" not in result.stderr
        assert not any((disk / "tmp").iterdir())


def test_a_gold_plan_the_engine_refuses_is_still_the_case_files_error(tmp_path: Path) -> None:
    data = _written(tmp_path / "cases.jsonl", MISSING)
    with without_xattrs(tmp_path / "ram") as ram:
        result = _eval(data, ram / "tmp")
        assert_one_line_error(result, 2, f'{data}:1: case "missing": its gold plan does not apply: ', "b.txt")
        assert not any((ram / "tmp").iterdir())
