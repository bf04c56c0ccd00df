"""``routeshell plan``: print the schema, validate, preview, apply, undo and list plans."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from engine.errors import ExitCode, RouteshellError, UsageError
from engine.events import Event, EventSink, StepEvent
from tui.arg_types import wait_seconds


def add_plan_commands(commands: Any, parser_class: type[argparse.ArgumentParser], epilog: str) -> None:
    """Register ``plan`` and its actions on the top-level subparsers."""
    plan = commands.add_parser(
        "plan",
        help="validate, preview, apply, undo and list file-operation plans",
        description="A plan is a JSON document (see 'routeshell plan schema') of file operations applied\n"
        "all-or-nothing inside a workspace. Every apply is journaled in the workspace's .routeshell/\n"
        "directory and can be undone; deleted files go to its trash.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = plan.add_subparsers(dest="plan_command", metavar="ACTION", required=True, parser_class=parser_class)
    actions.add_parser("schema", help="print the plan JSON Schema (version 1)")
    validate = actions.add_parser("validate", help="check a plan; exit 0 when valid, 2 with every problem when not")
    validate.add_argument("plan", metavar="PLAN.json", help="plan file, or - for standard input")
    validate.add_argument("--json", action="store_true", help="print the problems as JSON")

    def workspace_option(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--workspace",
            dest="plan_workspace",
            metavar="DIR",
            help="workspace directory (default: the one given before 'plan', else the profile's)",
        )
        sub.add_argument("--json", action="store_true", help="print JSON Lines events instead of text")

    apply = actions.add_parser("apply", help="apply a plan all-or-nothing (asks first unless --yes)")
    apply.add_argument("plan", metavar="PLAN.json", help="plan file, or - for standard input")
    workspace_option(apply)
    apply.add_argument("--dry-run", action="store_true", help="show what would change, with diffs; change nothing")
    apply.add_argument("--yes", action="store_true", help="apply without asking")
    wait_option(apply)
    undo = actions.add_parser(
        "undo", help="undo the last applied plan (repeat to go further back), or the plan ID ('plan history')"
    )
    undo.add_argument("id", nargs="?", metavar="ID", help="the plan to undo (default: the newest applied one)")
    workspace_option(undo)
    undo.add_argument("--dry-run", action="store_true", help="say what the undo would do and what blocks it")
    wait_option(undo)
    workspace_option(actions.add_parser("history", help="list the plans applied to the workspace"))
    show = actions.add_parser("show", help="show one applied plan: origin, steps and the files it touched")
    show.add_argument("id", metavar="ID", help="the plan ('plan history' lists them)")
    workspace_option(show)


def wait_option(sub: argparse.ArgumentParser) -> None:
    """Add ``--wait [SECONDS]``: wait for another routeshell to let go of the workspace."""
    sub.add_argument(
        "--wait",
        nargs="?",
        type=wait_seconds,
        const=math.inf,
        default=0.0,
        metavar="SECONDS",
        help="if another routeshell is changing the workspace, wait for it (for SECONDS, or as long as it takes)",
    )


def run_plan_command(args: argparse.Namespace) -> int:
    """Carry out ``routeshell plan ACTION``; return the exit code."""
    if args.plan_command == "schema":
        from engine.schemas import load_schema

        print(json.dumps(load_schema("plan"), indent=2))
        return ExitCode.OK
    if args.plan_command == "validate":
        return _validate(args)
    if args.plan_command in ("apply", "undo"):
        return _apply_or_undo(args)
    workspace = _workspace(args)
    if args.plan_command == "show":
        return _show(args, workspace)
    return _history(args, workspace)


def _workspace(args: argparse.Namespace) -> Path:
    from engine.config.profiles import load_profile
    from tui.cli import choose_workspace

    # Commands that only read create nothing, not even the profile's workspace directory.
    reads_only = args.plan_command in ("history", "show") or getattr(args, "dry_run", False)
    return choose_workspace(args, load_profile(args.profile), args.plan_workspace, create=not reads_only)


def _emit(event: Event) -> None:
    from engine.events import json_line

    print(json_line(event), flush=True)


def _validate(args: argparse.Namespace) -> int:
    from engine.names import display_line
    from engine.plans.model import InvalidPlan, load_plan

    try:
        plan = load_plan(args.plan)
    except InvalidPlan as exc:
        if args.json:
            print(json.dumps([{"pointer": p.pointer, "reason": p.reason} for p in exc.problems], indent=2))
        else:
            print(f"routeshell: error: {args.plan}: invalid plan, {len(exc.problems)} problem(s):", file=sys.stderr)
            for problem in exc.problems:
                print(f"  {display_line(str(problem))}", file=sys.stderr)
        return ExitCode.USAGE
    except RouteshellError as exc:
        if args.json:  # a plan that cannot be read is one problem of the whole document
            print(json.dumps([{"pointer": "/", "reason": str(exc)}], indent=2))
        raise
    if args.json:
        print(json.dumps([]))
    else:
        print(f"{args.plan}: valid plan, {len(plan['steps'])} step(s)")
    return ExitCode.OK


def _apply_or_undo(args: argparse.Namespace) -> int:
    """``plan apply`` or ``plan undo``. With --json, the stream ends with one final event whatever
    stops it: ``applied`` or ``undone``, or ``error`` with the exit code (a bad plan or workspace, a
    busy lock, no --yes, Ctrl-C), whose one line also goes to standard error."""
    from tui.standard_streams import OutputError, changed, discard_output, outlive_reader

    try:
        workspace = _workspace(args)
        if not args.dry_run:
            outlive_reader()  # a reader going away stops neither halfway
            # Until it is done, an output that fails has stopped it before any change.
            changed(f"nothing was {'applied' if args.plan_command == 'apply' else 'undone'}")
        return _apply(args, workspace) if args.plan_command == "apply" else _undo(args, workspace)
    except RouteshellError as exc:
        if args.json and not isinstance(exc, OutputError):
            try:
                _emit({"type": "error", "message": str(exc), "exit_code": int(exc.exit_code)})
            except OutputError:
                discard_output()  # the error is still said, on stderr, with its own exit code
        raise
    except KeyboardInterrupt as exc:
        if args.json:
            from tui.termination import Terminated

            what, code = ("terminated", ExitCode.TERMINATED) if isinstance(exc, Terminated) else \
                ("interrupted", ExitCode.INTERRUPTED)  # fmt: skip
            rolled_back = "; whatever the plan had changed was rolled back" if args.plan_command == "apply" else ""
            _emit({"type": "error", "message": f"{what}{rolled_back}", "exit_code": int(code)})
        raise


def _apply(args: argparse.Namespace, workspace: Path) -> int:
    from engine.config.profiles import load_profile
    from engine.names import display_line, display_name
    from engine.plans.apply import apply_plan, recover
    from engine.plans.audit import audit
    from engine.plans.dry_run import preview_and_seen
    from engine.plans.expand import expand_plan
    from engine.plans.model import InvalidPlan, load_plan, plan_source
    from engine.plans.policy import Policy
    from engine.plans.runner import Limits

    profile = load_profile(args.profile)
    policy = Policy.from_profile(profile.data.get("policy"))
    try:
        plan = load_plan(args.plan)
    except InvalidPlan as exc:
        audit(workspace, "refused", None, via="cli", reason=str(exc))
        raise
    show = _emit if args.json else _print_step
    # An interrupted apply is rolled back first: the preview must show what the apply will change.
    recover(workspace, on_event=show, wait=args.wait)
    written = plan
    # Selections become one step per file here, once: the preview, the question and the apply all see
    # these, and what the expansion warns of (a file index it could not use) is said once.
    selected: list[tuple[str, os.stat_result]] = []
    plan = expand_plan(
        workspace, plan, policy, source=plan_source(args.plan),
        on_refusal=lambda why: audit(workspace, "refused", written, via="cli", reason=why),
        warn=lambda message: show({"type": "warning", "message": message}),
        saw=lambda path, info: selected.append((path, info)),
    )  # fmt: skip
    # What the preview read, and what the selections found before they read it (a semantic match
    # ranks for seconds), is checked again under the lock: what is applied is what was shown.
    previews, seen = preview_and_seen(workspace, plan, policy, selected=selected)
    for preview in previews:
        if args.json:
            _emit(preview.as_event())
        else:
            _print_preview(preview)
    problems = [p for p in previews if p.problem]
    if problems:
        first = problems[0]
        problem = display_line(first.problem or "")
        message = f"step {first.index + 1} ({first.op}) would fail: {problem}; nothing was changed"
        return _fail(args, message, ExitCode.FAILED)
    if args.dry_run:
        if not args.json:
            print(f"dry run: {len(previews)} step(s) would be applied to {display_name(str(workspace))}; "
                  "nothing was changed")  # fmt: skip
        return ExitCode.OK
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError("not applying without --yes: standard input is not a terminal to ask on")
        if not ask(args, f"Apply {len(previews)} step(s) to {display_name(str(workspace))}? [y/N] "):
            audit(workspace, "rejected", plan, via="cli", reason="answered no")
            if args.json:
                return _fail(args, "not applied: answered no", ExitCode.FAILED)
            print("not applied")
            return ExitCode.FAILED
    limits = Limits.from_profile(profile.data["sandbox"])
    sink, progress = _progress_sink(args, len(previews))
    try:
        result = apply_plan(workspace, plan, limits=limits, on_event=sink, via="cli", wait=args.wait, policy=policy,
                            seen=seen)  # fmt: skip
    finally:
        if progress is not None:
            progress.stop()
    from tui.cli import command_hint
    from tui.standard_streams import changed

    undo = command_hint(profile, "plan", "undo", result.journal_id, "--workspace", str(workspace))
    changed(f"plan {result.journal_id} was applied ({result.steps} step(s)); undo with: {undo}")
    if not args.json:
        print(f"applied {result.steps} step(s) as plan {result.journal_id}; undo with: {undo}")
    return ExitCode.OK


def ask(args: argparse.Namespace, question: str) -> bool:
    """Ask ``question`` on the terminal; return whether the answer is yes. With --json the question
    goes to standard error: standard output carries only JSON."""
    if args.json:
        print(question, end="", file=sys.stderr, flush=True)
        question = ""
    try:
        return input(question).strip().lower() in ("y", "yes")
    except EOFError:  # Ctrl-D: no
        return False


def _progress_sink(args: argparse.Namespace, total: int) -> tuple[EventSink, Any]:
    if args.json:
        return _emit, None
    if not sys.stderr.isatty():
        return _print_step, None
    from rich.console import Console
    from rich.progress import Progress

    progress = Progress(console=Console(stderr=True), transient=True)
    task = progress.add_task("applying", total=total)
    progress.start()

    def sink(event: Event) -> None:
        if event["type"] == "step":
            progress.advance(task)
            if event["op"] == "run":
                progress.console.print(_run_line(event), markup=False, highlight=False)
        elif event["type"] == "warning":
            _print_step(event)

    return sink, progress


def _print_step(event: Event) -> None:
    from engine.names import display_line, display_name
    from engine.workspace.state import command_for, workspace_of

    if event["type"] == "step" and event["op"] == "run":
        print(_run_line(event))
    elif event["type"] == "warning":
        print(f"routeshell: warning: {display_line(event['message'])}", file=sys.stderr)
    elif event["type"] == "recovered":
        print(f"recovered plan {display_name(event['journal'])} interrupted while {event['was']}")
        for path in event.get("kept_in_trash", []):
            listing = command_for(workspace_of(Path(path)), "trash", "list")
            print(f"  still in the trash: {display_name(path)} ({display_line(listing)})")


def _run_line(event: StepEvent) -> str:
    from engine.names import display_text

    status = "timed out" if event["timed_out"] else f"exit {event['exit_code']}"
    # The command's output is shown, never obeyed: its escapes are shown as text.
    tail = "\n".join("    " + display_text(line) for line in event["tail"].rstrip().split("\n")[-10:])
    return f"step {event['index'] + 1} run: {status}" + (f"\n{tail}" if tail else "")


def _print_preview(preview: Any) -> None:
    from engine.names import display_line, display_name, display_text

    mark = "!" if preview.problem else "-"
    print(f"{mark} [{preview.index + 1}] {display_name(preview.summary)}")
    if preview.problem:
        print(f"    would fail: {display_line(preview.problem)}")
    if preview.diff:
        # Only "\n" ends a diff line; a file's tabs and control characters are shown in it as text.
        for line in preview.diff.rstrip("\n").split("\n"):
            print(f"    {display_text(line)}")


def _fail(args: argparse.Namespace, message: str, code: int) -> int:
    if args.json:
        _emit({"type": "error", "message": message, "exit_code": code})
    from engine.names import display_line

    print(f"routeshell: error: {display_line(message)}", file=sys.stderr)
    return code


def _undo(args: argparse.Namespace, workspace: Path) -> int:
    from engine.names import display_line, display_name
    from engine.plans.undo import undo_journal, undo_preview

    if args.dry_run:
        preview = undo_preview(workspace, args.id)
        if args.json:
            _emit(preview.as_event())
        else:
            print(f"undoing plan {display_name(preview.journal.id)} would, in this order:")
            for action in preview.actions:
                print(f"  - {display_line(action)}")
            for problem in preview.blocked:
                print(f"  ! blocked: {display_line(problem)}")
        if preview.blocked:
            message = f"plan {preview.journal.id} cannot be undone now: {preview.hint}"
            return _fail(args, message, ExitCode.FAILED)
        return ExitCode.OK
    journal = undo_journal(workspace, args.id, on_event=_emit if args.json else _print_step, wait=args.wait)
    from tui.standard_streams import changed

    changed(f"plan {journal.id} was undone")
    if not args.json:
        print(f"undid plan {display_name(journal.id)} ({len(journal.records())} step(s))")
    return ExitCode.OK


def _recover_quietly(args: argparse.Namespace, workspace: Path) -> str | None:
    """Recover before reading, unless it cannot be done now: then return why, for the caller to
    say once it has read what is there (when the reading fails too, often for the same reason,
    only its error is said)."""
    from engine.plans.apply import recover
    from engine.workspace.state import StateError

    try:
        recover(workspace, on_event=_emit if args.json else _print_step)
    except StateError as exc:
        return str(exc)
    return None


def _warn(warning: str | None) -> None:
    if warning is not None:
        from engine.names import display_line

        print(f"routeshell: warning: {display_line(warning)}", file=sys.stderr)


def _history(args: argparse.Namespace, workspace: Path) -> int:
    from engine.names import display_name
    from engine.plans.journal import history

    warning = _recover_quietly(args, workspace)
    rows = history(workspace)
    _warn(warning)
    if args.json:
        for row in rows:
            _emit(row.as_event())
        return ExitCode.OK
    if not rows:
        print(f"no plans applied in {display_name(str(workspace))}")
    for row in rows:
        print(row.line())
    return ExitCode.OK


def _show(args: argparse.Namespace, workspace: Path) -> int:
    from engine.names import display_line, display_name
    from engine.plans.journal import find_journal, history_row

    warning = _recover_quietly(args, workspace)
    journal = find_journal(workspace, args.id)
    _warn(warning)
    row = history_row(journal)
    steps = [] if row.problem else journal.meta["plan"]["steps"]
    records = [] if row.problem else journal.records()
    files = sorted({str(r[key]) for r in records for key in ("path", "from", "to") if key in r})
    if args.json:
        _emit({"type": "journal", **row.fields(), "origin": None if row.problem else journal.meta.get("origin"),
               "plan_steps": steps, "files": files})  # fmt: skip
        return ExitCode.OK
    if row.problem:
        print(f"plan {display_name(row.id)}: damaged: {display_line(row.problem)}")
        return ExitCode.OK
    origin = journal.meta.get("origin")
    via = f"{row.via} (session/plan {origin})" if origin else row.via
    print(f"plan {display_name(row.id)}: {row.state}, started {row.started_text}, from {display_name(via)}")
    if row.goal:
        print(f"goal: {display_line(row.goal)}")
    for number, step in enumerate(steps, 1):
        print(f"  [{number}] {display_name(_step_line(step))}")
    if files:
        print("files: " + ", ".join(display_name(name) for name in files))
    return ExitCode.OK


def _step_line(step: dict[str, Any]) -> str:
    if "from" in step:
        return f"{step['op']} {step['from']} -> {step['to']}"
    if "tags" in step:
        return f"{step['op']} {step.get('path', '')} {', '.join(step['tags'])}"
    if step["op"] == "archive":
        return f"archive {len(step.get('paths', []))} path(s) -> {step['to']}"
    if "argv" in step:
        return f"{step['op']} {' '.join(step['argv'])}"
    return f"{step['op']} {step.get('path', '')}"
