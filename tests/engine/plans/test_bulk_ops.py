"""The file-management ops end to end: expansion, preview, apply, and an undo that restores every bit."""

from __future__ import annotations

import json
import os
import stat
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from engine.plans.apply import StepFailed, apply_plan
from engine.plans.dry_run import preview_plan
from engine.plans.expand import expand_plan
from engine.plans.model import InvalidPlan, parse_plan
from engine.plans.policy import Policy, waits_for_approval
from engine.plans.undo import undo_journal
from engine.workspace.sandbox import SandboxError
from tests.helpers import without_xattrs


def snapshot(root: Path) -> dict[str, Any]:
    """Kind, bytes, mode and every user attribute of everything under ``root`` but the state directory."""
    found: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".routeshell"]
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            info = os.lstat(path)
            rel = os.fsdecode(path.relative_to(root))
            if stat.S_ISLNK(info.st_mode):
                found[rel] = ("link", os.readlink(path))
                continue
            xattrs = {key: os.getxattr(path, key) for key in os.listxattr(path) if key.startswith("user.")}
            data = path.read_bytes() if stat.S_ISREG(info.st_mode) else None
            found[rel] = (stat.S_IFMT(info.st_mode), data, stat.S_IMODE(info.st_mode), xattrs)
    return found


def plan_of(*steps: dict[str, Any]) -> dict[str, Any]:
    return parse_plan(json.dumps({"version": 1, "goal": "bulk", "steps": list(steps)}))


def concrete(root: Path, *steps: dict[str, Any], policy: Policy | None = None) -> list[dict[str, Any]]:
    return list(expand_plan(root, plan_of(*steps), policy)["steps"])


def apply_and_undo(root: Path, *steps: dict[str, Any], policy: Policy | None = None) -> dict[str, Any]:
    """Apply the steps, check the preview saw no problem, undo, and check the tree is as before."""
    before = snapshot(root)
    plan = expand_plan(root, plan_of(*steps), policy)
    assert [p.problem for p in preview_plan(root, plan, policy) if p.problem] == []
    result = apply_plan(root, plan, policy=policy)
    after = snapshot(root)
    undo_journal(root, result.journal_id)
    assert snapshot(root) == before
    return after


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "logs" / "2025").mkdir(parents=True)
    (root / "docs").mkdir()
    (root / "logs" / "a.log").write_text("ok\n")
    (root / "logs" / "2025" / "b.log").write_text("ERROR b\n")
    (root / "c.log").write_text("c\n")
    (root / "docs" / "design.md").write_text("---\ntitle: Design\n---\nThe architecture of it.\n")
    (root / "docs" / "endpoints.txt").write_text("The API lists\n")
    (root / "docs" / "holiday.png").write_bytes(b"\x89PNG")
    (root / "docs" / "draft-idea.txt").write_text("maybe\n")
    os.setxattr(root / "c.log", "user.note", b"keep me")
    os.chmod(root / "c.log", 0o600)
    return root


def test_move_by_match_keeps_names_and_undo_restores(root: Path) -> None:
    steps = concrete(root, {"op": "move", "match": {"glob": "**/*.log"}, "to": "archive"})
    assert steps == [
        {"op": "mkdir", "path": "archive"},
        {"op": "move", "from": "c.log", "to": "archive/c.log"},
        {"op": "move", "from": "logs/2025/b.log", "to": "archive/b.log"},
        {"op": "move", "from": "logs/a.log", "to": "archive/a.log"},
    ]
    after = apply_and_undo(root, {"op": "move", "match": {"glob": "**/*.log"}, "to": "archive"})
    assert after["archive/c.log"][1:] == (b"c\n", 0o600, {"user.note": b"keep me"})


def test_keep_tree_is_relative_to_the_glob_base_and_what_is_in_the_target_stays(root: Path) -> None:
    (root / "archive").mkdir()
    (root / "archive" / "old.log").write_text("old\n")
    steps = concrete(root, {"op": "copy", "match": {"glob": "logs/**/*.log"}, "to": "archive", "keep_tree": True})
    assert steps == [
        {"op": "mkdir", "path": "archive/2025"},
        {"op": "copy", "from": "logs/2025/b.log", "to": "archive/2025/b.log"},
        {"op": "copy", "from": "logs/a.log", "to": "archive/a.log"},
    ]
    apply_and_undo(root, {"op": "copy", "match": {"glob": "**/*.log"}, "to": "archive", "keep_tree": True})


def test_two_files_with_one_name_are_refused_naming_both(root: Path) -> None:
    (root / "docs" / "c.log").write_text("other c\n")
    with pytest.raises(InvalidPlan) as caught:
        concrete(root, {"op": "move", "match": {"glob": "**/*.log"}, "to": "archive"})
    assert caught.value.problems[0].pointer == "/steps/0/to"
    assert "'c.log' and 'docs/c.log' would both become 'archive/c.log'" in str(caught.value)


def test_delete_by_match_goes_to_the_trash(root: Path) -> None:
    after = apply_and_undo(root, {"op": "delete", "match": {"glob": "**/*.log", "contains": "error"}})
    assert "logs/2025/b.log" not in after
    assert "logs/a.log" in after


def test_an_empty_selection_says_so(root: Path) -> None:
    with pytest.raises(InvalidPlan, match="selects nothing"):
        concrete(root, {"op": "delete", "match": {"glob": "**/*.nothing"}})


def test_rename_by_template_with_every_placeholder(root: Path) -> None:
    os.utime(root / "logs" / "a.log", (1735732800, 1735732800))  # 2025-01-01 12:00 UTC
    steps = concrete(
        root, {"op": "rename", "match": {"glob": "logs/*.log"}, "template": "{parent}-{n:03}-{mtime:%Y}-{stem}{ext}"}
    )
    assert steps == [{"op": "move", "from": "logs/a.log", "to": "logs/logs-001-2025-a.log"}]
    apply_and_undo(root, {"op": "rename", "match": {"glob": "**/*.log"}, "template": "photo_{n:03}{ext}"})


def test_rename_by_regex_with_groups(root: Path) -> None:
    steps = concrete(root, {"op": "rename", "match": {"glob": "docs/*"}, "find": r"^(\w+)-(\w+)", "replace": r"\2-\1"})
    assert steps == [{"op": "move", "from": "docs/draft-idea.txt", "to": "docs/idea-draft.txt"}]


def test_a_backslash_put_in_literally_is_no_group(root: Path) -> None:
    # A doubled backslash before a digit was read as a reference to a group the pattern lacks.
    steps = concrete(root, {"op": "rename", "match": {"glob": "docs/*"}, "find": "^draft", "replace": r"v\\1"})
    assert steps == [{"op": "move", "from": "docs/draft-idea.txt", "to": "docs/v\\1-idea.txt"}]
    with pytest.raises(InvalidPlan, match="invalid group reference 1"):
        concrete(root, {"op": "rename", "match": {"glob": "docs/*"}, "find": "^draft", "replace": r"v\1"})


def test_rename_conflicts_name_both_paths(root: Path) -> None:
    (root / "x.txt").write_text("x")
    (root / "y.txt").write_text("y")
    with pytest.raises(InvalidPlan, match=r"'x.txt' and 'y.txt' would both become 'same.txt'"):
        concrete(root, {"op": "rename", "paths": ["x.txt", "y.txt"], "template": "same.txt"})
    with pytest.raises(InvalidPlan, match=r"'x.txt' would become 'c.log', which already exists"):
        concrete(root, {"op": "rename", "paths": ["x.txt"], "template": "c.log"})
    with pytest.raises(InvalidPlan, match="stays in its directory"):
        concrete(root, {"op": "rename", "paths": ["x.txt"], "template": "sub/{name}"})
    with pytest.raises(InvalidPlan, match=r"\.git"):
        concrete(root, {"op": "rename", "paths": ["x.txt"], "template": ".git"})


def test_a_chain_of_renames_goes_through_temporary_names(root: Path) -> None:
    for name in ("2.txt", "3.txt"):
        (root / name).write_text(name)
    steps = concrete(root, {"op": "rename", "match": {"glob": "?.txt"}, "template": "{n}.txt"})
    # 2.txt -> 1.txt while 3.txt -> 2.txt: 2.txt is taken until it has moved, so both park first.
    assert [s["from"] for s in steps[:2]] == ["2.txt", "3.txt"]
    assert all(s["to"].startswith(".rs-rename-") for s in steps[:2])
    assert [s["to"] for s in steps[2:]] == ["1.txt", "2.txt"]
    after = apply_and_undo(root, {"op": "rename", "match": {"glob": "?.txt"}, "template": "{n}.txt"})
    assert (after["1.txt"][1], after["2.txt"][1], "3.txt" in after) == (b"2.txt", b"3.txt", False)
    with pytest.raises(InvalidPlan, match="no name changes"):
        concrete(root, {"op": "rename", "paths": ["2.txt"], "template": "{name}"})


def test_classify_first_rule_wins_and_unmatched_files_stay(root: Path) -> None:
    rules = [
        {"contains": "architecture", "to": "docs/architecture"},
        {"regex": r"\bAPI\b", "to": "docs/api"},
        {"ext": [".png", ".jpg"], "to": "images"},
        {"glob": "**/draft-*", "to": "drafts"},
        {"contains": "architecture", "to": "never"},
    ]
    step = {"op": "classify", "match": {"glob": "docs/*"}, "rules": rules}
    moves = {s["from"]: s["to"] for s in concrete(root, step) if s["op"] == "move"}
    assert moves == {
        "docs/design.md": "docs/architecture/design.md",
        "docs/endpoints.txt": "docs/api/endpoints.txt",
        "docs/holiday.png": "images/holiday.png",
        "docs/draft-idea.txt": "drafts/draft-idea.txt",
    }
    apply_and_undo(root, step)
    rules = [{"contains": "ERROR", "to": "errors"}, {"default": True, "to": "misc"}]
    fallback = {"op": "classify", "match": {"glob": "**/*.log"}, "rules": rules}
    moves = {s["from"]: s["to"] for s in concrete(root, fallback) if s["op"] == "move"}
    assert moves == {"logs/2025/b.log": "errors/b.log", "logs/a.log": "misc/a.log", "c.log": "misc/c.log"}
    only = {"op": "classify", "match": {"glob": "**/*.log"}, "rules": [{"contains": "ERROR", "to": "errors"}]}
    assert [s["from"] for s in concrete(root, only) if s["op"] == "move"] == ["logs/2025/b.log"]


def test_tags_in_front_matter_and_in_the_attribute_and_undo_restores_both(root: Path) -> None:
    step = {"op": "tag", "match": {"glob": "**", "ext": [".md", ".log"]}, "tags": ["archived", "2025"]}
    after = apply_and_undo(root, step)
    assert b"tags:" in after["docs/design.md"][1]
    assert b"The architecture of it.\n" in after["docs/design.md"][1]
    assert after["c.log"][3] == {"user.note": b"keep me", "user.xdg.tags": b"archived,2025"}
    plan = apply_plan(root, expand_plan(root, plan_of(step)))
    tagged = concrete(root, {"op": "untag", "match": {"glob": "**", "tag": "archived"}, "tags": ["archived"]})
    assert sorted(s["path"] for s in tagged) == ["c.log", "docs/design.md", "logs/2025/b.log", "logs/a.log"]
    apply_and_undo(root, {"op": "untag", "match": {"glob": "**", "tag": "archived"}, "tags": ["archived"]})
    assert plan.journal_id


def test_a_markdown_preview_shows_the_front_matter_diff(root: Path) -> None:
    plan = expand_plan(root, plan_of({"op": "tag", "paths": ["docs/design.md"], "tags": ["architecture"]}))
    (preview,) = preview_plan(root, plan)
    assert preview.diff is not None
    assert "+tags:" in preview.diff
    assert "+  - architecture" in preview.diff


@pytest.mark.parametrize("name", ["old.zip", "old.tar.gz", "old.tar.xz"])
def test_archive_then_extract_round_trips(root: Path, name: str) -> None:
    before = snapshot(root)
    archived = apply_plan(root, expand_plan(root, plan_of({"op": "archive", "match": {"glob": "logs/**"}, "to": name,
                                                               "remove": True})))  # fmt: skip
    assert not (root / "logs" / "a.log").exists()
    assert (root / name).is_file()
    extracted = apply_plan(root, expand_plan(root, plan_of({"op": "extract", "from": name, "to": "back"})))
    assert (root / "back" / "logs" / "2025" / "b.log").read_text() == "ERROR b\n"
    assert (root / "back" / "logs" / "a.log").read_text() == "ok\n"
    undo_journal(root, extracted.journal_id)
    undo_journal(root, archived.journal_id)
    assert snapshot(root) == before


def test_extract_never_replaces_and_refuses_hostile_archives(root: Path) -> None:
    with zipfile.ZipFile(root / "slip.zip", "w") as archive:
        archive.writestr("../evil.txt", "x")
    with tarfile.open(root / "git.tar.gz", "w:gz") as archive:
        info = tarfile.TarInfo("sub/.git/hooks/post-checkout")
        archive.addfile(info)
    with zipfile.ZipFile(root / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros", bytes(3 << 20))
    with zipfile.ZipFile(root / "fine.zip", "w") as archive:
        archive.writestr("c.log", "clash")
    small = Policy(archive=Policy().archive.__class__(max_bytes=1 << 20))
    for source, why in [("slip.zip", "evil"), ("git.tar.gz", ".git"), ("fine.zip", "replace")]:
        (preview,) = preview_plan(root, plan_of({"op": "extract", "from": source, "to": "."}))
        assert preview.problem is not None
        assert why in preview.problem
    (preview,) = preview_plan(root, plan_of({"op": "extract", "from": "bomb.zip", "to": "out"}), small)
    assert preview.problem is not None
    before = snapshot(root)
    with pytest.raises(StepFailed):
        apply_plan(root, plan_of({"op": "extract", "from": "bomb.zip", "to": "out"}), policy=small)
    assert snapshot(root) == before


def test_policy_deny_allow_ops_and_max_batch(root: Path) -> None:
    (root / "tools").mkdir()
    (root / "tools" / "setup.EXE").write_bytes(b"MZ")
    deny = Policy(deny=("**/*.exe",))
    with pytest.raises(InvalidPlan) as caught:
        concrete(root, {"op": "move", "match": {"glob": "tools/*"}, "to": "bin"}, policy=deny)
    assert "'tools/setup.EXE' is denied by the policy rule '**/*.exe'" in str(caught.value)
    assert caught.value.problems[0].pointer == "/steps/0/match"
    with pytest.raises(InvalidPlan, match="denied"):  # a directory is checked for what is inside it
        concrete(root, {"op": "delete", "path": "tools"}, policy=deny)
    with pytest.raises(InvalidPlan, match="allows only these ops: move"):
        concrete(root, {"op": "delete", "path": "c.log"}, policy=Policy(allow_ops=("move",)))
    with pytest.raises(InvalidPlan, match="selects 3 entries, more than the policy's max_batch of 2"):
        concrete(root, {"op": "delete", "match": {"glob": "**/*.log", "type": "any"}}, policy=Policy(max_batch=2))
    # A match's own limit as large as max_batch keeps within it.
    kept = concrete(root, {"op": "delete", "match": {"glob": "**/*.log", "limit": 2}}, policy=Policy(max_batch=2))
    assert [step["path"] for step in kept] == ["c.log", "logs/2025/b.log"]
    with pytest.raises(InvalidPlan, match="max_batch"):
        apply_plan(root, plan_of(*[{"op": "delete", "path": p} for p in ("c.log", "logs/a.log")]),
                   policy=Policy(max_batch=1))  # fmt: skip
    assert (root / "c.log").exists()


def test_confirm_is_asked_even_under_auto(root: Path) -> None:
    plan = expand_plan(root, plan_of({"op": "rename", "paths": ["c.log"], "template": "d.log"}))
    files = Policy(confirm=("delete", "rename"))
    assert waits_for_approval("auto", plan, files)
    assert waits_for_approval("all", plan, files)
    assert not waits_for_approval("auto", plan, Policy())
    assert not waits_for_approval("never", plan, files)


def test_a_selection_never_reaches_outside_or_into_git(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.log").write_text("secret\n")
    (root / "out").symlink_to(outside)
    (root / "sub" / ".git").mkdir(parents=True)
    (root / "sub" / ".git" / "y.log").write_text("git\n")
    os.mkfifo(root / "fifo.log")
    os.link(root / "c.log", root / "hard.log")
    moved = concrete(root, {"op": "move", "match": {"glob": "**/*.log", "type": "any"}, "to": "all"})
    assert sorted(s["from"] for s in moved if s["op"] == "move") == [
        "c.log",
        "hard.log",
        "logs/2025/b.log",
        "logs/a.log",
    ]
    hostile = [
        {"op": "move", "paths": ["out/x.log"], "to": "here"},
        {"op": "tag", "paths": ["fifo.log"], "tags": ["t"]},
        {"op": "move", "match": {"glob": "*.log"}, "to": "sub/.git"},
        {"op": "classify", "match": {"glob": "*.log"}, "rules": [{"default": True, "to": "a/.GIT/x"}]},
    ]
    for bad in hostile:
        with pytest.raises((InvalidPlan, SandboxError, StepFailed)):
            apply_plan(root, plan_of(bad))
    assert (outside / "x.log").read_text() == "secret\n"
    assert not (root / "here").exists()


def test_tags_on_a_filesystem_without_attributes_fail_in_one_line(tmp_path: Path) -> None:
    with without_xattrs(tmp_path / "ramfs") as mount:
        (mount / "a.txt").write_text("a\n")
        (mount / "b.md").write_text("# b\n")
        before = snapshot(mount)
        with pytest.raises(StepFailed) as caught:
            apply_plan(mount, plan_of({"op": "tag", "paths": ["b.md", "a.txt"], "tags": ["x"]}))
        assert "extended attributes" in str(caught.value)
        assert "\n" not in str(caught.value)
        assert snapshot(mount) == before  # the Markdown file tagged first was rolled back


def test_deny_holds_through_a_symlinked_directory(root: Path) -> None:
    (root / "secrets").mkdir()
    (root / "secrets" / "key").write_text("K\n")
    (root / "alias").symlink_to("secrets")
    deny = Policy(deny=("secrets/**",))
    for step in (
        {"op": "delete", "path": "alias/key"},
        {"op": "copy", "from": "alias/key", "to": "stolen"},
        {"op": "move", "paths": ["alias/key"], "to": "out"},
        {"op": "archive", "paths": ["alias/key"], "to": "k.zip"},
    ):
        with pytest.raises(InvalidPlan, match=r"'secrets/key' is denied by the policy rule 'secrets/\*\*'"):
            apply_plan(root, plan_of(step), policy=deny)
    assert (root / "secrets" / "key").read_text() == "K\n"


def test_allow_ops_judges_the_ops_as_written(root: Path) -> None:
    move_only = Policy(allow_ops=("move",))
    apply_plan(root, plan_of({"op": "move", "match": {"glob": "*.log"}, "to": "new-dir"}), policy=move_only)
    renames = Policy(allow_ops=("rename",))
    apply_plan(root, plan_of({"op": "rename", "paths": ["new-dir/c.log"], "template": "d.log"}), policy=renames)
    with pytest.raises(InvalidPlan, match="allows only these ops: rename"):
        apply_plan(root, expand_plan(root, plan_of({"op": "archive", "paths": ["docs"], "to": "d.zip"})),
                   policy=renames)  # fmt: skip


def test_max_batch_counts_what_is_in_a_directory(root: Path) -> None:
    (root / "big").mkdir()
    for index in range(10):
        (root / "big" / f"f{index}").write_text("x")
    with pytest.raises(InvalidPlan, match="touches 11 files, more than the policy's max_batch of 5"):
        apply_plan(root, plan_of({"op": "delete", "path": "big"}), policy=Policy(max_batch=5))
    assert len(list((root / "big").iterdir())) == 10


def test_a_tree_too_big_to_check_for_denied_paths_is_refused(root: Path) -> None:
    from engine.plans.policy import _Beneath
    from engine.workspace.sandbox import Workspace

    with Workspace(root) as ws:
        walk = _Beneath(ws, "logs", bound=1)
        assert list(walk) == ["logs/2025"] or list(walk)
        assert walk.unfinished == "logs"
