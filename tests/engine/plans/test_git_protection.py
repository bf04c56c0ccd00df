"""Every .git in a workspace is out of a plan's reach: at validation, at apply time, and inside bubblewrap."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.plans.apply import StepFailed, apply_plan
from engine.plans.dry_run import preview_plan
from engine.plans.model import InvalidPlan, parse_plan
from engine.plans.runner import Limits, bubblewrap, run_command
from engine.plans.trash import list_trash
from engine.workspace.sandbox import SandboxError, check_relpath
from tests.helpers import tree


def plan(*steps: dict[str, Any]) -> dict[str, Any]:
    return parse_plan(json.dumps({"version": 1, "steps": list(steps)}))


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    for git in (root / ".git", root / "vendor" / "lib" / ".git"):
        (git / "hooks").mkdir(parents=True)
        (git / "config").write_text("[core]\n")
    (root / "sub").mkdir()
    (root / "sub" / ".git").write_text("gitdir: ../.git/modules/sub\n")
    return root


@pytest.mark.parametrize(
    "path",
    ["vendor/lib/.git/hooks/pre-commit", "vendor/lib/.git", "sub/.git", ".git/config", "a/.GIT/config", "x/../.git"],
)
def test_writes_into_any_git_are_refused_at_validation(path: str) -> None:
    with pytest.raises(SandboxError, match="is protected"):
        check_relpath(path, write=True)
    check_relpath(path)  # reading stays allowed
    with pytest.raises(InvalidPlan, match="is protected"):
        plan({"op": "write", "path": path, "content": "#!/bin/sh\n", "overwrite": True})
    with pytest.raises(InvalidPlan, match="is protected"):
        plan({"op": "delete", "path": path})


@pytest.mark.parametrize(
    "step",
    [
        {"op": "write", "path": "hooks-link/hooks/pre-commit", "content": "#!/bin/sh\n"},
        {"op": "patch", "path": "hooks-link/hooks/../config", "find": "[core]", "replace": "[core]\nfsmonitor = x"},
        {"op": "delete", "path": "hooks-link/config"},
        {"op": "copy", "from": "sub", "to": "hooks-link/hooks/sub"},
    ],
)
def test_a_symlink_into_a_git_is_refused_at_apply_time(ws: Path, step: dict[str, Any]) -> None:
    os.symlink("vendor/lib/.git", ws / "hooks-link")
    before = tree(ws)
    document = plan(step)
    [preview] = preview_plan(ws, document)
    assert preview.problem is not None
    assert "leads into .git" in preview.problem
    with pytest.raises(StepFailed, match=r"leads into \.git"):
        apply_plan(ws, document)
    assert tree(ws) == before


def test_a_symlink_a_run_step_makes_into_a_git_is_refused(ws: Path) -> None:
    code = "import os; os.symlink('vendor/lib/.git', 'g')"
    document = plan(
        {"op": "run", "argv": [sys.executable, "-c", code]},
        {"op": "write", "path": "g/hooks/pre-commit", "content": "#!/bin/sh\n"},
    )
    with pytest.raises(StepFailed, match=r"step 2 .*leads into \.git"):
        apply_plan(ws, document)
    assert not (ws / "vendor" / "lib" / ".git" / "hooks" / "pre-commit").exists()


def test_run_steps_see_every_git_read_only(ws: Path) -> None:
    bwrap = bubblewrap()
    if bwrap is None:
        pytest.skip("bubblewrap (bwrap) is not installed or cannot create namespaces on this machine")
    os.symlink("vendor/lib/.git", ws / "git-link")
    code = (
        "import sys\n"
        "failed = 0\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n"
        "        open(path, 'a').write('[core]\\nfsmonitor = evil\\n')\n"
        "    except OSError as exc:\n"
        "        failed += 1\n"
        "        print(path, exc.strerror)\n"
        "open('ordinary.txt', 'w').write('still writable')\n"
        "sys.exit(failed)\n"
    )
    targets = ["vendor/lib/.git/config", ".git/config", "sub/.git", "git-link/hooks/pre-commit"]
    result = run_command(ws, [sys.executable, "-c", code, *targets], 60, Limits(), bwrap=bwrap)
    assert result.exit_code == len(targets), result.output_tail
    assert result.output_tail.count("Read-only file system") == len(targets)
    assert (ws / "vendor" / "lib" / ".git" / "config").read_text() == "[core]\n"
    assert (ws / ".git" / "config").read_text() == "[core]\n"
    assert (ws / "ordinary.txt").read_text() == "still writable"


def test_a_copy_leaves_every_git_out_and_says_so(ws: Path) -> None:
    (ws / "vendor" / "lib" / "x.c").write_text("x\n")
    (ws / "vendor" / "lib" / "deep" / ".GIT").mkdir(parents=True)
    (ws / "vendor" / "lib" / "deep" / ".GIT" / "config").write_text("[core]\n")
    before = tree(ws)
    copies = [("vendor", "copy", "lib/.git, lib/deep/.GIT left out"),
              ("vendor/lib", "lib2", ".git, deep/.GIT left out"),
              ("vendor/lib/deep", "deep2", "its .GIT left out"), ("sub", "sub2", "its .git left out")]  # fmt: skip
    steps = [{"op": "copy", "from": src, "to": dst} for src, dst, _ in copies]
    failing = plan(*steps, {"op": "run", "argv": ["false"]})
    previews = preview_plan(ws, failing)
    assert [preview.summary for preview in previews[:-1]] == [f"copy {s} -> {d} ({note})" for s, d, note in copies]
    with pytest.raises(StepFailed, match="rolled back"):
        apply_plan(ws, failing)
    assert tree(ws) == before  # the copies, as the plan made them, were removed outright
    assert list_trash(ws) == []
    apply_plan(ws, plan(*steps))
    assert sorted(str(path.relative_to(ws)) for path in (ws / "copy").rglob("*")) == [
        "copy/lib", "copy/lib/deep", "copy/lib/x.c"]  # fmt: skip
    assert sorted(os.listdir(ws / "lib2")) == ["deep", "x.c"]
    assert os.listdir(ws / "deep2") == os.listdir(ws / "sub2") == []
