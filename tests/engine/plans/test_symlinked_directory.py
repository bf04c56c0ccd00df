"""A step never makes, changes or deletes anything through a symlinked directory, at any depth of its
path: it is refused, in the preview and again in the apply, in one line that names the symlink."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest

from engine.plans.apply import StepFailed, apply_plan
from engine.plans.dry_run import preview_plan
from engine.plans.model import InvalidPlan, parse_plan
from tests.helpers import tree

INSIDE = (
    "'{}' is a symlink: nothing is {} in a directory through the symlink that names it; use the directory it leads to"
)
OUTSIDE = (
    "'{}' is a symlink leading outside the workspace: nothing is {} in a directory through the symlink that"
    " names it, nor outside the workspace"
)

MATCH_INSIDE = (
    "'{}' is a symlink: a match never goes through one (a link is an entry, never a way in); glob the directory it"
    " leads to"
)
MATCH_OUTSIDE = (
    "'{}' is a symlink leading outside the workspace: a match never goes through one, nor outside the workspace"
)


@pytest.fixture
def ws(tmp_path: Path, resolution: str) -> Path:
    root = tmp_path / "ws"
    sub = root / "real" / "sub"
    (sub / "d").mkdir(parents=True)
    (sub / "f.txt").write_text("f\n")
    (sub / "n.md").write_text("# n\n")
    (root / "a.txt").write_text("a\n")
    with zipfile.ZipFile(root / "z.zip", "w") as archive:
        archive.writestr("zz.txt", "z\n")
    (root / "link_in").symlink_to("real")
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "sub").mkdir(parents=True)
    (elsewhere / "sub" / "f.txt").write_text("outside\n")
    (root / "link_out").symlink_to(elsewhere)
    return root


def plan(*steps: dict[str, Any]) -> dict[str, Any]:
    return parse_plan(json.dumps({"version": 1, "goal": "t", "steps": list(steps)}))


def refused(root: Path, document: dict[str, Any], expected: str) -> None:
    """The preview and the apply both refuse ``document`` with ``expected``, in one line, and nothing changes."""
    before, outside = tree(root), tree(root.parent / "elsewhere")
    problems = [p.problem for p in preview_plan(root, document) if p.problem]
    assert problems, "the preview let it through"
    assert expected in problems[0]
    with pytest.raises(StepFailed) as info:
        apply_plan(root, document)
    message = str(info.value)
    assert expected in message
    for wrong in ("does not exist", "not a directory", "add a mkdir", "\n"):
        assert wrong not in message
    assert tree(root) == before
    assert tree(root.parent / "elsewhere") == outside


@pytest.mark.parametrize(
    "step",
    [
        {"op": "write", "path": "link_in/new.txt", "content": ""},
        {"op": "mkdir", "path": "link_in/new"},
        {"op": "copy", "from": "real", "to": "link_in/copy"},
    ],
    ids=["write", "mkdir", "copy"],
)
def test_the_refusal_names_the_symlink(ws: Path, step: dict[str, Any]) -> None:
    refused(ws, plan(step), INSIDE.format("link_in", "made"))


@pytest.mark.parametrize(
    ("step", "verb"),
    [
        ({"op": "write", "path": "link_in/sub/x.txt", "content": "hi"}, "made"),
        ({"op": "write", "path": "link_in/sub/f.txt", "content": "hi", "overwrite": True}, "made"),
        ({"op": "append", "path": "link_in/sub/f.txt", "content": "hi"}, "changed"),
        ({"op": "patch", "path": "link_in/sub/f.txt", "find": "f", "replace": "g"}, "changed"),
        ({"op": "mkdir", "path": "link_in/sub/new"}, "made"),
        ({"op": "delete", "path": "link_in/sub/f.txt"}, "changed"),
        ({"op": "delete", "path": "link_in/sub/d"}, "changed"),
        ({"op": "delete", "path": "link_in/f.txt"}, "changed"),
        ({"op": "move", "from": "link_in/sub/f.txt", "to": "moved.txt"}, "changed"),
        ({"op": "move", "from": "a.txt", "to": "link_in/sub/a.txt"}, "made"),
        ({"op": "copy", "from": "a.txt", "to": "link_in/sub/a.txt"}, "made"),
        ({"op": "tag", "path": "link_in/sub/f.txt", "tags": ["x"]}, "changed"),
        ({"op": "tag", "path": "link_in/sub/n.md", "tags": ["x"]}, "changed"),
        ({"op": "untag", "path": "link_in/sub/f.txt", "tags": ["x"]}, "changed"),
        ({"op": "archive", "paths": ["a.txt"], "to": "link_in/sub/a.zip"}, "made"),
        ({"op": "extract", "from": "z.zip", "to": "link_in/sub/new"}, "made"),
        ({"op": "extract", "from": "z.zip", "to": "link_in/sub/d"}, "made"),
    ],
    ids=str.split(
        "write overwrite append patch mkdir delete delete-dir delete-by-parent move-from move-to copy-to tag"
        " tag-markdown untag archive-to extract-new extract-into"
    ),
)
def test_a_symlinked_directory_deeper_in_the_path_is_refused(ws: Path, step: dict[str, Any], verb: str) -> None:
    refused(ws, plan(step), INSIDE.format("link_in", verb))
    assert sorted(os.listdir(ws / "real" / "sub")) == ["d", "f.txt", "n.md"]


@pytest.mark.parametrize(
    ("step", "verb"),
    [
        ({"op": "delete", "paths": ["link_in/sub/f.txt"]}, "changed"),
        ({"op": "move", "match": {"glob": "*.txt"}, "to": "link_in/sub"}, "made"),
        ({"op": "copy", "paths": ["a.txt"], "to": "link_in/sub/new"}, "made"),
        ({"op": "rename", "paths": ["link_in/sub/f.txt"], "template": "g{ext}"}, "changed"),
        ({"op": "classify", "match": {"glob": "*.txt"}, "rules": [{"default": True, "to": "link_in/sub"}]}, "made"),
        ({"op": "tag", "paths": ["link_in/sub/f.txt"], "tags": ["x"]}, "changed"),
        ({"op": "archive", "paths": ["link_in/sub/f.txt"], "to": "a.zip", "remove": True}, "changed"),
    ],
    ids=str.split("delete-paths move-match copy-paths rename classify tag-paths archive-remove"),
)
def test_a_selection_through_a_symlinked_directory_is_refused(
    ws: Path, resolution: str, step: dict[str, Any], verb: str
) -> None:
    if resolution == "walk" and step["op"] == "archive":
        pytest.skip("the component walk reads nothing through a symlink, so nothing is selected there")
    document = plan(step)
    expected = INSIDE.format("link_in", verb)
    before = tree(ws)
    try:
        problems = [p.problem for p in preview_plan(ws, document) if p.problem]
    except InvalidPlan as exc:
        problems = [str(exc)]
    assert problems
    assert expected in problems[0]
    with pytest.raises((StepFailed, InvalidPlan)) as info:
        apply_plan(ws, document)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)
    assert tree(ws) == before


@pytest.mark.parametrize(
    "step",
    [
        {"op": "delete", "match": {"glob": "link_in/sub/*.txt"}},
        {"op": "delete", "match": {"glob": "link_in/*"}},
        {"op": "copy", "match": {"glob": "link_in/sub/*.txt"}, "to": "out"},
        {"op": "move", "match": {"glob": "link_in/**", "type": "any"}, "to": "out", "keep_tree": True},
        {"op": "rename", "match": {"glob": "link_in/sub/*.txt"}, "template": "g{ext}"},
        {"op": "classify", "match": {"glob": "link_in/sub/*"}, "rules": [{"default": True, "to": "out"}]},
        {"op": "tag", "match": {"glob": "link_in/sub/*.md"}, "tags": ["x"]},
        {"op": "archive", "match": {"glob": "link_in/sub/*.txt"}, "to": "a.zip"},
        {"op": "delete", "match": {"glob": "link_in/sub/*", "semantic": "a letter"}},
    ],
    ids=str.split("below whole copy move-tree rename classify tag archive semantic"),
)
def test_a_match_whose_fixed_start_goes_through_a_symlink_is_refused_naming_it(ws: Path, step: dict[str, Any]) -> None:
    refused_match(ws, plan(step), MATCH_INSIDE.format("link_in"))


def test_a_symlink_deeper_in_a_matchs_fixed_start_is_named(ws: Path) -> None:
    (ws / "real" / "again").symlink_to("sub")
    refused_match(ws, plan({"op": "delete", "match": {"glob": "real/again/*.txt"}}), MATCH_INSIDE.format("real/again"))


def test_a_match_through_a_symlink_leading_outside_is_named_as_one(ws: Path) -> None:
    refused_match(ws, plan({"op": "delete", "match": {"glob": "link_out/sub/*.txt"}}), MATCH_OUTSIDE.format("link_out"))
    assert (ws.parent / "elsewhere" / "sub" / "f.txt").read_text() == "outside\n"


def test_a_match_through_a_real_directory_beside_a_symlink_selects_there(ws: Path) -> None:
    document = plan({"op": "delete", "match": {"glob": "real/sub/*.txt"}})
    assert [p.problem for p in preview_plan(ws, document)] == [None]


def refused_match(root: Path, document: dict[str, Any], expected: str) -> None:
    """Expanding ``document`` is refused at its match's glob with ``expected``, in one line, and nothing changes."""
    before = tree(root)
    for attempt in (preview_plan, apply_plan):
        with pytest.raises(InvalidPlan) as info:
            attempt(root, document)
        assert info.value.problems[0].pointer == "/steps/0/match/glob"
        assert info.value.problems[0].reason == expected
        assert "\n" not in str(info.value)
    assert tree(root) == before


@pytest.mark.parametrize(
    ("step", "verb"),
    [
        ({"op": "write", "path": "link_out/x.txt", "content": "hi"}, "made"),
        ({"op": "write", "path": "link_out/sub/x.txt", "content": "hi"}, "made"),
        ({"op": "append", "path": "link_out/sub/f.txt", "content": "hi"}, "changed"),
        ({"op": "mkdir", "path": "link_out/sub/new"}, "made"),
        ({"op": "delete", "path": "link_out/sub/f.txt"}, "changed"),
        ({"op": "move", "from": "a.txt", "to": "link_out/a.txt"}, "made"),
        ({"op": "copy", "from": "a.txt", "to": "link_out/sub/a.txt"}, "made"),
        ({"op": "extract", "from": "z.zip", "to": "link_out/sub"}, "made"),
    ],
    ids=["write", "write-deeper", "append", "mkdir", "delete", "move-to", "copy-to", "extract"],
)
def test_a_symlink_leading_outside_is_named_as_one(ws: Path, step: dict[str, Any], verb: str) -> None:
    refused(ws, plan(step), OUTSIDE.format("link_out", verb))


def test_a_symlink_to_a_symlink_leading_outside_is_named_as_leading_outside(ws: Path) -> None:
    (ws / "real" / "out").symlink_to("../link_out")
    refused(ws, plan({"op": "write", "path": "real/out/sub/x.txt", "content": ""}), OUTSIDE.format("real/out", "made"))


def test_a_symlink_the_plan_makes_is_refused_as_one_on_disk(ws: Path) -> None:
    document = plan(
        {"op": "copy", "from": "link_in", "to": "real/copied"},
        {"op": "write", "path": "real/copied/sub/x.txt", "content": ""},
    )
    [first, second] = preview_plan(ws, document)
    assert first.problem is None
    assert second.problem == INSIDE.format("real/copied", "made")
    with pytest.raises(StepFailed, match=r"^step 2 .*'real/copied' is a symlink: nothing is made"):
        apply_plan(ws, document)
    assert not os.path.lexists(ws / "real" / "copied")


@pytest.fixture
def swappable(ws: Path) -> Path:
    """``d/sub`` holding ``f.txt``: a real directory, until :func:`swap` puts a symlink in place of ``d``."""
    (ws / "d" / "sub").mkdir(parents=True)
    (ws / "d" / "sub" / "f.txt").write_text("f\n")
    return ws


def swap(root: Path) -> None:
    """Move the directory ``d`` aside to ``d_real`` and leave ``d`` a symlink to it."""
    os.rename(root / "d", root / "d_real")
    (root / "d").symlink_to("d_real")


SWAPPED_STEPS = [
    ({"op": "write", "path": "d/sub/x.txt", "content": "hi"}, "made"),
    ({"op": "append", "path": "d/sub/f.txt", "content": "hi"}, "changed"),
    ({"op": "mkdir", "path": "d/sub/new"}, "made"),
    ({"op": "delete", "path": "d/sub/f.txt"}, "changed"),
    ({"op": "move", "from": "a.txt", "to": "d/sub/a.txt"}, "made"),
    ({"op": "copy", "from": "a.txt", "to": "d/sub/a.txt"}, "made"),
    ({"op": "tag", "path": "d/sub/f.txt", "tags": ["x"]}, "changed"),
    ({"op": "archive", "paths": ["a.txt"], "to": "d/sub/a.zip"}, "made"),
    ({"op": "extract", "from": "z.zip", "to": "d/sub"}, "made"),
]
SWAPPED_IDS = ["write", "append", "mkdir", "delete", "move", "copy", "tag", "archive", "extract"]


@pytest.mark.parametrize(("step", "verb"), SWAPPED_STEPS, ids=SWAPPED_IDS)
def test_a_symlink_put_on_the_way_after_the_preview_is_refused(
    swappable: Path, step: dict[str, Any], verb: str
) -> None:
    document = plan(step)
    assert [p.problem for p in preview_plan(swappable, document)] == [None]
    swap(swappable)
    before = tree(swappable)
    with pytest.raises(StepFailed) as info:
        apply_plan(swappable, document)
    assert INSIDE.format("d", verb) in str(info.value)
    assert tree(swappable) == before


@pytest.mark.parametrize(("step", "verb"), SWAPPED_STEPS, ids=SWAPPED_IDS)
def test_a_symlink_put_on_the_way_after_the_step_was_checked_is_refused(
    swappable: Path, step: dict[str, Any], verb: str
) -> None:
    swapped: list[bool] = []

    def swap_once() -> bool:
        # Polled after the step was checked and journaled, just before it is carried out.
        if not swapped:
            swap(swappable)
            swapped.append(True)
        return False

    with pytest.raises(StepFailed) as info:
        apply_plan(swappable, plan(step), cancel=swap_once)
    assert swapped
    message = str(info.value)
    assert INSIDE.format("d", verb) in message
    assert "\n" not in message
    assert sorted(os.listdir(swappable / "d_real" / "sub")) == ["f.txt"]
    assert (swappable / "d_real" / "sub" / "f.txt").read_text() == "f\n"
    assert (swappable / "a.txt").read_text() == "a\n"
