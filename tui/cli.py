"""The ``routeshell`` command line.

Kept light on purpose: ``--help`` and ``--version`` import nothing beyond the standard library,
and each command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from engine.config.profiles import Profile

EXIT_CODES = """\
exit codes:
  0    success
  1    the command failed (a plan step failed and was rolled back, an undo would lose work,
       the workspace is read-only, full or busy, .routeshell/ holds something not ours,
       standard output cannot be written; with --plain on a pipe: a task failed or waits
       for approval)
  2    bad usage, bad profile or bad input (a path outside the workspace or not there, a plan
       or trash item that does not exist; with --plain on a pipe: an unknown command, a bad
       argument, a line that is not UTF-8)
  3    the LLM endpoint failed (routeshell run, routeshell eval), or the local profile's model
       server could not start (routeshell run)
  130  interrupted (Ctrl-C)
  143  terminated (SIGTERM): run, plan, trash, audit, files and eval stop as Ctrl-C stops them
"""

#: The exit codes of the commands on a workspace's plans and files: plan, trash, audit, files.
WORKSPACE_EXIT_CODES = """\
exit codes:
  0    success
  1    the command failed (a plan step failed and was rolled back, an undo would lose work,
       an apply or emptying of the trash was answered no, the workspace is read-only, full or
       busy, .routeshell/ holds something not ours, standard output cannot be written)
  2    bad usage, bad profile or bad input (a path outside the workspace or not there, a plan
       or trash item that does not exist)
  130  interrupted (Ctrl-C): an apply or undo under way is rolled back
  143  terminated (SIGTERM), stopped as Ctrl-C stops it
"""

PROFILES_EXIT_CODES = """\
exit codes:
  0    success
  1    standard output cannot be written
  2    bad usage, an unknown profile, or a profile that is not valid (profiles list still lists
       the others)
  130  interrupted (Ctrl-C)
"""

DESCRIPTION = """\
routeshell: a terminal agent shell.

Without a command, opens the shell on the workspace: the Files pane (a keyboard-driven
browser of the workspace), the Agent pane (tasks for the agents, with approvals), the
Train pane (training jobs for the local TinyLLM) and the Serve pane (a trained model behind
the OpenAI API, with metrics and a chat box).
Press ? inside the shell for the keys.

'routeshell run TASK' runs one task with the agents without the full-screen shell.
'routeshell train STAGE --out DIR' trains TinyLLM, a small Llama model, from scratch on this
machine: tokenizer, pretraining, SFT (see 'routeshell train --help').
'routeshell serve --model DIR' serves a trained model behind the OpenAI API; 'routeshell generate'
runs it offline (see 'routeshell serve --help').
'routeshell eval judge' has a judge model score a served model's answers to a test set
(see 'routeshell eval judge --help'); 'routeshell eval router' compares routers.
'routeshell route TASK' prints the router's decision for a task; 'routeshell train labels' and
'routeshell train router' make a learned router (see 'routeshell train --help'); 'routeshell export
--merge' merges a LoRA adapter into its base for servers without PEFT.
'routeshell --plain' is a line-mode prompt for dumb or slow terminals: the same agent tasks,
approvals and transcript, with history and Tab completion, and no full-screen UI; with
standard input not a terminal it runs each line it reads (echo TASK | routeshell --plain)
and exits with the worst status of those lines (see the exit codes below).

A workspace at /, at $HOME or outside the home directory is adopted only after a question
(or with --yes), unless it was adopted before; --workspace "" is refused.

Files change only through plans: JSON documents of file operations, applied
all-or-nothing inside the workspace, journaled and undoable ('routeshell plan').
'routeshell audit' lists who applied, undid, refused or rejected which plan, and when.
'routeshell files' finds files by a glob and filters, lists duplicate files and sizes
directories, reading only (see 'routeshell files --help').
"""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"routeshell: error: {message} (see {self.prog} --help)\n")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("routeshell")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """Return the parser for the whole command line."""
    parser = _Parser(
        prog="routeshell",
        description=DESCRIPTION,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument(
        "--plain",
        action="store_true",
        help="instead of the full-screen shell, a line-mode prompt for agent tasks (type /help in it)",
    )
    parser.add_argument(
        "--profile",
        default=os.environ.get("ROUTESHELL_PROFILE", "local"),
        metavar="NAME",
        help="run configuration to use (default: $ROUTESHELL_PROFILE or 'local'; see 'routeshell profiles list')",
    )
    parser.add_argument(
        "--workspace",
        metavar="DIR",
        help="workspace directory, overriding the profile's (must exist)",
    )
    parser.add_argument(
        "--yes",
        dest="adopt_yes",
        action="store_true",
        help="adopt a workspace at /, $HOME or outside the home directory without asking",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    profiles = commands.add_parser(
        "profiles",
        help="list and show run configurations",
        description="Profiles are TOML files: shipped ones, overridden by name by files in the user profile\n"
        "directory ($XDG_CONFIG_HOME/routeshell/profiles).",
        epilog=PROFILES_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    profile_commands = profiles.add_subparsers(dest="profiles_command", metavar="ACTION", required=True)
    listing = profile_commands.add_parser("list", help="list the known profiles and where each comes from")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    show = profile_commands.add_parser("show", help="print a resolved profile, secrets masked")
    show.add_argument("name", metavar="NAME", help="profile name")
    show.add_argument("--json", action="store_true", help="print JSON instead of TOML-like text")

    from tui.plan_cli import add_plan_commands
    from tui.run_cli import add_run_command, add_sessions_command

    add_run_command(commands, _Parser)
    add_sessions_command(commands)
    add_plan_commands(commands, _Parser, WORKSPACE_EXIT_CODES)
    from tui.trash_cli import add_trash_command

    add_trash_command(commands, _Parser, WORKSPACE_EXIT_CODES)
    from tui.audit_cli import add_audit_command

    add_audit_command(commands, _Parser, WORKSPACE_EXIT_CODES)
    from tui.files_cli import add_files_command

    add_files_command(commands, _Parser, WORKSPACE_EXIT_CODES)
    from tui.train_cli import add_train_command

    add_train_command(commands, _Parser)
    from tui.serve_cli import add_serve_commands

    add_serve_commands(commands, _Parser)
    from tui.eval_cli import add_eval_command

    add_eval_command(commands, _Parser)
    from tui.route_cli import add_export_command, add_route_command

    add_route_command(commands, _Parser)
    add_export_command(commands, _Parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the exit code."""
    from engine.errors import ExitCode

    code = _main(argv)
    if code == ExitCode.INTERRUPTED and argv is None:
        # Ctrl-C ended it: one more while the process shuts down (a finalizer, a worker pool being
        # joined) would print a traceback of its own after the one line that said so.
        import signal

        signal.signal(signal.SIGINT, signal.SIG_IGN)
    return code


def _main(argv: Sequence[str] | None) -> int:
    from engine.errors import ExitCode, RouteshellError
    from tui.standard_streams import OutputError, StandardStreams, discard_output, prepare_standard_streams

    # Only the process's own streams: a program that imports routeshell keeps its own.
    streams = prepare_standard_streams() if argv is None else StandardStreams()
    try:
        args = _parse(argv)
    except OutputError as exc:
        return _output_failed(exc)
    except BrokenPipeError:
        discard_output()
        return ExitCode.OK
    # Whether this call runs the process's own command line (the console entry point), not a
    # command line given by a program that imports routeshell: only then may a command re-run
    # the process (see tui.serve_cli.reexec_with_huge_pages).
    args.own_process = argv is None
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.stdin_closed = streams.stdin_closed
    try:
        code = _run_command(args)
        # Written out here, inside the try: a write that fails is reported, not left to the exit.
        sys.stdout.flush()
        return code
    except OutputError as exc:
        return _output_failed(exc)
    except RouteshellError as exc:
        from engine.names import display_line
        from engine.workspace.state import LockBusy

        # A command that can wait for the lock says how (plan apply, undo, recover, trash), others do not.
        waits = isinstance(exc, LockBusy) and getattr(args, "wait", None) == 0
        more = ", or add --wait to wait for it" if waits else ""
        print(f"routeshell: error: {display_line(str(exc))}{more}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        from tui.termination import Terminated

        if argv is None:
            # The process is ending: another Ctrl-C now (a second press, a signal sent twice) would
            # interrupt this line with a traceback of its own.
            import signal

            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if isinstance(exc, Terminated):
            print("routeshell: terminated", file=sys.stderr)
            return ExitCode.TERMINATED
        print("routeshell: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`routeshell profiles list | head`): not an error worth a traceback.
        discard_output()
        return ExitCode.OK


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    try:
        return build_parser().parse_args(argv)
    finally:
        # --help and usage errors print through argparse, then exit: what they wrote is written
        # out here, where a failed write is still reported.
        sys.stdout.flush()


def _output_failed(exc: BaseException) -> int:
    """Say that standard output cannot be written; return the exit code."""
    from engine.errors import ExitCode
    from engine.names import display_line
    from tui.standard_streams import changes_made, discard_output

    discard_output()
    done = changes_made()
    print(f"routeshell: error: {exc}" + (f"; {display_line(done)}" if done else ""), file=sys.stderr)
    return ExitCode.FAILED


def _workspace_command(args: argparse.Namespace) -> int:
    """Carry out ``plan``, ``trash``, ``audit`` or ``files``; return the exit code."""
    if args.command == "plan":
        from tui.plan_cli import run_plan_command

        return run_plan_command(args)
    if args.command == "trash":
        from tui.trash_cli import run_trash_command

        return run_trash_command(args)
    if args.command == "audit":
        from tui.audit_cli import run_audit_command

        return run_audit_command(args)
    from tui.files_cli import run_files_command

    return run_files_command(args)


def _eval_command(args: argparse.Namespace) -> int:
    """Carry out ``eval``; return the exit code."""
    from tui.eval_cli import run_eval_command

    return run_eval_command(args)


def _run_command(args: argparse.Namespace) -> int:
    """Carry out the command ``args`` names; return its exit code."""
    from engine.errors import ExitCode, UsageError

    if args.version:
        print(f"routeshell {_version()}")
        return ExitCode.OK
    if args.plain and args.command:
        raise UsageError(f"--plain starts the line-mode shell; it does not go with {args.command!r}")
    if args.command == "profiles":
        return _profiles(args)
    if args.command in ("plan", "trash", "audit", "files", "eval"):
        from tui.termination import terminated_as_interrupted

        with terminated_as_interrupted():
            return _workspace_command(args) if args.command != "eval" else _eval_command(args)
    if args.command == "run":
        from tui.run_cli import run_agent_command

        return run_agent_command(args)
    if args.command == "train":
        from tui.train_cli import run_train_command

        return run_train_command(args)
    if args.command == "serve":
        from tui.serve_cli import run_serve_command

        return run_serve_command(args)
    if args.command == "generate":
        from tui.generate_cli import run_generate_command

        return run_generate_command(args)
    if args.command == "export":
        from tui.route_cli import run_export_command

        return run_export_command(args)
    if args.command == "route":
        from tui.route_cli import run_route_command

        return run_route_command(args)
    if args.command == "sessions":
        from tui.run_cli import run_sessions_command

        return run_sessions_command(args)
    return _shell(args)


def _profiles(args: argparse.Namespace) -> int:
    from engine.config import profiles
    from engine.names import display_line

    if args.profiles_command == "show":
        profile = profiles.load_profile(args.name)
        shown = profiles.masked(profile)
        shown["workspace"] = str(profile.workspace)
        if args.json:
            print(json.dumps({"name": profile.name, "file": str(profile.source.path), **shown}, indent=2))
        else:
            print(f"# profile {profile.name} ({profile.source.origin}: {profile.source.path})")
            _print_toml_like(shown)
        return 0

    failures: list[str] = []
    rows: list[dict[str, str]] = []
    for name, source in profiles.discover().items():
        try:
            description = profiles.load_profile(name).data["description"]
        except profiles.ProfileError as exc:
            failures.append(str(exc))
            description = "INVALID: see the error below"
        rows.append({"name": name, "origin": source.origin, "file": str(source.path), "description": description})
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        width = max((len(row["name"]) for row in rows), default=4)
        for row in rows:
            print(f"{display_line(row['name']):<{width}}  {row['origin']:<7}  {display_line(row['description'])}")
    for failure in failures:
        print(f"routeshell: error: {display_line(failure)}", file=sys.stderr)
    return 2 if failures else 0


def _print_toml_like(data: dict[str, Any], prefix: str = "") -> None:
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    if prefix and scalars:
        print(f"\n[{prefix}]")
    for key, value in scalars.items():
        print(f"{key} = {json.dumps(value)}")
    for key, value in tables.items():
        _print_toml_like(value, f"{prefix}.{key}" if prefix else key)


def _shell(args: argparse.Namespace) -> int:
    from engine.config.profiles import load_profile
    from engine.errors import UsageError

    profile = load_profile(args.profile)
    workspace = choose_workspace(args, profile, None)
    if not args.plain and not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("the shell needs an interactive terminal (stdin and stdout must be a TTY); try --plain")
    if args.plain:
        # Imported here: it loads prompt_toolkit, rich and the agents, which --help must not wait for.
        from tui.plain import run_plain

        return run_plain(workspace, profile)

    from tui.app import RouteshellApp

    app = RouteshellApp(workspace=workspace, profile=profile)
    app.run()
    return app.return_code or 0


def choose_workspace(args: argparse.Namespace, profile: Profile, given: str | None, *, create: bool = True) -> Path:
    """Return the workspace a command works on, by :meth:`Profile.resolve_workspace`.

    ``given`` is the command's own ``--workspace``; without it, the one given before the command.
    Any ``--yes`` on the command line adopts an unusual workspace without asking; otherwise the
    question is asked when standard input and error are a terminal. With ``create`` false (a
    command that only reads) the profile's workspace is not created when it is missing.
    """
    if given is None:
        given = args.workspace
    yes = any(getattr(args, name, False) for name in ("adopt_yes", "run_yes", "yes"))
    return profile.resolve_workspace(given, yes=yes, confirm=_confirm if _can_ask() else None, create=create,
                                     again=_with_yes(getattr(args, "argv", None)))  # fmt: skip


#: The longest command line an error repeats with --yes; past it, the error says only "pass --yes".
_AGAIN_CHARS = 400


def _with_yes(argv: Sequence[str] | None) -> str | None:
    """The command line ``argv`` again, quoted to paste, with ``--yes`` first (where every command takes it)."""
    from engine.names import shell_word

    if argv is None:
        return None
    again = " ".join(shell_word(word) for word in ["routeshell", "--yes", *argv])
    return again if len(again) <= _AGAIN_CHARS else None


def _can_ask() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


def _confirm(question: str) -> bool:
    from engine.names import display_line

    # The question names the workspace, whose path may hold anything a file name can.
    print(f"routeshell: {display_line(question)} [y/N] ", end="", file=sys.stderr, flush=True)
    try:
        return input().strip().lower() in ("y", "yes")
    except EOFError:
        return False


def command_hint(profile: Profile, *words: str) -> str:
    """Return ``routeshell WORDS...`` as a line that works when pasted into a POSIX shell.

    Every word is quoted as the shell needs, and ``--profile`` is named when a plain ``routeshell``
    would not pick ``profile`` by itself.
    """
    chosen = [] if profile.name == os.environ.get("ROUTESHELL_PROFILE", "local") else ["--profile", profile.name]
    from engine.names import shell_word

    return " ".join(map(shell_word, ["routeshell", *chosen, *words]))


if __name__ == "__main__":
    sys.exit(main())
