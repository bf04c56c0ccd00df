"""``routeshell files``: find files by a match, list duplicate files, size directories (reads only)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from engine.errors import ExitCode
from engine.names import quoted_name
from tui.arg_types import whole_number
from tui.sizes import size_text

if TYPE_CHECKING:
    from engine.workspace.sandbox import Workspace

_SIZE_FORMS = "10B, 512KB, 1.5MB or 2GB (1 KB = 1024 bytes)"
_WHEN_FORMS = "a date (2025-01-31), a date and time (2025-01-31T12:00) or an age (30d, 12h, 2w)"
# The option each key of a match object comes from, to name it in an error.
_OPTIONS = {"glob": "GLOB", "min_size": "--min-size"}
_SEMANTIC_HELP = (
    "rank the files the other filters select by how close their names and first lines are in meaning to TEXT, "
    "best first, and keep the best --top-k (GLOB defaults to **); the vectors are kept in .routeshell/index.sqlite "
    "and only new or changed files are embedded again; the first use in a process loads the model (seconds)"
)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 0 or more")
    return value


def _top_k(text: str) -> int:
    """``--top-k``'s type. The bound is read here, not when the parser is built: engine.files.match
    (and the regex module) would otherwise load for every command, 20 ms of each start."""
    from engine.files.match import MAX_TOP_K

    return whole_number(1, MAX_TOP_K)(text)


def add_files_command(commands: Any, parser_class: type[argparse.ArgumentParser], epilog: str) -> None:
    """Register ``files`` and its actions (find, duplicates, du) on the top-level subparsers."""
    files = commands.add_parser(
        "files",
        help="find files by a match, list duplicate files, size directories (reads only)",
        description="Read-only views of many files at once. They never follow a symlink (a GLOB whose\n"
        "fixed start is or goes through one, as link/*.txt, is refused, naming it), never look\n"
        "into .git or .routeshell, and never open a FIFO or device. Paths are relative to the\n"
        "workspace; names that hold control characters or undecodable bytes are shown escaped.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = files.add_subparsers(dest="files_command", metavar="ACTION", required=True, parser_class=parser_class)

    def common(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument(
            "--workspace",
            dest="files_workspace",
            metavar="DIR",
            help="workspace directory (default: the one given before 'files', else the profile's)",
        )
        sub.add_argument("--json", action="store_true", help="print JSON Lines events instead of text")
        return sub

    find = common(actions.add_parser("find", help="list the entries a glob and filters select, or choose by meaning"))
    find.add_argument(
        "glob", metavar="GLOB", nargs="?", help="workspace glob: * and ? in a name, ** across directories"
    )
    find.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="leave out what this matches")
    find.add_argument("--type", choices=("file", "dir", "any"), default="file",
                      help="kind of entry (default: file); a directory found stands for what is in it")  # fmt: skip
    find.add_argument("--ext", action="append", default=[], metavar=".EXT", help="file extension, any case")
    find.add_argument("--name-regex", metavar="RE", help="a regular expression the name must contain a match of")
    find.add_argument("--contains", metavar="TEXT", help="text the file holds in its first MiB, ignoring case")
    find.add_argument("--larger-than", metavar="SIZE", help=f"more than SIZE bytes: {_SIZE_FORMS}")
    find.add_argument("--smaller-than", metavar="SIZE", help="less than SIZE bytes")
    find.add_argument("--modified-after", metavar="WHEN", help=f"modified at or after WHEN: {_WHEN_FORMS}")
    find.add_argument("--modified-before", metavar="WHEN", help="modified before WHEN")
    find.add_argument("--tag", metavar="TAG", help="files carrying this tag (front matter or user.xdg.tags)")
    find.add_argument("--limit", type=whole_number(1), default=1000, metavar="N", help="show at most N (default: 1000)")
    find.add_argument("--semantic", metavar="TEXT", help=_SEMANTIC_HELP)
    find.add_argument("--top-k", type=_top_k, metavar="N", help="with --semantic: keep the best N (default: 20)")

    duplicates = common(actions.add_parser("duplicates", help="list groups of files with the same content"))
    duplicates.add_argument("path", nargs="?", default=".", metavar="PATH", help="directory to look under")
    duplicates.add_argument("--min-size", default="1", metavar="SIZE", help="ignore smaller files (default: 1B)")
    duplicates.add_argument(
        "--limit", type=whole_number(1), default=100, metavar="N", help="at most N groups (default: 100)"
    )

    usage = common(actions.add_parser("du", help="sizes by directory, largest first"))
    usage.add_argument("path", nargs="?", default=".", metavar="PATH", help="directory to size")
    usage.add_argument("--depth", type=_count, default=1, metavar="N", help="list directories N levels down")
    usage.add_argument(
        "--limit", type=whole_number(1), default=100, metavar="N", help="at most N directories (default: 100)"
    )


def run_files_command(args: argparse.Namespace) -> int:
    """Carry out ``routeshell files ACTION``; return the exit code (2 for a bad match, size or path)."""
    from engine.config.profiles import load_profile
    from engine.errors import UsageError
    from engine.files.match import MatchError, parse_size
    from engine.files.tools import disk_usage, duplicates, find
    from engine.workspace.sandbox import Workspace
    from tui.cli import choose_workspace

    if args.files_command == "find":
        _check_find(args)
    # Reading creates nothing, not even the profile's workspace directory.
    workspace = choose_workspace(args, load_profile(args.profile), args.files_workspace, create=False)
    try:
        with Workspace(workspace) as ws:
            if args.files_command == "find" and args.semantic is not None:
                _show_found(args, _find_by_meaning(ws, _match(args), args))
            elif args.files_command == "find":
                _show_found(args, find(ws, _match(args), limit=args.limit))
            elif args.files_command == "duplicates":
                min_size = parse_size(args.min_size, "min_size")
                _show_duplicates(args, duplicates(ws, args.path, min_size=min_size, limit=args.limit))
            else:
                _show_usage(args, disk_usage(ws, args.path, depth=args.depth, limit=args.limit))
    except MatchError as exc:
        option = _OPTIONS.get(exc.key, "--" + exc.key.replace("_", "-"))
        raise UsageError(f"{option}: {exc.reason}") from None
    return ExitCode.OK


def _check_find(args: argparse.Namespace) -> None:
    """Refuse the options of ``files find`` that only make sense with others."""
    from engine.errors import UsageError

    if args.glob is None and args.semantic is None:
        raise UsageError("give a GLOB such as '**/*.pdf', or --semantic TEXT (see routeshell files find --help)")
    if args.top_k is not None and args.semantic is None:
        raise UsageError("--top-k keeps the best files of --semantic TEXT; add --semantic or leave --top-k out")


def _match(args: argparse.Namespace) -> dict[str, Any]:
    """The match object the options of ``files find`` spell."""
    match: dict[str, Any] = {"type": args.type}
    for key in ("glob", "semantic", "top_k", "name_regex", "contains", "larger_than", "smaller_than",
                "modified_after", "modified_before", "tag"):  # fmt: skip
        if getattr(args, key) is not None:
            match[key] = getattr(args, key)
    for key in ("exclude", "ext"):
        if getattr(args, key):
            match[key] = getattr(args, key)
    return match


def _find_by_meaning(ws: Workspace, match: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """What ``files find --semantic`` shows: the best-ranked files first, each with its score."""
    from engine.files.match import select, tags_at

    selection = select(ws, match, bound=args.limit)
    for warning in selection.warnings:
        _note(args, warning)
    found = {item.path: item for item in selection.found}
    entries = [
        {"path": path, "kind": found[path].kind, "size": found[path].size, "mtime": found[path].mtime,
         "tags": tags_at(ws, path), "score": score}
        for path, score in selection.ranked
    ]  # fmt: skip
    return {"match": match, "entries": entries, "total": selection.total, "truncated": selection.total > args.limit}


def _when(mtime: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(mtime))


def _note(args: argparse.Namespace, message: str) -> None:
    """A warning: an event on standard output with --json, else a line on standard error."""
    from engine.events import json_line
    from engine.names import display_line

    if args.json:
        print(json_line({"type": "warning", "message": message}))
    else:
        print(f"routeshell: warning: {display_line(message)}", file=sys.stderr)


def _show_found(args: argparse.Namespace, result: Mapping[str, Any]) -> None:
    from engine.events import json_line
    from engine.names import display_name

    for entry in result["entries"]:
        if args.json:
            print(json_line({"type": "found", **entry}))
            continue
        size = "-" if entry["kind"] == "dir" else size_text(entry["size"])
        tags = "  tags: " + ", ".join(map(display_name, entry["tags"])) if entry["tags"] else ""
        score = f"{entry['score']:6.3f}  " if "score" in entry else ""
        print(f"{score}{size:>9}  {_when(entry['mtime'])}  {entry['kind']:<4}  {display_name(entry['path'])}{tags}")
    if result["truncated"]:
        _note(args, f"showing {len(result['entries'])} of {result['total']} matches; raise --limit to see more")
    elif not result["entries"] and not args.json:
        print(f"routeshell: nothing matches {display_name(args.glob or '**')}", file=sys.stderr)


def _show_duplicates(args: argparse.Namespace, result: Mapping[str, Any]) -> None:
    from engine.events import json_line
    from engine.names import display_name

    for index, group in enumerate(result["groups"]):
        wasted = group["size"] * (len(group["files"]) - 1)
        if args.json:
            print(json_line({"type": "duplicates", **group, "wasted": wasted}))
            continue
        if index:
            print()
        count, size = len(group["files"]), size_text(group["size"])
        print(f"{count} files of {size}, {size_text(wasted)} wasted (sha256 {group['sha256'][:12]})")
        for item in group["files"]:
            print(f"  {_when(item['mtime'])}  {display_name(item['path'])}")
    if result["truncated"]:
        _note(args, f"more than {len(result['groups'])} groups of duplicates; raise --limit to see more")
    if args.json:
        return
    if result["groups"]:
        print(f"{len(result['groups'])} group(s) of duplicates, {size_text(result['wasted'])} wasted in all")
    else:
        print(f"no duplicate files under {display_name(result['path'])}")


def _show_usage(args: argparse.Namespace, result: Mapping[str, Any]) -> None:
    from engine.events import json_line
    from engine.names import display_name

    top = result["path"]
    offset = 0 if top == "." else top.count("/") + 1
    rows = [{"path": top, "size": result["total"], "files": result["files"]}, *result["dirs"]]
    if args.json:
        for row in rows:
            depth = 0 if row["path"] == top else row["path"].count("/") + 1 - offset
            print(json_line({"type": "disk_usage", **row, "depth": depth}))
    else:
        print(f"{'size':>9}  {'files':>9}  directory")
        for row in [*rows[1:], rows[0]]:  # the total last, as du prints it
            total = "  (total)" if row is rows[0] else ""
            print(f"{size_text(row['size']):>9}  {row['files']:>9}  {display_name(row['path'])}{total}")
    for path in result["unreadable"]:
        _note(args, f"cannot read {quoted_name(path)}; counted as 0")
    if result["truncated"]:
        _note(args, f"showing the {len(result['dirs'])} largest directories; raise --limit to see more")
