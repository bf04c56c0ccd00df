"""The dry run follows the plan step by step: each step is checked against what the earlier ones leave."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.plans.apply import StepFailed, apply_plan
from engine.plans.dry_run import StepPreview, preview_plan
from engine.plans.model import parse_plan
from engine.plans.op_table import OPS, prepare_step
from engine.plans.view import Overlay
from engine.workspace import sandbox
from engine.workspace.sandbox import Workspace
from tests.helpers import tree


def plan(*steps: dict[str, Any]) -> dict[str, Any]:
    return parse_plan(json.dumps({"version": 1, "steps": list(steps)}))


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "m.py").write_text("x = 1\n")
    (root / "src" / "pkg" / "deep.py").write_text("deep\n")
    (root / "a.txt").write_text("alpha\n")
    (root / "notes.txt").write_text("a file\n")
    return root


def preview_then_apply(ws: Path, *steps: dict[str, Any]) -> list[StepPreview]:
    """Preview, then apply: the preview's first problem is the step the apply fails on, in the same words."""
    document = plan(*steps)
    before = tree(ws)
    previews = preview_plan(ws, document)
    assert tree(ws) == before
    failing = [p for p in previews if p.problem is not None]
    if not failing:
        apply_plan(ws, document)
        return previews
    with pytest.raises(StepFailed) as info:
        apply_plan(ws, document)
    assert str(info.value).startswith(f"step {failing[0].index + 1} ")
    assert failing[0].problem is not None
    assert failing[0].problem in str(info.value)
    return previews


def test_move_then_patch_the_destination(ws: Path) -> None:
    previews = preview_then_apply(
        ws,
        {"op": "move", "from": "a.txt", "to": "b.txt"},
        {"op": "patch", "path": "b.txt", "find": "alpha", "replace": "beta"},
    )
    assert [p.problem for p in previews] == [None, None]
    assert previews[1].diff is not None
    assert "--- a/b.txt" in previews[1].diff
    assert "-alpha\n+beta\n" in previews[1].diff
    assert (ws / "b.txt").read_text() == "beta\n"


def test_copy_a_directory_then_change_what_is_inside_the_copy(ws: Path) -> None:
    previews = preview_then_apply(
        ws,
        {"op": "copy", "from": "src", "to": "lib"},
        {"op": "delete", "path": "lib/m.py"},
        {"op": "patch", "path": "lib/pkg/deep.py", "find": "deep", "replace": "copied"},
        {"op": "write", "path": "lib/pkg/new.py", "content": "new\n"},
    )
    assert [p.problem for p in previews] == [None] * 4
    assert previews[2].diff is not None
    assert "-deep\n+copied\n" in previews[2].diff
    assert not (ws / "lib" / "m.py").exists()
    assert (ws / "src" / "m.py").exists()


def test_copy_then_append_diffs_against_the_copied_content(ws: Path) -> None:
    previews = preview_then_apply(
        ws,
        {"op": "copy", "from": "a.txt", "to": "c.txt"},
        {"op": "append", "path": "c.txt", "content": "more\n"},
    )
    assert previews[1].diff is not None
    assert "/dev/null" not in previews[1].diff
    assert "--- a/c.txt" in previews[1].diff
    assert " alpha\n+more\n" in previews[1].diff
    assert (ws / "c.txt").read_text() == "alpha\nmore\n"


# Characters str.splitlines() also breaks at; a diff line is what ends in "\n", as in git and patch.
LINE_BREAKS_INSIDE_A_LINE = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\r"


def test_a_diff_splits_lines_at_newlines_only(ws: Path) -> None:
    content = "".join(f"line {i}{char}rest\n" for i, char in enumerate(LINE_BREAKS_INSIDE_A_LINE))
    previews = preview_then_apply(
        ws,
        {"op": "write", "path": "new.txt", "content": content + "page\x0c"},
        {"op": "write", "path": "doc.txt", "content": "intro\x0c\nbody\n"},
        {"op": "patch", "path": "doc.txt", "find": "body", "replace": "BODY"},
    )
    added = "".join(f"+line {i}{char}rest\n" for i, char in enumerate(LINE_BREAKS_INSIDE_A_LINE))
    assert previews[0].diff == (
        f"--- /dev/null\n+++ b/new.txt\n@@ -0,0 +1,10 @@\n{added}+page\x0c\n\\ No newline at end of file\n"
    )
    # A line ending in a form feed before its newline is one line, with its newline.
    assert previews[2].diff == "--- a/doc.txt\n+++ b/doc.txt\n@@ -1,2 +1,2 @@\n intro\x0c\n-body\n+BODY\n"


def test_a_name_in_a_diff_header_is_escaped_and_cannot_add_diff_lines(ws: Path) -> None:
    forged = "x.txt\n+++ y.txt\n@@ -0,0 +1 @@\n+hello"
    (ws / forged).write_text("old\n")
    (ws / "bin\x1b[2J").write_bytes(b"\xff")
    previews = preview_then_apply(
        ws,
        {"op": "patch", "path": forged, "find": "old", "replace": "new"},
        {"op": "write", "path": "new\x1b[2J", "content": "plain\n"},
        {"op": "write", "path": "bin\x1b[2J", "content": "text\n", "overwrite": True},
    )
    shown = "x.txt\\n+++ y.txt\\n@@ -0,0 +1 @@\\n+hello"
    assert previews[0].diff == f"--- a/{shown}\n+++ b/{shown}\n@@ -1 +1 @@\n-old\n+new\n"
    assert previews[1].diff == "--- /dev/null\n+++ b/new\\x1b[2J\n@@ -0,0 +1 @@\n+plain\n"
    assert previews[2].diff == "binary content of bin\\x1b[2J changes\n"


@pytest.mark.parametrize(
    "steps",
    [
        # The source of a move is gone afterwards, with everything under it.
        [{"op": "move", "from": "src", "to": "lib"}, {"op": "delete", "path": "src/m.py"}],
        [{"op": "move", "from": "a.txt", "to": "b.txt"}, {"op": "patch", "path": "a.txt", "find": "a", "replace": "b"}],
        # A copy's destination exists afterwards, so a second copy there fails.
        [{"op": "copy", "from": "src", "to": "lib"}, {"op": "copy", "from": "a.txt", "to": "lib/pkg"}],
        # A directory deleted and made again is empty.
        [{"op": "delete", "path": "src"}, {"op": "mkdir", "path": "src"}, {"op": "delete", "path": "src/m.py"}],
        # Writing over a copied file needs overwrite, as it would on disk.
        [{"op": "copy", "from": "src", "to": "lib"}, {"op": "write", "path": "lib/m.py", "content": "y"}],
        # A file where a directory is wanted.
        [{"op": "mkdir", "path": "notes.txt/sub"}],
        [{"op": "move", "from": "a.txt", "to": "d"}, {"op": "mkdir", "path": "d/e"}],
    ],
)
def test_the_preview_refuses_what_the_apply_refuses(ws: Path, steps: list[dict[str, Any]]) -> None:
    previews = preview_then_apply(ws, *steps)
    assert previews[-1].problem is not None
    assert [p.problem for p in previews[:-1]] == [None] * (len(steps) - 1)


def test_without_openat2_the_preview_sees_what_earlier_steps_made_below_a_directory(
    ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sandbox, "HAVE_OPENAT2", False)  # as on a kernel without it: the component walk
    previews = preview_then_apply(
        ws,
        {"op": "write", "path": "src/pkg/new.py", "content": "a\n"},
        {"op": "append", "path": "src/pkg/new.py", "content": "b\n"},
        {"op": "write", "path": "src/pkg/new.py", "content": "c\n"},
    )
    assert str(previews[1].diff).endswith("--- a/src/pkg/new.py\n+++ b/src/pkg/new.py\n@@ -1 +1,2 @@\n a\n+b\n")
    assert previews[2].problem == "'src/pkg/new.py' already exists (set \"overwrite\": true to replace it)"


def test_mkdir_under_a_file_is_reported_by_the_preview(ws: Path) -> None:
    [preview] = preview_then_apply(ws, {"op": "mkdir", "path": "notes.txt/sub"})
    assert preview.problem == "'notes.txt' exists and is not a directory"


def test_a_symlink_the_plan_copies_is_followed_as_on_disk(ws: Path) -> None:
    os.symlink("src", ws / "link")
    previews = preview_then_apply(
        ws,
        {"op": "copy", "from": "link", "to": "link2"},
        {"op": "copy", "from": "link2/m.py", "to": "m2.py"},
        {"op": "delete", "path": "link2/m.py"},
        {"op": "write", "path": "link2/new.py", "content": ""},
    )
    # A copy reads through a symlinked directory; nothing is deleted or made through one.
    assert [p.problem for p in previews[:2]] == [None, None]
    assert str(previews[2].problem).startswith("'link2' is a symlink: nothing is changed in a directory through")
    assert str(previews[3].problem).startswith("'link2' is a symlink: nothing is made in a directory through")
    assert (ws / "src" / "m.py").exists()


def test_a_fifo_inside_a_copied_directory_is_refused_before_anything_is_copied(ws: Path) -> None:
    os.mkfifo(ws / "src" / "pkg" / "pipe")
    [preview] = preview_then_apply(ws, {"op": "copy", "from": "src", "to": "lib"})
    assert preview.problem == "'src/pkg/pipe': cannot copy a FIFO, socket or device"
    assert not (ws / "lib").exists()


NAMES = st.sampled_from(
    # Real names, names the plan may make, and names through the symlinks link -> src, flink -> a.txt, out -> /etc.
    [
        *("a.txt", "b.txt", "src", "src/m.py", "src/pkg", "src/pkg/deep.py", "lib", "lib/m.py", "new"),
        *("link", "link/m.py", "link/pkg/deep.py", "flink", "out/x", "lib/link/m.py"),
    ]
)
STEPS = st.one_of(
    st.builds(lambda p: {"op": "mkdir", "path": p}, NAMES),
    st.builds(lambda p, o: {"op": "write", "path": p, "content": "w\n", "overwrite": o}, NAMES, st.booleans()),
    st.builds(lambda p: {"op": "append", "path": p, "content": "more\n"}, NAMES),
    st.builds(lambda p: {"op": "patch", "path": p, "find": "\n", "replace": "!\n", "count": 0}, NAMES),
    st.builds(lambda a, b: {"op": "move", "from": a, "to": b}, NAMES, NAMES),
    st.builds(lambda a, b: {"op": "copy", "from": a, "to": b}, NAMES, NAMES),
    st.builds(lambda p: {"op": "delete", "path": p}, NAMES),
)


def overlay_tree(root: Path, document: dict[str, Any]) -> dict[str, Any]:
    """The workspace as the dry run's simulation leaves it, in the shape of ``tests.helpers.tree``."""
    found: dict[str, Any] = {}
    with Workspace(root) as ws:
        overlay = Overlay(ws)
        for index, step in enumerate(document["steps"]):
            OPS[step["op"]].simulate(overlay, prepare_step(overlay, index, step), step)

        def walk(directory: str) -> None:
            for name in overlay.children(directory):
                path = name if directory == "." else f"{directory}/{name}"
                if name == ".routeshell" and directory == ".":
                    continue
                kind = overlay.kind(path)
                if kind == "file":
                    found[path] = overlay.read(path)[0]
                else:
                    found[path] = kind
                    if kind == "dir":
                        walk(path)

        walk(".")
    return found


def disk_tree(root: Path) -> dict[str, Any]:
    kinds = {"file": "file", "link": "link"}
    return {path: entry[1] if entry[0] == "file" else kinds.get(entry[0], "dir") for path, entry in tree(root).items()}


@settings(
    max_examples=60,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    deadline=None,
)
@given(steps=st.lists(STEPS, min_size=1, max_size=6))
def test_the_preview_predicts_the_apply(tmp_path_factory: pytest.TempPathFactory, steps: list[dict[str, Any]]) -> None:
    root = tmp_path_factory.mktemp("ws")
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "m.py").write_text("x = 1\n")
    (root / "src" / "pkg" / "deep.py").write_text("deep\n")
    (root / "a.txt").write_text("alpha\n")
    os.symlink("src", root / "link")
    os.symlink("a.txt", root / "flink")
    os.symlink("/etc", root / "out")
    document = plan(*steps)
    problems = [p.index for p in preview_plan(root, document) if p.problem]
    accepted = document["steps"][: problems[0] if problems else None]
    expected = overlay_tree(root, {"steps": accepted})
    preview_then_apply(root, *steps)  # refused at the step the preview names, or applied
    if problems and accepted:
        apply_plan(root, {**document, "steps": accepted})
    assert disk_tree(root) == expected
