"""``routeshell run``: one task, non-interactively, as a readable transcript or JSON Lines events."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import ExitCode, RouteshellError, UsageError
from engine.events import ApprovalAnswer, PreviewEvent
from tui.arg_types import given_task, http_url, model_name
from tui.cli import choose_workspace, command_hint

if TYPE_CHECKING:
    from engine.config.profiles import Profile
    from engine.kinds import ApprovalMode

RUN_EPILOG = """\
approval (--approve; the default is the profile's 'approval', where 'ask' counts as 'auto'):
  auto   apply plans that only change files; stop and wait before a plan with run steps
  never  show every plan, apply none
  all    apply every plan, run steps included (confined by bubblewrap when it is installed)
A run that stops for an approval keeps its place: continue it with
  routeshell run --thread ID --resume --approve all     (or --answer reject)
Every plan is listed in the transcript, one line per step (--show-diff adds its diffs); the
"plan" event of --json holds the whole plan. Hints printed at the end (undo, resume) name the
workspace and profile, so they work when pasted.

A profile with a [serve] table and a loopback llm base_url (the shipped 'local') serves its
own model: when nothing answers there, the run starts 'routeshell serve' on the profile's
model and stops it when the run ends (train one first: routeshell train all --out DIR).

--json prints one JSON object per line, each with a "type": route, role_start, delta,
repair, usage, role_end, plan, approval, step, applied, test, reviewed, error, final.

exit codes:
  0    the task is done (tests pass when there were tests)
  1    the task failed: tests still fail, a plan was rejected or failed, the token budget
       ran out, the run stopped to wait for an approval, or the task was declined (the
       local planner does files only, or was unsure of its plan)
  2    bad usage, bad profile or bad input
  3    the LLM endpoint failed (unreachable, timed out, or kept answering errors), or the
       local model server could not start (no model yet, or it died; see the 'local' profile)
  130  interrupted (Ctrl-C); continue with --thread ID --resume
  143  terminated (SIGTERM); continue the same way
"""


SESSIONS_EXIT_CODES = """\
exit codes:
  0    success (a workspace without sessions too)
  1    the sessions cannot be read (.routeshell/ or its database is not ours, or damaged), or
       standard output cannot be written
  2    bad usage, bad profile, or a workspace that is not a directory
  130  interrupted (Ctrl-C)
"""


def add_run_command(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Register ``run`` on the top-level subparsers."""
    run = commands.add_parser(
        "run",
        help="run one task with the agents, non-interactively",
        description="Route a task to the agent roles (planner, builder, tester, refactor) and run them on\n"
        "the workspace. Plans are validated, shown as diffs, applied through the sandbox and\n"
        "journaled (undo with 'routeshell plan undo'). Sessions are saved in the workspace's\n"
        ".routeshell/ directory ('routeshell sessions' lists them).",
        epilog=RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "task", nargs="?", metavar="TASK", help="what to do, in plain words; - reads it from stdin (at most 1 MiB)"
    )
    run.add_argument("--workspace", dest="run_workspace", metavar="DIR",
                     help="workspace directory (default: the profile's)")  # fmt: skip
    run.add_argument("--yes", dest="run_yes", action="store_true",
                     help="adopt a workspace at /, $HOME or outside the home directory without asking")  # fmt: skip
    run.add_argument("--profile", dest="run_profile", metavar="NAME", help="run configuration (see 'profiles list')")
    run.add_argument(
        "--base-url", type=http_url, metavar="URL", help="OpenAI-compatible endpoint, overriding the profile's"
    )
    run.add_argument("--model", type=model_name, metavar="NAME", help="model name, overriding the profile's")
    run.add_argument("--topology", choices=("auto", "single", "pipeline", "loop"), default="auto",
                     help="force a topology instead of asking the router (default: auto)")  # fmt: skip
    run.add_argument("--approve", choices=("auto", "never", "all"), help="what may be applied without asking")
    run.add_argument("--json", action="store_true", help="print JSON Lines events instead of a transcript")
    run.add_argument(
        "--thread",
        metavar="ID",
        help="session id: letters, digits, '.', '-', '_', at most 64 (default: a new one, printed at the start)",
    )
    run.add_argument("--resume", action="store_true", help="continue the session --thread from where it stopped")
    run.add_argument("--answer", choices=("approve", "reject"),
                     help="with --resume: answer the approval the session is waiting for")  # fmt: skip
    run.add_argument("--max-cost-tokens", type=int, metavar="N", help="stop once the run has used more than N tokens")
    run.add_argument("--min-probability", type=float, metavar="P",
                     help="decline a plan the local planner gives a probability under P, 0-1 (default: the "
                          "profile's planner.min_probability; 0 offers every plan)")  # fmt: skip
    run.add_argument("--show-stream", action="store_true", help="echo the models' text as it streams in")
    run.add_argument(
        "--show-diff", action="store_true", help="show each plan's diffs in the transcript, not only its steps"
    )


def add_sessions_command(commands: Any) -> None:
    """Register ``sessions`` on the top-level subparsers."""
    sessions = commands.add_parser(
        "sessions",
        help="list the agent sessions of a workspace, newest first",
        description="Every 'routeshell run' (and every task of the Agent pane or --plain) is a session, saved\n"
        "in the workspace's .routeshell/sessions.sqlite. A session that is 'stopped' or 'waiting for\n"
        "approval' continues with: routeshell run --thread ID --resume.",
        epilog=SESSIONS_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sessions.add_argument("--workspace", dest="run_workspace", metavar="DIR",
                          help="workspace directory (default: the profile's)")  # fmt: skip
    sessions.add_argument("--json", action="store_true", help="print JSON Lines, one session per line")
    sessions.add_argument("--yes", dest="run_yes", action="store_true",
                          help="adopt a workspace at /, $HOME or outside the home dir without asking")  # fmt: skip


def run_sessions_command(args: argparse.Namespace) -> int:
    """Carry out ``routeshell sessions``; return the exit code."""
    from engine.config.profiles import load_profile
    from engine.names import display_name

    workspace = choose_workspace(args, load_profile(args.profile), args.run_workspace, create=False)
    from agents.session import list_sessions

    rows = list_sessions(workspace)
    for row in rows:
        if args.json:
            _json_sink({"type": "session", **row})
            continue
        outcome = "" if row["ok"] is None else ("  ok" if row["ok"] else "  failed")
        print(f"{display_name(row['thread'])}  {row['updated'][:19].replace('T', ' ')}  {row['status']:<20}{outcome}  "
              f"{display_name(row['task'])[:80]}")  # fmt: skip
    if not rows and not args.json:
        print(f"no sessions in {workspace}")
    return ExitCode.OK


def run_agent_command(args: argparse.Namespace) -> int:
    """Carry out ``routeshell run``; return the exit code."""
    from engine.config.profiles import load_profile
    from tui.standard_streams import changed, outlive_reader

    # What run prints reports the task: a reader going away stops neither the task nor a plan
    # halfway, and the exit code still says how the task ended.
    outlive_reader()
    changed("no plan was applied")  # until one is: said should the output fail (see _noting_applied)

    task = _task(args)
    profile = load_profile(args.run_profile or args.profile)
    workspace = choose_workspace(args, profile, args.run_workspace)
    from agents.session import AgentSession, SessionOptions, approval_for, new_thread_id
    from engine.bitsandbytes_gate import settle_bitsandbytes
    from engine.router.registry import needs_bitsandbytes

    # The session loads the profile's router, and no other model, in this process.
    settle_bitsandbytes(needs_bitsandbytes(profile.data["router"]))

    approval = args.approve or approval_for(profile.data["approval"], attended=False)

    options = SessionOptions(approval=approval, topology=args.topology, base_url=args.base_url, model=args.model,
                             budget=args.max_cost_tokens, env=os.environ,
                             min_plan_probability=args.min_probability)  # fmt: skip
    sink = _noting_applied(_json_sink if args.json else _transcript_sink(args, profile, workspace, approval),
                           profile, workspace)  # fmt: skip
    thread = args.thread or new_thread_id()
    from engine.serve.launcher import local_server_for

    server = local_server_for(profile, base_url=args.base_url, model=args.model, cwd=workspace)

    def stop(signum: int, frame: Any) -> None:
        _interrupted(args, profile, workspace, thread, terminated=signum == signal.SIGTERM)

    previous = signal.signal(signal.SIGINT, stop)
    previous_term = signal.signal(signal.SIGTERM, stop)
    try:
        if server is not None:
            server.ensure(on_start=_say_starting, meanwhile=_load_graph)
        with AgentSession(workspace, profile, options, sink) as session:
            if args.resume:
                answer: ApprovalAnswer | None = {"action": args.answer} if args.answer else None
                outcome = session.resume(thread, answer)
            else:
                outcome = session.start(task or "", thread)
    except RouteshellError as exc:
        if args.json:
            _json_sink({"type": "final", "ok": False, "summary": str(exc), "undo": None, "journals": [],
                        "thread": thread, "exit_code": int(exc.exit_code)})  # fmt: skip
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)
        if server is not None:
            server.close()
    if outcome.status == "paused":
        # (A plan the profile's policy has a person confirm waits under --approve all too: it takes
        # an answer.)
        from engine.plans.policy import Policy

        plan = outcome.approval["plan"] if outcome.approval else None
        confirmed = plan is not None and Policy.from_profile(profile.data.get("policy")).confirms(plan)
        how = _resume_hint(args, profile, workspace, outcome.thread,
                           *(("--answer", "approve") if confirmed else ("--approve", "all")))  # fmt: skip
        message = f"stopped: plan {outcome.approval['id'] if outcome.approval else '?'} waits for approval; " + how
        if args.json:
            _json_sink({"type": "final", "ok": False, "paused": True, "summary": message, "undo": None,
                        "journals": [], "thread": outcome.thread})  # fmt: skip
        print(f"routeshell: {message}", file=sys.stderr)
        return ExitCode.FAILED
    from agents.nodes import UNSURE

    if outcome.final and not outcome.final["ok"] and outcome.final["summary"].startswith(UNSURE) and args.task:
        print(f"routeshell: {_unsure_hint(args, profile, workspace)}", file=sys.stderr)
    return ExitCode.OK if outcome.final and outcome.final["ok"] else ExitCode.FAILED


def _unsure_hint(args: argparse.Namespace, profile: Profile, workspace: Path) -> str:
    """How to see a plan the local planner was unsure of, without applying it: this run again, with
    ``--min-probability 0 --approve never``."""
    overrides = [word for flag in ("base_url", "model") if getattr(args, flag)
                 for word in (f"--{flag.replace('_', '-')}", getattr(args, flag))]  # fmt: skip
    how = command_hint(profile, "run", "--workspace", str(workspace), *overrides, "--min-probability", "0",
                       "--approve", "never", args.task)  # fmt: skip
    again = " (with the task on standard input again)" if args.task == "-" else ""
    return f"to see that plan without applying it: {how}{again}"


def _load_graph() -> None:
    """Import the agents' graph and LangGraph, which the session loads first, most of a run's own
    start-up: called while the local model server starts, the import overlaps the server's."""
    from importlib import import_module

    for module in ("agents.graph", "langgraph.checkpoint.sqlite"):
        import_module(module)


def _say_starting(line: str) -> None:
    from engine.names import display_line

    print(f"routeshell: {display_line(line)}", file=sys.stderr, flush=True)


def _resume_hint(args: argparse.Namespace, profile: Profile, workspace: Path, thread: str, *extra: str) -> str:
    """The command that continues ``thread``: with this run's profile, workspace and endpoint overrides,
    and what it was told to apply, decline and spend (a run under ``--approve never``, pasted, still
    applies nothing); ``extra`` may answer the approval it waits for instead."""
    overrides = [word for flag in ("base_url", "model") if getattr(args, flag)
                 for word in (f"--{flag.replace('_', '-')}", getattr(args, flag))]  # fmt: skip
    if args.approve and not {"--approve", "--answer"} & set(extra):
        overrides += ["--approve", args.approve]
    if args.min_probability is not None:
        overrides += ["--min-probability", f"{args.min_probability:g}"]
    if args.max_cost_tokens is not None:
        overrides += ["--max-cost-tokens", str(args.max_cost_tokens)]
    return command_hint(profile, "run", "--workspace", str(workspace), *overrides, "--thread", thread, "--resume",
                        *extra)  # fmt: skip


def _interrupted(args: argparse.Namespace, profile: Profile, workspace: Path, thread: str, *,
                 terminated: bool = False) -> None:  # fmt: skip
    """SIGINT (or SIGTERM, ``terminated``): leave at once. A model call in flight would otherwise
    hold the exit for its whole timeout; leaving is safe because every completed step is
    checkpointed and an apply in progress is rolled back from its journal by the next command, as
    after a crash. A ``run`` step in progress is killed first, with all it started: nothing may
    write to the workspace after this process is gone and the next command has rolled the apply
    back."""
    runner = sys.modules.get("engine.plans.runner")
    if runner is not None:
        runner.kill_running_steps()
    # The local model server this run started must not outlive it.
    launcher = sys.modules.get("engine.serve.launcher")
    if launcher is not None:
        launcher.stop_started_servers()
    how = _resume_hint(args, profile, workspace, thread)
    what, code = ("terminated", ExitCode.TERMINATED) if terminated else ("interrupted", ExitCode.INTERRUPTED)
    if args.json:
        summary = f"{what}; continue with: {how}"
        _json_sink({"type": "final", "ok": False, "interrupted": True, "summary": summary, "undo": None,
                    "journals": [], "thread": thread, "exit_code": int(code)})  # fmt: skip
    print(f"routeshell: {what}; continue with: {how}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(code)


def _task(args: argparse.Namespace) -> str | None:
    if args.thread is not None:
        from agents.session import check_thread_id

        check_thread_id(args.thread)
    if args.resume:
        if not args.thread:
            raise UsageError("--resume needs --thread ID (the id printed when the run started)")
        if args.task:
            raise UsageError("--resume continues a saved task; do not give a new TASK with it")
        return None
    if args.answer:
        raise UsageError("--answer only goes with --resume")
    if args.task is None:
        raise UsageError("give a TASK (or - to read it from stdin), or --thread ID --resume")
    return given_task(args.task, "run", args.stdin_closed)


def _noting_applied(sink: Any, profile: Profile, workspace: Path) -> Any:
    """``sink``, noting each plan applied before it is reported: should standard output fail, the
    one-line error says which plans were applied and how to undo them (:func:`changed`)."""
    from tui.standard_streams import changed

    applied: list[str] = []

    def handle(event: dict[str, Any]) -> None:
        if event.get("type") == "applied" and not event.get("replayed"):
            applied.append(event["journal"])
            undo = command_hint(profile, "plan", "undo", applied[-1], "--workspace", str(workspace))
            plans = f"plan {applied[0]} was" if len(applied) == 1 else f"plans {', '.join(applied)} were"
            changed(f"{plans} applied; undo {'it' if len(applied) == 1 else 'the last'} with: {undo}")
        sink(event)

    return handle


def _json_sink(event: dict[str, Any]) -> None:
    from engine.events import json_line

    print(json_line(event), flush=True)


def _transcript_sink(args: argparse.Namespace, profile: Profile, workspace: Path, approval: ApprovalMode) -> Any:
    """The sink printing the readable transcript: the shared one, plus each plan's steps (and diffs)
    when the plan is applied or only shown under ``approval``."""
    from rich.console import Console

    from engine.plans.policy import waits_for_approval
    from tui.transcript import Transcript

    undo = command_hint(profile, "plan", "undo", "--workspace", str(workspace))
    # On a pipe or in a file, each line is written whole (a reader or grep gets it in one piece)
    # unless COLUMNS asks for a width; on a terminal, lines wrap at its width.
    whole = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    transcript = Transcript(Console(highlight=False, soft_wrap=whole), deltas=args.show_stream, undo_hint=undo)

    def handle(event: dict[str, Any]) -> None:
        transcript.handle(event)
        # A plan that waits for approval is shown once, by its approval event: steps and diffs.
        if event.get("type") == "plan" and not waits_for_approval(approval, event["plan"]):
            # What the plan does, whether it is then applied or only shown.
            for preview in plan_previews(workspace, event["plan"], args.show_diff):
                transcript.handle(preview)

    return handle


def plan_previews(workspace: Path, plan: dict[str, Any], diffs: bool) -> list[PreviewEvent]:
    """The dry run of ``plan`` as preview events; without ``diffs``, only each step's line."""
    from engine.plans.dry_run import preview_plan

    try:
        previews = [preview.as_event() for preview in preview_plan(workspace, plan)]
    except (RouteshellError, OSError) as exc:
        reason = f"cannot be previewed: {exc}"
        return [{"type": "preview", "index": i, "op": step["op"], "summary": step["op"], "diff": None,
                 "problem": reason} for i, step in enumerate(plan["steps"])]  # fmt: skip
    if not diffs:
        for preview in previews:
            preview["diff"] = None
    return previews
