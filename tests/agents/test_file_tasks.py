"""File-management tasks through the agent loop: a plan that selects files, the policy, the audit log."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from engine.plans.audit import read_audit
from engine.plans.journal import journals
from engine.plans.policy import Policy
from tests.agents.calc_task import role_requests
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
