"""``routeshell audit``: list the audit log of plans (``.routeshell/audit.jsonl``)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from engine.errors import ExitCode

SINCE_FORMS = (
    "a date (2025-01-01), a date and time (2025-01-01T12:00, local time unless it names a zone) "
    "or an age (30d, 12h, 45m, 2w)"
)


def since_time(text: str) -> float:
    """``--since WHEN`` as seconds since the epoch: an ISO date or date and time, or an age back from now."""
    from engine.files.match import MatchError, parse_when

    try:
        # A time without a zone is local, as the table shows times.
        return parse_when(text, "--since")
    except MatchError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time: give {SINCE_FORMS}") from None


def add_audit_command(commands: Any, parser_class: type[argparse.ArgumentParser], epilog: str) -> None:
    """Register ``audit`` on the top-level subparsers."""
    audit = commands.add_parser(
        "audit",
        help="list who applied, undid, refused or rejected which plan, and when",
        description="Every plan applied, failed, undone, refused (by validation or policy) or rejected\n"
        "(at approval) is recorded in the workspace's audit log, .routeshell/audit.jsonl: the time,\n"
        "the user, where it came from, the plan's journal id, goal, operations and paths.\n"
        "Damaged lines are skipped with a warning.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    audit.add_argument(
        "--workspace",
        dest="audit_workspace",
        metavar="DIR",
        help="workspace directory (default: the one given before 'audit', else the profile's)",
    )
    audit.add_argument("--since", type=since_time, metavar="WHEN", help=f"only records from WHEN on: {SINCE_FORMS}")
    audit.add_argument("--json", action="store_true", help="print JSON Lines events instead of text")


def run_audit_command(args: argparse.Namespace) -> int:
    """Carry out ``routeshell audit``; return the exit code (0 even when lines were skipped)."""
    from engine.config.profiles import load_profile
    from engine.events import json_line
    from engine.names import display_line, display_name
    from engine.plans.audit import HEADER, read_audit
    from tui.cli import choose_workspace

    # Reading the log creates nothing, not even the profile's workspace directory.
    workspace = choose_workspace(args, load_profile(args.profile), args.audit_workspace, create=False)
    records, warnings = read_audit(workspace, since=args.since)
    if args.json:
        for record in records:
            print(json_line(record.as_event()))
        for warning in warnings:
            print(json_line({"type": "warning", "message": warning}))
        return ExitCode.OK
    for warning in warnings:
        print(f"routeshell: warning: {display_line(warning)}", file=sys.stderr)
    if not records:
        since = "" if args.since is None else time.strftime(" since %Y-%m-%d %H:%M:%S", time.localtime(args.since))
        print(f"no audit records in {display_name(str(workspace))}{since}")
        return ExitCode.OK
    print(HEADER)
    for record in records:
        print(record.line(display_line))
    return ExitCode.OK
