"""File-management tasks through the agent loop: a plan that selects files, the policy, the audit log."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.plans.audit import read_audit
from engine.plans.journal import journals
from engine.plans.policy import Policy
from tests.agents.calc_task import of, role_requests
from tests.agents.test_graph import GraphRun
from tests.scripted_llm import Reply, ScriptedLLM

MOVE_LOGS = {"version": 1, "goal": "archive the logs",
             "steps": [{"op": "move", "match": {"glob": "**/*.log"}, "to": "archive"}]}  # fmt: skip


def make_logs(root: Path) -> None:
    (root / "logs").mkdir()
    for name in ("a.log", "b.log"):
        (root / "logs" / name).write_text(name)
    (root / "c.log").write_text("c")


def test_a_match_plan_is_shown_and_journaled_one_step_per_file(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path
) -> None:
    make_logs(root)
    scripted_llm.enqueue(Reply(MOVE_LOGS))
    run = graph_run(approval="ask")
    approval = run.start("move every log file into archive")
    assert approval is not None
    assert [step["op"] for step in approval["plan"]["steps"]] == ["mkdir", "move", "move", "move"]
    moves = ["move c.log -> archive/c.log", "move logs/a.log -> archive/a.log", "move logs/b.log -> archive/b.log"]
    assert [p["summary"] for p in approval["preview"]][1:] == moves
    assert run.resume({"action": "approve"}) is None
    assert run.final["ok"] is True
    assert sorted(p.name for p in (root / "archive").iterdir()) == ["a.log", "b.log", "c.log"]
    [journal] = journals(root)
    assert len(journal.records()) == 4
    [record], warnings = read_audit(root)
    assert (record.action, record.origin, record.thread, record.plan_id) == ("applied", "agent", "t1", journal.id)
    assert warnings == []


def test_an_op_the_policy_confirms_waits_even_under_auto(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path
) -> None:
    make_logs(root)
    scripted_llm.enqueue(Reply({"version": 1, "steps": [{"op": "delete", "match": {"glob": "**/*.log"}}]}))
    run = graph_run(approval="auto", policy=Policy(confirm=("delete",)))
    approval = run.start("delete the logs")
    assert approval is not None
    assert (root / "c.log").exists()
    assert run.resume({"action": "reject", "reason": "keep them"}) is None
    assert (root / "c.log").exists()
    [record], _ = read_audit(root)
    assert (record.action, record.reason) == ("rejected", "keep them")


def test_a_denied_path_goes_back_to_the_model_with_the_rule(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path
) -> None:
    make_logs(root)
    (root / "tool.exe").write_bytes(b"MZ")
    everything = {"version": 1, "steps": [{"op": "move", "match": {"glob": "*", "exclude": ["*.py"]}, "to": "old"}]}
    scripted_llm.enqueue(Reply(everything), Reply(MOVE_LOGS))
    run = graph_run(approval="all", policy=Policy(deny=("**/*.exe",)))
    assert run.start("put the loose files into old/") is None
    repair = role_requests(scripted_llm, "builder")[1]["messages"][-1]["content"]
    assert "'tool.exe' is denied by the policy rule '**/*.exe'" in repair
    assert run.final["ok"] is True
    assert (root / "tool.exe").exists()
    assert (root / "archive" / "c.log").exists()


@pytest.mark.parametrize("approval", ["ask", "all"])
def test_a_file_edited_between_the_selection_and_its_preview_stops_the_apply(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path, approval: str
) -> None:
    (root / "bill.txt").write_text("invoice 42\n")
    (root / "letter.txt").write_text("dear all\n")
    plan = {"version": 1, "steps": [{"op": "move", "match": {"glob": "*.txt", "contains": "invoice"}, "to": "bills"}]}
    scripted_llm.enqueue(Reply(plan))
    run = graph_run(approval=approval)

    def after(node: str) -> None:
        if node == "builder":  # selected, not yet previewed: it no longer matches, times put back
            times = (root / "bill.txt").stat()
            (root / "bill.txt").write_text("paid, 42\n")
            os.utime(root / "bill.txt", ns=(times.st_atime_ns, times.st_mtime_ns))

    run.after_node = after
    question = run.start("move the invoices into bills")
    if approval == "ask":  # (with all, nothing is asked: the apply still checks what the selection found)
        assert question is not None
        assert [p["summary"] for p in question["preview"]][-1] == "move bill.txt -> bills/bill.txt"
        assert run.resume({"action": "approve", "seen": question["seen"]}) is None
    [reviewed] = of(run.events, "reviewed")
    assert reviewed["status"] == "failed"
    assert reviewed["summary"] == "'bill.txt' was changed since the preview; nothing was applied"
    assert (root / "bill.txt").read_text() == "paid, 42\n"
    assert not (root / "bills").exists()
    assert journals(root) == []


def chmod(path: Path) -> None:
    os.chmod(path, 0o600)


def tag(path: Path) -> None:
    os.setxattr(path, "user.xdg.tags", b"paid", follow_symlinks=False)


def edit(path: Path) -> None:
    path.write_text("invoice 43\n")


def replace(path: Path) -> None:
    """Another file of the same content put in its place (another inode)."""
    (path.parent / "new").write_text(path.read_text())
    os.replace(path.parent / "new", path)


def delete(path: Path) -> None:
    path.unlink()


def between_selection_and_review(run: GraphRun, change: Callable[[Path], None], path: Path) -> None:
    """Make ``change`` to ``path`` once the builder's selection is checkpointed, before its review reads it."""

    def after(node: str) -> None:
        if node == "builder":
            change(path)

    run.after_node = after


INVOICES = {"version": 1, "steps": [{"op": "move", "match": {"glob": "*.txt", "contains": "invoice"}, "to": "bills"}]}


@pytest.mark.parametrize("change", [chmod, tag])
@pytest.mark.parametrize("approval", ["ask", "all"])
def test_a_chmod_or_a_tag_between_the_selection_and_the_review_is_no_change(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path, approval: str,
    change: Callable[[Path], None],
) -> None:  # fmt: skip
    (root / "bill.txt").write_text("invoice 42\n")
    scripted_llm.enqueue(Reply(INVOICES))
    run = graph_run(approval=approval)
    between_selection_and_review(run, change, root / "bill.txt")
    question = run.start("move the invoices into bills")
    if approval == "ask":
        assert question is not None
        assert run.resume({"action": "approve", "seen": question["seen"]}) is None
    [reviewed] = of(run.events, "reviewed")
    assert reviewed["status"] == "applied", reviewed["summary"]
    assert (root / "bills" / "bill.txt").read_text() == "invoice 42\n"
    assert not (root / "bill.txt").exists()


@pytest.mark.parametrize(
    ("change", "refusal"),
    [(edit, "'bill.txt' was changed"), (replace, "'bill.txt' was changed"), (delete, "'bill.txt' was removed")],
)
@pytest.mark.parametrize("approval", ["ask", "all"])
def test_an_edit_a_replacement_or_a_deletion_between_the_selection_and_the_review_stops_the_apply(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path, approval: str,
    change: Callable[[Path], None], refusal: str,
) -> None:  # fmt: skip
    (root / "bill.txt").write_text("invoice 42\n")
    scripted_llm.enqueue(Reply(INVOICES))
    run = graph_run(approval=approval)
    between_selection_and_review(run, change, root / "bill.txt")
    question = run.start("move the invoices into bills")
    if approval == "ask":
        assert question is not None
        assert run.resume({"action": "approve", "seen": question["seen"]}) is None
    [reviewed] = of(run.events, "reviewed")
    assert reviewed["status"] == "failed"
    assert reviewed["summary"] == f"{refusal} since the preview; nothing was applied"
    assert not (root / "bills").exists()
    assert journals(root) == []


@pytest.mark.parametrize("approval", ["ask", "all"])
def test_a_directory_replaced_between_the_selection_and_the_review_is_not_moved(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path, approval: str
) -> None:
    (root / "docs").mkdir()
    (root / "docs" / "a.md").write_text("a\n")
    scripted_llm.enqueue(Reply({"version": 1, "steps": [{"op": "move", "paths": ["docs"], "to": "old"}]}))
    run = graph_run(approval=approval)

    def swap(docs: Path) -> None:
        os.chmod(docs, 0o700)  # (no change by itself)
        docs.rename(root / "docs.old")
        docs.mkdir()
        (docs / "new.md").write_text("never shown\n")

    between_selection_and_review(run, swap, root / "docs")
    question = run.start("move docs into old")
    if approval == "ask":
        assert question is not None
        assert run.resume({"action": "approve", "seen": question["seen"]}) is None
    [reviewed] = of(run.events, "reviewed")
    assert reviewed["summary"] == "'docs' was replaced by another directory since the preview; nothing was applied"
    assert (root / "docs" / "new.md").exists()
    assert not (root / "old").exists()
