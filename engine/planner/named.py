"""Paths a request names that no plan of the local planner may take, found before the model is asked.

The planner is decoded under the names of the workspace view (:mod:`engine.planner.prompt`), which
holds neither links nor hidden names nor anything outside the workspace. Asked about such a path it
cannot name it, and picks some other file instead: "delete notes/link.txt" became a delete of
``old/a.txt``. So a request naming one is declined in one line, saying why.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from engine.names import display_line
from engine.planner.kind_words import SPELLED_PATH
from engine.planner.places import FILE_NAME, REQUEST_TOKEN
from engine.planner.refer import referred_ops
from engine.planner.said import QUOTED, dictated_lines, not_files
from engine.planner.schema_edit import is_usable
from engine.planner.values import ARCHIVE_EXTS, COMMON_EXTS

__all__ = [
    "Walk",
    "missing_file",
    "outside_path",
    "unseen_path",
    "unwritable_names",
    "unwritable_text",
    "walk",
    "workspace_paths",
]

#: Why a name the planner cannot write cannot be planned.
_UNUSABLE = (
    "the local planner cannot write (a control character, bytes that are not UTF-8, or more than 200 "
    "characters in it): rename it in the Files pane first"
)
#: Why a hidden name cannot be planned.
_HIDDEN = "hidden from the local planner (names starting with a dot are not shown to it)"
#: A name in quotes, which may hold spaces ("delete 'my link.txt'").
_QUOTED = re.compile(r"""'([^'\n]+)'|"([^"\n]+)"|`([^`\n]+)`""")


def outside_path(request: str, root: str) -> str | None:
    """Why ``request`` cannot be planned inside the workspace at ``root``, when it names a path that
    is absolute ("delete /tmp/x/keep.txt") or that climbs out of it ("../o/secret.txt"): a plan may
    name only paths relative to the workspace, and a planner asked anyway would pick some other
    file. None when it names no such path. (A web address is no path.)"""
    outside = "it names {}, outside the workspace {}: only files inside it can be changed"
    for raw in REQUEST_TOKEN.findall(request):
        token = shown = raw if raw == ".." else raw.rstrip(".")
        if token.startswith("//"):  # the rest of "https://host/path", cut at the colon
            continue
        # A home directory ("~/.bashrc", "~", "~alice/x") is a path from the root too; a name that
        # only starts with a tilde ("~$budget.xlsx", a lock file) is none.
        if token == "~" or token.startswith("~/") or (token.startswith("~") and posixpath.expanduser(token) != token):
            token = posixpath.expanduser(token)
            if not token.startswith("/"):
                return outside.format(shown, root)
        if token.startswith("/"):
            inside = posixpath.relpath(posixpath.normpath(token), root)
            if inside == ".":
                return f"it names the workspace {shown} by its absolute path: name files relative to it"
            if inside == ".." or inside.startswith("../"):
                return outside.format(shown, root)
            return f"it names {shown} by its absolute path: name it relative to the workspace ({inside})"
        if token == ".." or ("/" in token and posixpath.normpath(token).split("/")[0] == ".."):
            return outside.format(token, root)
    return None


def unseen_path(request: str, root: Path, walked: Walk | None = None) -> str | None:
    """Why ``request`` cannot be planned in the workspace at ``root``, when it names a path there
    (relative, as spelled, or in quotes with its spaces) that the planner does not see: one through
    a symbolic link, a hidden name (``.env``, ``.git``), something that is neither a file nor a
    folder (a FIFO, a socket), or a name it cannot write (an escape sequence in it). None when it
    names no such path; names that do not exist are left to the planner. ``walked``: the workspace
    as :func:`walk` found it, when the caller has walked it already."""
    for raw in [*REQUEST_TOKEN.findall(request), *("".join(quoted) for quoted in _QUOTED.findall(request))]:
        token = raw.strip("\"'`").rstrip(".").rstrip("/")
        if not token or token.startswith("/") or "\x00" in token:
            continue
        parts = [part for part in token.split("/") if part not in ("", ".")]
        if not parts or ".." in parts:
            continue
        place = root
        for depth, part in enumerate(parts):
            place = place / part
            try:
                info = os.lstat(place)
            except (OSError, ValueError, UnicodeError):
                break  # not there (or not a name at all): nothing to say
            shown = "/".join(parts[: depth + 1])
            if not is_usable(part):
                return f"{shown} has a name {_UNUSABLE}"
            if stat.S_ISLNK(info.st_mode):
                return f"{shown} is a symbolic link, which plans never follow or change"
            if part.startswith("."):
                return f"{shown} is {_HIDDEN}"
            if not (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)):
                return f"{shown} is neither a file nor a folder"
            if not stat.S_ISDIR(info.st_mode):
                break
    return _unseen_spaced(request, walked or walk(root))


#: The most entries :func:`walk` looks at; a bigger workspace is looked at up to it.
MAX_SCANNED = 20_000


@dataclass(frozen=True)
class Walk:
    """The entries under a workspace with their relative paths, as :func:`walk` found them."""

    entries: list[tuple[os.DirEntry[str], str]]
    #: False when the walk stopped at :data:`MAX_SCANNED` entries.
    complete: bool


def walk(root: Path) -> Walk:
    """Each entry under ``root`` with its relative path, entering neither a link nor a hidden folder,
    at most :data:`MAX_SCANNED` of them: one walk for :func:`unseen_path` and :func:`workspace_paths`."""
    stack: list[tuple[Path, str]] = [(root, "")]
    found: list[tuple[os.DirEntry[str], str]] = []
    while stack:
        folder, prefix = stack.pop()
        try:
            listing = list(os.scandir(folder))
        except OSError:
            continue
        for entry in listing:
            if len(found) >= MAX_SCANNED:
                return Walk(found, complete=False)
            relative = f"{prefix}{entry.name}"
            found.append((entry, relative))
            try:
                if not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False):
                    stack.append((Path(entry.path), f"{relative}/"))
            except OSError:
                continue
    return Walk(found, complete=True)


def _unseen_spaced(request: str, walked: Walk) -> str | None:
    """Why ``request`` cannot be planned, when it names a link, FIFO, socket or device, or a hidden
    entry, deeper in the workspace than it spells: by its bare name ("delete passwdlink.txt" of
    docs/passwdlink.txt), or without quotes by a name that has a space ("delete my link.txt"), which
    is no one token. Found by looking for the names of those entries in the request, among those
    the walk found."""
    for entry, relative in walked.entries:
        name = entry.name
        if name.startswith("."):
            # (said bare, a hidden name deeper down: "delete .env" of config/.env)
            if "/" in relative and _says(request, name):
                return f"{relative} is {_HIDDEN}"
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode):
            continue
        shown = relative if _says(request, relative) else name if _says(request, name) else None
        if shown is None:
            continue
        if stat.S_ISLNK(info.st_mode):
            return f"{shown} is a symbolic link, which plans never follow or change"
        return f"{shown} is neither a file nor a folder"
    return None


def _says(request: str, name: str) -> bool:
    """Whether ``request`` holds ``name`` whole, not inside a longer name."""
    return re.search(rf"(?<![\w./-]){re.escape(name)}(?!\.?[\w/-])", request) is not None


#: Words after which a file's name is a new one or where things go, not a file the request reads:
#: "to b.txt", "as x.zip", "called a.md", "a new notes.txt", "create todo.md", "in log.txt".
_NEW_NAME = re.compile(
    r"(?:\b(?:to|into|onto|in|inside|as|called|named|create|make|write|touch|save|new|an?|another)|->|=>|\u2192)\s+$",
    re.IGNORECASE,
)


#: The ops of a request that acts only on files that are there.
_ACTS_ON = frozenset(("delete", "move", "copy", "tag", "untag", "extract", "mkdir", "classify"))
#: The most file names of one request :func:`missing_file` looks at.
MAX_NAMES = 64


def workspace_paths(walked: Walk) -> list[str] | None:
    """The relative paths of the files and folders a :func:`walk` found that the planner may see (no
    link followed, no hidden folder entered), or None when it stopped at :data:`MAX_SCANNED`."""
    if not walked.complete:
        return None
    return [relative for entry, relative in walked.entries if not entry.name.startswith(".")]


def unwritable_names(paths: list[str]) -> str | None:
    """What to do about the names among ``paths`` (as :func:`workspace_paths` gives them) that the
    planner cannot write, said when it gave no valid plan: it is never offered them, so in a
    workspace of such names it has none to choose from and invents some. None when there are none."""
    unusable = [path for path in paths if not is_usable(path)]
    if not unusable:
        return None
    one = len(unusable) == 1
    it = "it" if one else "them"
    return (
        f"{len(unusable)} of the {len(paths)} names in the workspace (such as {display_line(unusable[0])[:80]}) "
        f"{'has' if one else 'have'} a control character, bytes that are not UTF-8 or more than 200 characters "
        f"in {it}, which the local planner cannot write: rename {it} in the Files pane first, or say the files "
        "by folder and kind"
    )


def missing_file(request: str, paths: list[str]) -> str | None:
    """Why ``request`` cannot be planned over a workspace of ``paths``, when it names a file to act
    on ("delete docs/missing.txt") that is not there, by its path or its name: a planner decoded under
    the names that are there would pick others ("delete docs/missing.txt" deleted the rest of docs).
    None when every such file is there. A name given as a new one or a destination ("to b.txt", "as
    x.zip", "a new notes.txt", "create todo.md"), one said right after another ("call a.md b.md"),
    one in quotes (what a file is to say), and one of an extension that is no usual file's nor a file
    here has (a web address) are not such files."""
    # (Only where it asks to act on files that are there: a request that writes, renames or makes
    # an archive names new files too, not always where this can tell them apart.)
    ops = referred_ops(request)
    if ops is None or not ops <= _ACTS_ON or not_files(request, {posixpath.dirname(path) for path in paths}):
        return None
    lowered = {path.lower() for path in paths}
    names = {posixpath.basename(path).lower() for path in paths}
    exts = {posixpath.splitext(path)[1].lower() for path in paths} | {*COMMON_EXTS, *ARCHIVE_EXTS}
    text = QUOTED.sub(lambda found: " " * len(found.group(0)), request)
    after_name = -1
    for count, found in enumerate(FILE_NAME.finditer(text)):
        if count >= MAX_NAMES:
            break
        name = found.group(0).strip("()[]").lower()
        follows = after_name >= 0 and not text[after_name : found.start()].strip()
        after_name = found.end()
        if follows or _NEW_NAME.search(text[max(0, found.start() - 40) : found.start()]) or name.startswith("/"):
            continue
        if posixpath.splitext(name)[1] not in exts and not name.endswith(ARCHIVE_EXTS):
            continue
        # (A name with a space is found by its last word: "5.pdf" of "Übungsblatt 5.pdf".)
        if name in lowered or posixpath.basename(name) in names or any(p.endswith(name) for p in lowered):
            continue
        return f"there is no {found.group(0)} in the workspace, nor a file of that name anywhere in it"
    return None if "mkdir" in ops and "extract" not in ops else _missing_folder(text, lowered)


def _missing_folder(text: str, lowered: set[str]) -> str | None:
    """Why a request (``text``, its quotes blanked) that acts on files cannot be planned over the
    workspace paths ``lowered``, when it spells a folder with a slash at its end that is not there
    ("delete olddir/": asked anyway, the planner deleted every file), by its path or its name, and
    not as where things go ("into archive/2026/")."""
    for count, found in enumerate(SPELLED_PATH.finditer(text)):
        if count >= MAX_NAMES:
            break
        spelled = found.group(0).strip(".,;:!?()[]")
        folder = spelled.rstrip("/").lower()
        # (Only a folder said with its slash at the end: "docs/Car" may begin "docs/Car loan.pdf".)
        if not spelled.endswith("/") or not folder or folder.startswith("/") or ".." in folder.split("/"):
            continue
        if _NEW_NAME.search(text[max(0, found.start() - 40) : found.start()]):
            continue
        if folder in lowered or any(path.endswith(f"/{folder}") or path.startswith(f"{folder}/") for path in lowered):
            continue
        return f"there is no {spelled} in the workspace, nor a folder of that name anywhere in it"
    return None


def unwritable_text(request: str) -> str | None:
    """Why ``request`` cannot be planned, when it asks to write text the local planner cannot write:
    quoted or dictated text with a control character in it ('write "hello <ESC>[31mred" to a.txt').
    Asked anyway, the planner, which writes only what the request offers, wrote other words. None
    when it writes no such text, or writes nothing."""
    ops = referred_ops(request)
    if ops is None or not ops & {"write", "append"}:
        return None
    quoted = [text for _, text in QUOTED.findall(request)]
    if any(not text.isprintable() for text in quoted):
        return "the text it asks to write holds a control character, which the local planner cannot write"
    if not quoted and any(not text.isprintable() for text in dictated_lines(request)):
        # (Where no quotes say which words are the text, any may be: the request is what holds it.)
        return (
            "the request holds a control character, which the local planner can neither write nor read "
            "as part of a name: type it without"
        )
    return None
