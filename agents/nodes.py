"""The graph's nodes: route, the four roles, review (approval and apply) and finish.

Nodes report through LangGraph's stream writer, as JSON-ready event dicts: the one event stream
that the shell, ``routeshell run --json`` and the tests all read. Side effects (applying a plan,
running tests) happen only in ``review``, after its ``interrupt()``: a node re-runs from the top
when resumed, and an apply is skipped when the journal shows that plan was already applied.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import time
from contextlib import suppress
from pathlib import Path
from typing import Any, cast

from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime
from langgraph.types import interrupt

from agents.errors import BudgetExceeded, RunStopped
from agents.roles import SYSTEM_PROMPTS, RoleFailed, ask_role, reply_problems, workspace_context
from agents.state import AgentContext, AgentState, PendingPlan
from engine.errors import RouteshellError
from engine.events import (
    ApprovalAnswer,
    ApprovalRequest,
    Event,
    FinalEvent,
    PreviewEvent,
    ReviewedEvent,
    RunOutcome,
    Seen,
    Verdict,
    emit,
)
from engine.kinds import Role
from engine.llm.client import Usage
from engine.llm.wire import ChatMessage
from engine.names import display_line, display_name
from engine.planner.named import (
    missing_file,
    outside_path,
    unseen_path,
    unwritable_names,
    unwritable_text,
    walk,
    workspace_paths,
)
from engine.planner.narrow import schema_for
from engine.planner.parts import existing_folders, joined_plan, made_entries, request_parts
from engine.planner.prompt import (
    ViewEntry,
    as_percent,
    entries_from_root,
    joint_logprob,
    planner_messages,
    seen_request,
    unsure,
)
from engine.planner.said import not_files
from engine.plans.apply import PreviewChanged, StepFailed, apply_plan, recover
from engine.plans.audit import audit
from engine.plans.dry_run import look_selected, preview_and_seen
from engine.plans.journal import applied_from
from engine.plans.model import InvalidPlan, normalise
from engine.plans.policy import waits_for_approval
from engine.plans.runner import RunResult, bubblewrap, run_command
from engine.plans.seen import found_from_record, found_record
from engine.plans.undo import undo_journal
from engine.router.decision import RouterDecision
from engine.workspace.sandbox import SandboxError
from engine.workspace.state import StateError

TAIL_CHARS = 2000


def _emit(event: Event) -> None:
    emit(get_stream_writer(), event)


def _warn(ctx: AgentContext, message: str) -> None:
    """A ``warning`` event, once per invocation (a reply's plan is expanded to check it, then to keep it)."""
    if message not in ctx.warned:
        ctx.warned.add(message)
        _emit({"type": "warning", "message": message})


def route(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Ask the router for a decision, forced to ``--topology`` when one was given."""
    ctx = runtime.context
    # A crashed apply is rolled back first: the roles read, and the previews diff, what applies will see.
    with suppress(StateError):  # when it cannot be done now, the first apply says why
        recover(ctx.root)
    decision: RouterDecision = ctx.router.route(state["task"])
    if ctx.topology != "auto":
        decision = decision.with_topology(ctx.topology)
    declined = None
    if ctx.files_only:
        decision, declined = files_only_decision(decision)
    _emit({"type": "route", "thread": ctx.thread_id, "router": decision.router, "note": ctx.router_note,
           "topology": decision.topology, "roles": list(decision.roles), "max_rounds": decision.max_rounds,
           "reason": decision.reason})  # fmt: skip
    update: dict[str, Any] = {"decision": decision.as_json(), "round": 1, "plan_count": 0, "reviewed": []}
    if declined is not None:
        update["declined"] = declined
    return update


#: The profiles whose models write code, named when a files-only model declines a task.
CODE_PROFILES = "use a profile whose model writes code: --profile openai, ollama or vllm"


#: How a decline of a plan the local planner is unsure of starts (``run`` then says how to see it anyway).
UNSURE = "the local planner is unsure of its plan"


def unsure_plan(
    logprob: float | None, least: float, source: str = "the profile's planner.min_probability"
) -> str | None:
    """Why a plan the local planner gives the log probability ``logprob`` is not offered: it gives it
    less than ``least`` (from ``source``: the profile's ``planner.min_probability``, or ``run
    --min-probability``); None when it may be offered (or when there is no probability to judge by)."""
    if not unsure(logprob, least) or logprob is None:
        return None
    return (
        f"{UNSURE} (it gives it a probability of {as_percent(math.exp(logprob))}, under "
        f"{source} of {least:.0%}): name the files or folders and ask again, "
        "or use a bigger model: --profile openai, ollama or vllm"
    )


def files_only_decision(decision: RouterDecision) -> tuple[RouterDecision, str | None]:
    """What a files-only builder can do with ``decision``: the builder alone (it writes multi-step
    plans itself, so a planner first adds nothing), or nothing, with the reason, when the decision
    needs tests or a refactor: that is code, which the local model does not write."""
    if decision.topology == "loop" or {"tester", "refactor"} & set(decision.roles):
        why = display_line(decision.reason)[:200]
        return (
            decision,
            f"this task needs code and tests ({why}), which the local model does not write; {CODE_PROFILES}",
        )
    if decision.roles != ("builder",):
        reason = f"{decision.reason[:300]}; the local planner writes multi-step file plans itself: the builder alone"
        return RouterDecision("single", ("builder",), decision.max_rounds, reason[:500], decision.router), None
    return decision, None


def _ask(
    state: AgentState, ctx: AgentContext, role: Role, request: str, found: list[list[str | int]] | None = None
) -> dict[str, Any]:
    """Run one role: emit its start, deltas, repairs, usage and end; return its validated reply."""
    return _asked(state, ctx, role, request, found=found)[0]


def _asked(
    state: AgentState, ctx: AgentContext, role: Role, request: str, *, files_planner: bool = False,
    found: list[list[str | int]] | None = None,
) -> tuple[dict[str, Any], float | None]:  # fmt: skip
    """Run one role: emit its start, deltas, repairs, usage and end; return its validated reply and
    the log probability routeshell's own planner gives it (None for any other role, or when the
    server sent none): the sum over the parts of a request planned part by part.

    ``files_planner``: the role is routeshell's own planner model, asked with its compact workspace
    view (:func:`engine.planner.prompt.planner_messages`) and answering a file plan, perhaps empty,
    decoded under the reply schema narrowed to this task and workspace (:mod:`engine.planner.narrow`).
    ``found`` gets what the reply's selections found, each file before they read it, and its
    content mark (:func:`engine.plans.seen.found_record`): its preview compares with that, not
    with the workspace as the preview finds it, so an edit made meanwhile is not approved unseen."""
    started = time.monotonic()
    _emit({"type": "role_start", "role": role, "round": state.get("round", 1)})

    def check_stop() -> None:
        if ctx.stop.is_set():
            raise RunStopped(f"stopped while the {role} was answering; resume continues from there")

    def on_delta(text: str) -> None:
        # A stop cuts a streaming reply off at its next piece rather than waiting for all of it.
        check_stop()
        _emit({"type": "delta", "role": role, "text": text})

    def on_usage(usage: Usage) -> None:
        ctx.ledger.add(ctx.thread_id, role, usage)
        spent = ctx.ledger.total(ctx.thread_id).total_tokens
        role_total = ctx.ledger.per_role(ctx.thread_id)[role].total_tokens
        _emit({"type": "usage", "role": role, "prompt_tokens": usage.prompt_tokens,
               "completion_tokens": usage.completion_tokens, "total_tokens": usage.total_tokens,
               "estimated": usage.estimated, "role_total": role_total, "run_total": spent})  # fmt: skip
        if ctx.budget is not None and spent > ctx.budget:
            raise BudgetExceeded(
                f"the run used {spent} tokens, over the --max-cost-tokens budget of {ctx.budget}; "
                f"resume with a larger budget to go on"
            )

    check_stop()
    if ctx.budget is not None and (spent := ctx.ledger.total(ctx.thread_id).total_tokens) > ctx.budget:
        raise BudgetExceeded(f"the run already used {spent} tokens, over the --max-cost-tokens budget of {ctx.budget}")
    # The local planner plans a request that asks for several things in turn one part at a time,
    # each under a schema narrowed to that part (engine.planner.parts) and to the workspace as the
    # parts before it leave it; every other role, and a request of one part, is one question.
    today = dt.datetime.now(dt.UTC).date()
    if files_planner:
        entries = entries_from_root(ctx.root)
        parts = request_parts(request)
    else:
        context = workspace_context(ctx.root, state["task"], request, ctx.context)
        entries, parts = [], [request]
    replies = []
    made: list[ViewEntry] = []  # folders the parts planned so far make
    chosen: list[tuple[str, os.stat_result]] = []  # what the selections of the reply at hand chose
    for number, part in enumerate(parts):
        if number:
            on_delta("\n")
        messages: list[ChatMessage]
        schema: dict[str, Any] | None = None
        if files_planner:
            messages = planner_messages(entries, part, today)
            schema, problem = schema_for(part, [*entries, *made], today)
            if problem is not None:
                _emit({"type": "warning", "message": f"the planner answers under the whole plan schema ({problem})"})
        else:
            messages = [{"role": "system", "content": SYSTEM_PROMPTS[role]},
                        {"role": "user", "content": request + "\n\n" + context}]  # fmt: skip
        reply = ask_role(
            ctx.clients[role],
            role,
            messages,
            ctx.root,
            stream=ctx.stream,
            policy=ctx.policy,
            on_delta=on_delta,
            on_repair=lambda attempt, problems: _emit(
                {"type": "repair", "role": role, "attempt": attempt, "problems": problems[:10]}
            ),
            on_usage=on_usage,
            on_warning=lambda message: _warn(ctx, message),
            on_saw=None if found is None else lambda path, info: chosen.append((path, info)),
            planner_schema=schema,
            planner_folders=existing_folders([*entries, *made]) if files_planner else None,
        )
        replies.append(reply)
        if found is not None and chosen:
            # Each file's mark is taken now, while it is as the selection found it: a chmod or a tag
            # before the review is then no change, an edit is one (a part's file is kept as first chosen).
            kept = {record[0] for record in found}
            marked = look_selected(ctx.root, chosen)
            found += [found_record(entry) for entry in marked if entry.path not in kept]
            chosen.clear()
        if files_planner:
            made += made_entries(reply.document, [*entries, *made], today)
    _emit({"type": "role_end", "role": role, "attempts": sum(reply.attempts for reply in replies),
           "seconds": round(time.monotonic() - started, 3),
           "tokens": sum(reply.usage.total_tokens for reply in replies)})  # fmt: skip
    logprobs = [reply.logprob for reply in replies]
    logprob = joint_logprob(logprobs)
    if len(replies) == 1:
        return replies[0].document, logprob
    return joined_plan([reply.document for reply in replies]), logprob


def _task_text(state: AgentState) -> str:
    text = f"Task: {state['task']}"
    if state.get("steps"):
        text += "\n\nThe planner's steps:\n" + "\n".join(f"{n}. {s}" for n, s in enumerate(state["steps"], 1))
    return text


def _pending(
    state: AgentState, role: Role, plan: dict[str, Any], found: list[list[str | int]] | None = None
) -> dict[str, Any]:
    number = state.get("plan_count", 0) + 1
    pending: PendingPlan = {"id": f"p{number}", "role": role, "plan": plan, "round": state.get("round", 1),
                            "found": found or []}  # fmt: skip
    _emit({"type": "plan", "id": pending["id"], "role": role, "plan": plan})
    return {"pending": pending, "plan_count": number}


def planner(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Ask the planner for the builder's step list."""
    document = _ask(state, runtime.context, "planner", _task_text(state))
    return {"steps": document["steps"]}


def _nothing_selected(failed: RoleFailed, root: Path) -> str | None:
    """What to do when the local planner's last answer (of three) selected no file (an empty
    workspace, or files said by words none of their names has); None for any other failure.
    (:class:`RoleFailed` says only the last answer's first problem.)"""
    if "selects nothing" not in str(failed):
        return None
    return (f"no file in the workspace ({display_name(str(root))[:200]}) matches what it chose: name the files or "
            "the folder they are in, or run in the workspace that holds them (--workspace DIR)")  # fmt: skip


def builder(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Ask the builder for a plan; in later rounds it also sees why the tests failed."""
    if runtime.context.files_only:
        # A path the plan may not name is declined before the model is asked: a planner decoded under
        # the workspace's names would pick some other file ("delete ../o/secret.txt": readme.txt).
        root = runtime.context.root
        # (Nor is one it names that is not there: it would pick others, "delete docs/missing.txt" the
        # rest of docs.)
        # (What the planner reads of the request is what these look at: a request of a megabyte is not
        # read whole, here either.)
        said = seen_request(state["task"])
        walked = walk(root)
        unplannable = outside_path(said, str(root)) or unseen_path(said, root, walked)
        paths = workspace_paths(walked) if unplannable is None else None
        if paths is not None:
            unplannable = missing_file(said, paths)
        unplannable = unplannable or unwritable_text(said)
        if unplannable is not None:
            return {"declined": f"the request cannot be planned: {display_line(unplannable)[:400]}"}
        found: list[list[str | int]] = []
        try:
            plan, logprob = _asked(state, runtime.context, "builder", state["task"], files_planner=True, found=found)
        except RoleFailed as failed:
            # Names it cannot write are never offered: among only such names it invents others.
            # (And what it chose last matched no file: the files may be elsewhere.)
            if (hint := unwritable_names(paths or []) or _nothing_selected(failed, root)) is None:
                raise
            return {"declined": f"the local planner gave no valid plan ({display_line(str(failed))[:200]}); {hint}"}
        if not plan["steps"]:
            if not not_files(state["task"]):
                # (Its goal then is no reason: on a long or odd request, words picked from anywhere.)
                return {"declined": "the local planner found no file operation in it: name the files and what to do "
                                    "with them, or use a larger model: --profile openai, ollama or vllm"}  # fmt: skip
            why = display_line(str(plan.get("goal") or "not a file operation"))[:300]
            return {"declined": f"the local model does file management only ({why}); {CODE_PROFILES}"}
        ctx = runtime.context
        if (unsure := unsure_plan(logprob, ctx.min_plan_probability, ctx.min_plan_probability_from)) is not None:
            return {"declined": unsure}
        return _pending(state, "builder", plan, found)
    request = _task_text(state)
    if state.get("feedback"):
        request += f"\n\nRound {state['round']}. The tests failed after your last plan:\n{state['feedback']}"
    found = []
    plan = _ask(state, runtime.context, "builder", request, found)
    return _pending(state, "builder", plan, found)


def tester(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Ask the tester for a plan that writes and runs tests; its run steps never roll it back."""
    found: list[list[str | int]] = []
    plan = _ask(state, runtime.context, "tester", _task_text(state) + _applied_text(state), found)
    plan = _tests_as_results(plan)
    update = _pending(state, "tester", plan, found)
    update["test_runs"] = [step for step in plan["steps"] if step["op"] == "run"]
    return update


def _tests_as_results(plan: dict[str, Any]) -> dict[str, Any]:
    """A tester's plan whose run steps never roll it back."""
    # A failing test is a result, not a failed step: keep the test files and read the exit code.
    return {**plan, "steps": [{**step, "check": False} if step["op"] == "run" else step for step in plan["steps"]]}


def refactor(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Ask for a behaviour-preserving plan over what the builder did."""
    found: list[list[str | int]] = []
    plan = _ask(state, runtime.context, "refactor", _task_text(state) + _applied_text(state), found)
    return _pending(state, "refactor", plan, found)


def _applied_text(state: AgentState) -> str:
    done = [r for r in state.get("reviewed", []) if r["role"] == "builder"]
    if not done:
        return ""
    last = done[-1]
    return f"\n\nThe builder's plan ({last['status']}): {last['summary']}"


def _answer(ctx: AgentContext, pending: PendingPlan, previews: list[PreviewEvent], seen: Seen) -> ApprovalAnswer:
    """Return the approval answer for a plan: asked through ``interrupt()`` when the mode says so.

    The question carries what its preview read (``seen``); the session hands it back with an
    approval (:meth:`agents.session.AgentSession.resume`), and the apply checks it.
    """
    if pending["id"] in ctx.answers:
        # The user answered this very plan on resume: the mode the run resumes with must not override it.
        return ctx.answers[pending["id"]]
    has_run = any(step["op"] == "run" for step in pending["plan"]["steps"])
    if ctx.approval == "never":
        return {"action": "show"}
    if not waits_for_approval(ctx.approval, pending["plan"], ctx.policy):
        # Nothing is asked; still, what is applied is what its selections found and the preview read.
        return {"action": "approve", "seen": seen}
    payload: ApprovalRequest = {"id": pending["id"], "role": pending["role"], "plan": pending["plan"],
                                "preview": previews, "runs": has_run, "thread": ctx.thread_id,
                                "seen": seen}  # fmt: skip
    answer = interrupt(payload)
    # Whoever resumes the run hands back an ApprovalAnswer; a bare word is taken as that action.
    return cast(ApprovalAnswer, answer if isinstance(answer, dict) else {"action": str(answer)})


def review(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Show the pending plan, get it approved, and apply it; for the tester, read the test result."""
    ctx = runtime.context
    pending = state["pending"]
    assert pending is not None
    # A run resumed after a kill mid-apply starts here: the half-applied plan is rolled back first,
    # so the preview, and the check of it before the apply, see what the apply will change.
    with suppress(StateError):  # when it cannot be done now, the apply says why
        recover(ctx.root)
    # The preview is of the plan as it would be applied (run timeouts capped), and what its
    # selections found counts as what it showed: an edit made since the model's reply was expanded
    # (a file that stopped matching ``contains``) stops the apply as one made after the preview does.
    selected = [found for record in pending.get("found", []) if (found := found_from_record(record)) is not None]
    shown, seen = preview_and_seen(ctx.root, _cap_run_timeouts(ctx, pending["plan"]), ctx.policy, selected=selected)
    answer = _answer(ctx, pending, [p.as_event() for p in shown], seen)
    # Everything below is a side effect: it runs once the answer is known.
    plan = pending["plan"]
    record = {"id": pending["id"], "role": pending["role"], "round": pending["round"], "journal": None}
    if answer.get("action") == "edit":
        edited = answer.get("plan")
        problems = reply_problems(pending["role"], edited, ctx.root, ctx.policy, warn=lambda m: _warn(ctx, m))
        if problems:
            answer = {"action": "reject", "reason": f"the edited plan is invalid: {problems[0]}"}
        else:
            plan = normalise(edited)  # type: ignore[arg-type]
            if pending["role"] == "tester":
                plan = _tests_as_results(plan)
    action = answer.get("action")
    if action == "show":
        record.update(status="shown", summary=_summary(plan, "shown, not applied (approval: never)"))
    elif action != "approve" and action != "edit":
        reason = answer.get("reason") or "rejected by the user"
        record.update(status="rejected", summary=f"{reason}; nothing from this plan was applied")
        audit(ctx.root, "rejected", plan, via="agent", origin=f"{ctx.thread_id}/{pending['id']}", reason=reason)
    else:
        plan = _cap_run_timeouts(ctx, plan)
        # An approval of the question applies what it showed, or nothing (an edit shows no preview).
        record.update(_apply(ctx, pending["id"], plan, answer.get("seen") if action == "approve" else None))
    update: dict[str, Any] = {"pending": None, "reviewed": [record]}
    # Only a tester's runs are the test result; a builder's checked runs either passed or failed the apply.
    test = record.pop("test", None)
    if pending["role"] == "tester" and record["status"] == "applied":
        update["test"] = test
        # The refactor re-runs the tests that were applied, which an edit may have changed.
        update["test_runs"] = [step for step in plan["steps"] if step["op"] == "run"]
    elif pending["role"] == "refactor" and record["status"] == "applied" and state.get("test_runs"):
        update["test"] = _retest_after_refactor(ctx, state["test_runs"], record)
    # After the re-test: a refactor it undid is reported as reverted, not applied.
    _emit(cast(ReviewedEvent, {"type": "reviewed", **record}))
    if pending["role"] == "tester" and update.get("test") and not update["test"]["passed"]:
        update["feedback"] = update["test"]["tail"]
        decision = state["decision"]
        if decision["topology"] == "loop" and pending["round"] < decision["max_rounds"]:
            update["round"] = pending["round"] + 1
    return update


def _summary(plan: dict[str, Any], what: str) -> str:
    ops: dict[str, int] = {}
    for step in plan["steps"]:
        ops[step["op"]] = ops.get(step["op"], 0) + 1
    counts = ", ".join(f"{n} {op}" for op, n in ops.items())
    goal = f"{plan['goal']}: " if plan.get("goal") else ""
    total = len(plan["steps"])
    return f"{goal}{total} step{'s' * (total != 1)} ({counts}) {what}"


def _apply(ctx: AgentContext, plan_id: str, plan: dict[str, Any], seen: Seen | None) -> dict[str, Any]:
    origin = f"{ctx.thread_id}/{plan_id}"
    runs: list[RunResult]
    done = applied_from(ctx.root, origin)
    if done is not None:
        # Applied before this run was killed: never apply it twice. Its tests are simply re-run.
        journal_id = done.id
        runs = _run_steps(ctx, [step for step in plan["steps"] if step["op"] == "run"])
        _emit({"type": "applied", "journal": journal_id, "steps": len(plan["steps"]), "replayed": True})
    else:
        try:
            result = apply_plan(ctx.root, plan, limits=ctx.limits, origin=origin, policy=ctx.policy, seen=seen,
                                on_event=lambda event: _forward_apply_event(ctx, event))  # fmt: skip
        except (StepFailed, SandboxError, InvalidPlan, PreviewChanged) as exc:
            return {"status": "failed", "summary": str(exc)}
        journal_id, runs = result.journal_id, result.runs
    record: dict[str, Any] = {"status": "applied", "journal": journal_id,
                              "summary": _summary(plan, f"applied (undo: journal {journal_id})")}  # fmt: skip
    if runs:
        record["test"] = _test_event(runs)
    return record


def _cap_run_timeouts(ctx: AgentContext, plan: dict[str, Any]) -> dict[str, Any]:
    """Return ``plan`` with every run step's timeout at most the profile's ``sandbox.run_timeout_s``.

    The one place the cap is applied: the applied plan, and the test runs taken from it (re-run
    after a refactor or a resume), all carry the capped timeouts.
    """
    if ctx.run_timeout_s is None:
        return plan
    # A model may ask for any timeout; the profile's limit wins.
    cap = ctx.run_timeout_s
    return {**plan, "steps": [{**s, "timeout_s": min(s["timeout_s"], cap)} if s["op"] == "run" else s
                              for s in plan["steps"]]}  # fmt: skip


def _forward_apply_event(ctx: AgentContext, event: Event) -> None:
    if event["type"] in ("applied", "step"):
        _emit(event)  # checked against the contract by emit()
    elif event["type"] == "warning":
        _warn(ctx, event["message"])


def _run_steps(ctx: AgentContext, steps: list[dict[str, Any]]) -> list[RunResult]:
    if not steps:
        return []
    bwrap = bubblewrap()
    return [run_command(ctx.root, step["argv"], step["timeout_s"], ctx.limits, bwrap=bwrap) for step in steps]


def _test_event(runs: list[RunResult]) -> Verdict:
    failing = next((run for run in runs if run.exit_code != 0 or run.timed_out), None)
    shown = failing or runs[-1]
    verdict: Verdict = {"passed": failing is None, "exit_code": shown.exit_code, "timed_out": shown.timed_out,
                        "tail": shown.output_tail[-TAIL_CHARS:], "runs": len(runs)}  # fmt: skip
    _emit({"type": "test", **verdict})
    return verdict


def _retest_after_refactor(ctx: AgentContext, test_runs: list[dict[str, Any]], record: dict[str, Any]) -> Verdict:
    test = _test_event(_run_steps(ctx, test_runs))
    if not test["passed"]:
        try:
            # Exactly the plan this run applied: another may have been applied since.
            undone = undo_journal(ctx.root, record["journal"], via="agent")
            record["summary"] += f"; the tests failed after it, so journal {undone.id} was undone"
            record["status"] = "reverted"
            test = _test_event(_run_steps(ctx, test_runs))
        except RouteshellError as exc:
            record["summary"] += f"; the tests failed after it and it could not be undone: {exc}"
    return test


def finish(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Decide the outcome: rejected or failed plans and failing tests make the run fail."""
    ctx = runtime.context
    reviewed = state.get("reviewed", [])
    journals = [r["journal"] for r in reviewed if r["journal"] is not None and r["status"] == "applied"]
    stopped = next((r for r in reviewed if r["status"] in ("rejected", "failed")), None)
    test = state.get("test")
    if state.get("declined"):
        ok, summary = False, state["declined"]
    elif stopped is not None:
        ok, summary = False, f"the {stopped['role']}'s plan was {stopped['status']}: {stopped['summary']}"
    elif test is not None and not test["passed"]:
        rounds = state.get("round", 1)
        ok, summary = False, f"the tests still fail after {rounds} round{'s' * (rounds != 1)}"
    else:
        ok = True
        parts = [f"{r['role']}: {r['summary']}" for r in reviewed]
        if test is not None:
            parts.append(f"tests pass (round {state.get('round', 1)})")
        summary = "; ".join(parts) or "nothing to do"
    per_role = ctx.ledger.per_role(ctx.thread_id)
    totals = sum(per_role.values(), Usage())
    outcome: RunOutcome = {"ok": ok, "summary": summary, "undo": journals[-1] if journals else None,
                           "journals": journals, "thread": ctx.thread_id, "usage": totals.as_dict(),
                           "per_role": {role: usage.as_dict() for role, usage in per_role.items()}}  # fmt: skip
    _emit(cast(FinalEvent, {"type": "final", **outcome}))
    return {"outcome": outcome}
