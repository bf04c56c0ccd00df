"""An apply given what its preview read applies what the preview showed, or nothing at all."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.plans.apply import PreviewChanged, apply_plan
from engine.plans.dry_run import look, look_selected, preview_and_seen, seen_since
from engine.plans.expand import expand_plan
from engine.plans.model import parse_plan
from engine.plans.seen import DIGEST_BUDGET, found_from_record, found_record
from engine.plans.undo import undo_journal, undo_preview
from tests.helpers import tree

#: Overwrite a file, and delete the logs that say ERROR (a selection, expanded again by the apply).
PLAN = {"version": 1, "steps": [
    {"op": "write", "path": "a.txt", "content": "plan\n", "overwrite": True},
    {"op": "delete", "match": {"glob": "logs/*.log", "contains": "ERROR"}},
]}  # fmt: skip


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "logs").mkdir(parents=True)
    (root / "a.txt").write_text("original\n")
    (root / "logs" / "x.log").write_text("ERROR one\n")
    (root / "logs" / "y.log").write_text("fine\n")
    return root


def write(path: Path, text: str) -> Callable[[Path], None]:
    return lambda root: (root / path).write_text(text)


SELECTION_CHANGED = "the files the plan selects changed since the preview"


@pytest.mark.parametrize(
    ("concrete", "change", "refusal"),
    [
        (False, write(Path("a.txt"), "USER EDIT\n"), "'a.txt' was changed since the preview; nothing was applied"),
        (False, lambda root: (root / "a.txt").unlink() or (root / "a.txt").mkdir(), "'a.txt' was replaced by a dir"),
        # The selection made again under the lock is not the one shown...
        (False, write(Path("logs/x.log"), "fixed\n"), SELECTION_CHANGED),
        (False, write(Path("logs/y.log"), "ERROR too\n"), SELECTION_CHANGED),
        # ...and a plan expanded once, before its preview (plan apply), still has each selected file looked at.
        (True, write(Path("logs/x.log"), "fixed\n"), "'logs/x.log' was changed since the preview"),
        (True, lambda root: (root / "logs" / "x.log").unlink(), "'logs/x.log' was removed since the preview"),
    ],
    ids=["edited", "replaced", "no-longer-selected", "newly-selected", "expanded-edited", "expanded-removed"],
)  # fmt: skip
def test_what_changed_after_the_preview_stops_the_apply(
    ws: Path, concrete: bool, change: Callable[[Path], None], refusal: str
) -> None:
    (ws / "logs" / "z.log").write_text("ERROR two\n")
    plan = parse_plan(json.dumps(PLAN))
    if concrete:
        plan = expand_plan(ws, plan)
    _, seen = preview_and_seen(ws, plan)
    change(ws)
    before = tree(ws)
    with pytest.raises(PreviewChanged, match=re.escape(refusal)):
        apply_plan(ws, plan, seen=seen)
    assert tree(ws) == before


def test_what_was_touched_but_not_changed_is_applied(ws: Path) -> None:
    plan = parse_plan(json.dumps(PLAN))
    _, seen = preview_and_seen(ws, plan)
    os.utime(ws / "a.txt", (1, 1))  # the same content: what the diff showed is still so
    apply_plan(ws, plan, seen=seen)
    assert (ws / "a.txt").read_text() == "plan\n"
    assert sorted(os.listdir(ws / "logs")) == ["y.log"]


def test_a_chain_of_renames_expanded_again_is_the_plan_shown(ws: Path) -> None:
    for name in ("2.txt", "3.txt"):
        (ws / "logs" / name).write_text(name)
    # 2.txt becomes 1.txt while 3.txt becomes 2.txt: each is parked under a fresh temporary name first.
    steps: list[dict[str, Any]] = [{"op": "rename", "match": {"glob": "logs/*.txt"}, "template": "{n}.txt"}]
    plan = parse_plan(json.dumps({"version": 1, "steps": steps}))
    previews, seen = preview_and_seen(ws, plan)
    assert any(".rs-rename-" in preview.summary for preview in previews)
    apply_plan(ws, plan, seen=seen)
    assert (ws / "logs" / "1.txt").read_text() == "2.txt"
    assert (ws / "logs" / "2.txt").read_text() == "3.txt"


def chmod(path: str) -> Callable[[Path], None]:
    return lambda root: os.chmod(root / path, 0o600)


def tag(path: str) -> Callable[[Path], None]:
    return lambda root: os.setxattr(root / path, "user.xdg.tags", b"kept", follow_symlinks=False)


@pytest.mark.parametrize(
    "change", [chmod("logs/x.log"), tag("logs/x.log"), chmod("a.txt"), tag("a.txt")],
    ids=["chmod-deleted", "tag-deleted", "chmod-written", "tag-written"],
)  # fmt: skip
def test_a_chmod_or_a_tag_on_a_file_the_plan_changes_is_no_change(ws: Path, change: Callable[[Path], None]) -> None:
    plan = expand_plan(ws, parse_plan(json.dumps(PLAN)))
    _, seen = preview_and_seen(ws, plan)
    change(ws)  # moves the change time, as an edit does
    apply_plan(ws, plan, seen=seen)
    assert (ws / "a.txt").read_text() == "plan\n"
    assert sorted(os.listdir(ws / "logs")) == ["y.log"]


def edit_in_place(path: Path, old: bytes, new: bytes, at: int = 0) -> None:
    """Change ``old`` at ``at`` to ``new`` (as long), and put the file's times back as they were."""
    before = path.stat()
    with path.open("r+b") as file:
        file.seek(at)
        assert file.read(len(old)) == old
        file.seek(at)
        file.write(new)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)


@pytest.mark.parametrize("size", [0, 2 << 20], ids=["small", "large"])
def test_an_edit_that_puts_the_times_back_stops_the_apply(ws: Path, size: int) -> None:
    log = ws / "logs" / "x.log"
    with log.open("ab") as file:
        file.truncate(size or log.stat().st_size)  # a large one is known by its change time, not its content
    plan = expand_plan(ws, parse_plan(json.dumps(PLAN)))
    _, seen = preview_and_seen(ws, plan)
    edit_in_place(log, b"one", b"two", at=6)
    before = tree(ws)
    with pytest.raises(PreviewChanged, match=re.escape("'logs/x.log' was changed since the preview")):
        apply_plan(ws, plan, seen=seen)
    assert tree(ws) == before


def test_a_tag_set_on_a_file_the_plan_tags_stops_the_apply(ws: Path) -> None:
    plan = parse_plan(json.dumps({"version": 1, "steps": [{"op": "tag", "path": "logs/y.log", "tags": ["seen"]}]}))
    _, seen = preview_and_seen(ws, plan)
    tag("logs/y.log")(ws)
    with pytest.raises(PreviewChanged, match=re.escape("the tags of 'logs/y.log' changed since the preview")):
        apply_plan(ws, plan, seen=seen)
    assert os.getxattr(ws / "logs" / "y.log", "user.xdg.tags") == b"kept"


def test_a_file_edited_between_its_selection_and_the_preview_stops_the_apply(ws: Path) -> None:
    # plan apply expands first and previews the concrete plan: what the selection found is noted too.
    selected: list[tuple[str, os.stat_result]] = []
    plan = expand_plan(ws, parse_plan(json.dumps(PLAN)), saw=lambda path, info: selected.append((path, info)))
    assert [path for path, _ in selected] == ["logs/x.log"]
    write(Path("logs/x.log"), "ERROR, and more\n")(ws)  # while a semantic match would still be ranking
    _, seen = preview_and_seen(ws, plan, selected=selected)
    with pytest.raises(PreviewChanged, match=re.escape("'logs/x.log' was changed since the preview")):
        apply_plan(ws, plan, seen=seen)
    assert (ws / "logs" / "x.log").read_text() == "ERROR, and more\n"


@pytest.mark.parametrize(
    ("change", "refusal"),
    [(chmod("logs/x.log"), None), (tag("logs/x.log"), None), (write(Path("logs/x.log"), "ERROR, and more\n"),
     "'logs/x.log' was changed since the preview; nothing was applied")],
    ids=["chmod", "tag", "edited"],
)  # fmt: skip
def test_a_selection_kept_with_its_marks_tells_an_edit_from_a_chmod_until_the_preview(
    ws: Path, change: Callable[[Path], None], refusal: str | None
) -> None:
    """An agent keeps what a selection found in its checkpoint until the review previews the plan."""
    selected: list[tuple[str, os.stat_result]] = []
    plan = expand_plan(ws, parse_plan(json.dumps(PLAN)), saw=lambda path, info: selected.append((path, info)))
    kept = json.loads(json.dumps([found_record(entry) for entry in look_selected(ws, selected)]))
    assert [record[0] for record in kept] == ["logs/x.log"]
    assert kept[0][-1].startswith("sha:")
    change(ws)
    _, seen = preview_and_seen(ws, plan, selected=[entry for record in kept if (entry := found_from_record(record))])
    if refusal is None:
        apply_plan(ws, plan, seen=seen)
        assert not (ws / "logs" / "x.log").exists()
        return
    with pytest.raises(PreviewChanged, match=re.escape(refusal)):
        apply_plan(ws, plan, seen=seen)
    assert (ws / "logs" / "x.log").exists()


def test_a_bulk_preview_reads_a_bounded_amount_and_its_check_agrees_with_it(tmp_path: Path) -> None:
    """Past its budget a preview knows files by their change time, and the check asks the same of
    each file as the preview did: an unchanged workspace is applied, an edit that puts the times
    back on a file read early is refused, and no more than the budget is read."""
    (tmp_path / "bulk").mkdir()
    count = DIGEST_BUDGET // (1 << 20) + 16
    for i in range(count):  # sparse: reading them costs no disk
        with open(tmp_path / "bulk" / f"{i:03}.bin", "wb") as file:
            file.truncate(1 << 20)
    plan = expand_plan(tmp_path, parse_plan(json.dumps({"version": 1, "goal": "move them", "steps": [
        {"op": "move", "match": {"glob": "bulk/*.bin"}, "to": "moved"}]})))  # fmt: skip
    read_before = read_chars()
    _, seen = preview_and_seen(tmp_path, plan)
    assert read_chars() - read_before < DIGEST_BUDGET + (4 << 20)
    marks = [value for value in seen["paths"].values() if "edit=" in value]
    assert sum("edit=sha:" in value for value in marks) == DIGEST_BUDGET // (1 << 20)
    assert sum("edit=ctime:" in value for value in marks) == 16
    edited = next(path for path, value in seen["paths"].items() if "edit=sha:" in value)
    edit_in_place(tmp_path / edited, b"\0", b"!")
    with pytest.raises(PreviewChanged, match="was changed since the preview"):
        apply_plan(tmp_path, plan, seen=seen)
    edit_in_place(tmp_path / edited, b"!", b"\0")
    _, seen = preview_and_seen(tmp_path, plan)
    apply_plan(tmp_path, plan, seen=seen)
    assert len(os.listdir(tmp_path / "moved")) == count


def read_chars() -> int:
    """Bytes this thread has read so far, as the kernel counts them."""
    with open("/proc/thread-self/io") as counts:
        return next(int(line.split()[1]) for line in counts if line.startswith("rchar:"))


def test_an_entry_changed_after_a_question_named_it_stops_the_plan_of_the_answer(ws: Path) -> None:
    found = look(ws, ["a.txt", "logs/y.log", "missing.txt"])
    assert [entry.path for entry in found] == ["a.txt", "logs/y.log"]
    # Changed before the answer, with its size and modification time put back.
    times = (ws / "a.txt").stat()
    (ws / "a.txt").write_text("ORIGINAL\n")
    os.utime(ws / "a.txt", ns=(times.st_atime_ns, times.st_mtime_ns))
    (ws / "logs" / "y.log").write_text("changed, but no step works on it\n")
    plan = parse_plan(json.dumps({"version": 1, "steps": [{"op": "delete", "path": "a.txt"}]}))
    seen = seen_since(ws, plan, None, found)
    before = tree(ws)
    with pytest.raises(PreviewChanged, match=re.escape("'a.txt' was changed since the question was asked; nothing")):
        apply_plan(ws, plan, seen=seen, since="question")
    assert tree(ws) == before
    # An entry inside one the plan works on counts; one the plan leaves alone does not.
    plan = parse_plan(json.dumps({"version": 1, "steps": [{"op": "delete", "path": "logs"}]}))
    with pytest.raises(PreviewChanged, match=re.escape("'logs/y.log' was changed since the question was asked")):
        apply_plan(ws, plan, seen=seen_since(ws, plan, None, found), since="question")
    plan = parse_plan(json.dumps({"version": 1, "steps": [{"op": "delete", "path": "logs/x.log"}]}))
    apply_plan(ws, plan, seen=seen_since(ws, plan, None, found))
    assert not (ws / "logs" / "x.log").exists()


def test_an_entry_replaced_while_the_undo_question_is_open_stops_the_undo_of_what_it_showed(ws: Path) -> None:
    plan = parse_plan(json.dumps({"version": 1, "steps": [{"op": "move", "from": "a.txt", "to": "b.txt"}]}))
    journal_id = apply_plan(ws, plan).journal_id
    preview = undo_preview(ws, take_found=True)
    (ws / "c.txt").write_text("another file\n")
    os.replace(ws / "c.txt", ws / "b.txt")
    before = tree(ws)
    refusal = "'b.txt' was changed since the question was asked; nothing was applied"
    with pytest.raises(PreviewChanged, match=re.escape(refusal)):
        undo_journal(ws, journal_id, found=preview.found)
    assert tree(ws) == before
    # Asked nothing before, undo moves back what is there, as it always has.
    undo_journal(ws, journal_id)
    assert (ws / "a.txt").read_text() == "another file\n"


@pytest.mark.parametrize("change", [chmod("a.txt"), tag("a.txt")], ids=["chmod", "tag"])
def test_a_chmod_or_a_tag_while_a_question_is_open_is_no_change(ws: Path, change: Callable[[Path], None]) -> None:
    found = look(ws, ["a.txt"])
    change(ws)  # moves the change time of the file named, after the question took its mark
    plan = parse_plan(json.dumps({"version": 1, "steps": [{"op": "delete", "path": "a.txt"}]}))
    apply_plan(ws, plan, seen=seen_since(ws, plan, None, found))
    assert not (ws / "a.txt").exists()


def test_a_question_reads_a_bounded_amount_and_knows_the_rest_by_their_change_time(tmp_path: Path) -> None:
    count = DIGEST_BUDGET // (1 << 20) + 2
    for i in range(count):  # sparse: reading them costs no disk
        with open(tmp_path / f"{i:03}.bin", "wb") as file:
            file.truncate(1 << 20)
    found = look(tmp_path, sorted(os.listdir(tmp_path)))
    assert [entry.mark.partition(":")[0] for entry in found if entry.mark] == ["sha"] * (count - 2) + ["ctime"] * 2
    chmod("000.bin")(tmp_path)  # known by its content: no change
    plan = parse_plan(json.dumps({"version": 1, "steps": [{"op": "delete", "path": "000.bin"}]}))
    apply_plan(tmp_path, plan, seen=seen_since(tmp_path, plan, None, found))
    chmod(f"{count - 1:03}.bin")(tmp_path)  # known by its change time: a change, as after a preview
    plan = parse_plan(json.dumps({"version": 1, "steps": [{"op": "delete", "path": f"{count - 1:03}.bin"}]}))
    with pytest.raises(PreviewChanged, match="was changed since the preview"):
        apply_plan(tmp_path, plan, seen=seen_since(tmp_path, plan, None, found))


def replace_directory(root: Path) -> None:
    (root / "logs").rename(root / "logs.old")
    (root / "logs").mkdir()
    (root / "logs" / "new.txt").write_text("never shown\n")


REPLACED = "'logs' was replaced by another directory since the preview; nothing was applied"


def test_a_directory_replaced_after_its_preview_stops_the_apply(ws: Path) -> None:
    plan = parse_plan(json.dumps({"version": 1, "steps": [{"op": "delete", "path": "logs"}]}))
    _, seen = preview_and_seen(ws, plan)
    replace_directory(ws)
    before = tree(ws)
    with pytest.raises(PreviewChanged, match=re.escape(REPLACED)):
        apply_plan(ws, plan, seen=seen)
    assert tree(ws) == before


def test_a_directory_replaced_while_a_question_names_it_stops_the_plan_of_the_answer(ws: Path) -> None:
    found = look(ws, ["logs"])
    replace_directory(ws)
    plan = parse_plan(json.dumps({"version": 1, "steps": [{"op": "delete", "path": "logs"}]}))
    seen = seen_since(ws, plan, None, found)
    before = tree(ws)
    with pytest.raises(PreviewChanged, match=re.escape(REPLACED.replace("the preview", "the question was asked"))):
        apply_plan(ws, plan, seen=seen, since="question")
    assert tree(ws) == before


def test_a_directory_replaced_while_the_undo_question_is_open_stops_the_undo(ws: Path) -> None:
    plan = parse_plan(json.dumps({"version": 1, "steps": [{"op": "move", "from": "logs", "to": "old"}]}))
    journal_id = apply_plan(ws, plan).journal_id
    preview = undo_preview(ws, take_found=True)
    (ws / "old").rename(ws / "elsewhere")
    (ws / "old").mkdir()
    before = tree(ws)
    refusal = "'old' was replaced by another directory since the question was asked"
    with pytest.raises(PreviewChanged, match=re.escape(refusal)):
        undo_journal(ws, journal_id, found=preview.found)
    assert tree(ws) == before


def test_a_name_that_is_not_utf8_is_told_by_its_bytes(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    name = os.fsdecode(b"bill\xff.txt")
    (root / name).write_bytes(b"shown\n")
    plan = parse_plan(json.dumps({"version": 1, "steps": [{"op": "delete", "path": name}]}))
    seen = preview_and_seen(root, plan, None)[1]
    (root / name).write_text("edited\n")
    with pytest.raises(PreviewChanged) as caught:
        apply_plan(root, plan, seen=seen)
    assert str(caught.value) == "'bill\\xff.txt' was changed since the preview; nothing was applied"
