"""``routeshell trash``: list, restore and empty what plans deleted (``.routeshell/trash``)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from engine.errors import ExitCode, UsageError


def add_trash_command(commands: Any, parser_class: type[argparse.ArgumentParser], epilog: str) -> None:
    """Register ``trash`` and its actions on the top-level subparsers."""
    from tui.plan_cli import wait_option

    trash = commands.add_parser(
        "trash",
        help="list, restore or empty what plans deleted",
        description="A plan's delete step moves the file into the workspace's trash\n"
        "(.routeshell/trash/<plan>/<step>), so that undo can put it back; undo also moves there\n"
        "what it must displace. Emptying the trash frees the space and makes those deletes final.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = trash.add_subparsers(dest="trash_command", metavar="ACTION", required=True, parser_class=parser_class)

    def common(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument(
            "--workspace",
            dest="plan_workspace",
            metavar="DIR",
            help="workspace directory (default: the one given before 'trash', else the profile's)",
        )
        sub.add_argument("--json", action="store_true", help="print JSON Lines instead of text")
        return sub

    common(actions.add_parser("list", help="list what is in the trash, with sizes"))
    restore = common(actions.add_parser("restore", help="put an item back where it was (only if that place is free)"))
    restore.add_argument("item", metavar="ITEM", help="the item as 'trash list' names it: PLAN/NAME")
    wait_option(restore)
    empty = common(actions.add_parser("empty", help="delete everything in the trash for good (asks unless --yes)"))
    empty.add_argument("--yes", action="store_true", help="empty without asking")
    wait_option(empty)


def human_size(size: int) -> str:
    """``size`` bytes as text: 512 B, 3.1 KiB, 2.0 MiB."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def run_trash_command(args: argparse.Namespace) -> int:
    """Carry out ``routeshell trash ACTION``; return the exit code."""
    from engine.config.profiles import load_profile
    from engine.events import json_line
    from engine.names import display_line, display_name
    from engine.plans import trash
    from tui.cli import choose_workspace, command_hint
    from tui.standard_streams import changed, outlive_reader

    profile = load_profile(args.profile)
    create = args.trash_command != "list"  # listing creates nothing
    workspace = choose_workspace(args, profile, args.plan_workspace, create=create)
    if args.trash_command != "list":
        outlive_reader()  # a reader going away stops neither halfway
    if args.trash_command == "list":
        items = trash.list_trash(workspace)
        if args.json:
            for item in items:
                print(json_line(item.as_event()))
            return ExitCode.OK
        if not items:
            print(f"the trash of {display_name(str(workspace))} is empty")
        for item in items:
            # The item's name is a directory's and a file's name in the trash: shown escaped.
            shown, origin = display_name(item.id), display_name(item.origin) if item.origin else "?"
            print(f"{shown}  {human_size(item.size):>9}  {item.kind:<9}  {origin}  ({display_name(item.why)})")
        if items:
            total = human_size(sum(item.size for item in items))
            restore = command_hint(profile, "trash", "restore", "--workspace", str(workspace), items[0].id)
            print(f"{len(items)} item(s), {total}; put one back with: {display_line(restore)}")
        return ExitCode.OK
    if args.trash_command == "restore":
        item = trash.restore(workspace, args.item, wait=args.wait)
        changed(f"{item.id} was restored to {item.origin or '?'}")
        if args.json:
            print(json_line({**item.as_event(), "type": "restored"}))
        else:
            print(f"restored {display_name(item.id)} to {display_name(item.origin or '?')}")
        return ExitCode.OK
    items = trash.list_trash(workspace)
    if not items:
        if args.json:
            print(json_line({"type": "trash_emptied", "items": 0, "bytes": 0}))
        else:
            print(f"the trash of {display_name(str(workspace))} is already empty")
        return ExitCode.OK
    if not args.yes:
        from tui.plan_cli import ask

        if not sys.stdin.isatty():
            raise UsageError("not emptying the trash without --yes: standard input is not a terminal to ask on")
        total = human_size(sum(item.size for item in items))
        question = f"Delete {len(items)} item(s), {total}, for good? Plans that deleted them can no longer be undone."
        if not ask(args, f"{question} [y/N] "):
            if args.json:
                print("routeshell: error: trash not emptied: answered no", file=sys.stderr)
            else:
                print("trash not emptied")
            return ExitCode.FAILED
    count, size = trash.empty(workspace, wait=args.wait)
    changed(f"the trash was emptied ({count} item(s), {human_size(size)} freed)")
    if args.json:
        print(json_line({"type": "trash_emptied", "items": count, "bytes": size}))
    else:
        print(f"emptied the trash: {count} item(s), {human_size(size)} freed")
    return ExitCode.OK
