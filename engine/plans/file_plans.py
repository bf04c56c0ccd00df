"""Plans for the file manager's operations: every change the Files pane makes is one of these.

They are pure functions of the request and the workspace's current state, so each operation
shows in ``plan history`` and can be undone like any other plan.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from enum import Enum
from typing import Any

from engine.names import display_name, quoted_name
from engine.plans.model import normalise, plan_problems
from engine.plans.op_base import refuse_symlinks_on_the_way
from engine.plans.view import WorkspaceView
from engine.workspace.sandbox import SandboxError, Workspace, check_relpath


class Conflict(Enum):
    """What to do when the target of a copy or move already exists."""

    OVERWRITE = "overwrite"
    SKIP = "skip"
    RENAME = "rename"


def join(directory: str, name: str) -> str:
    """Join a workspace-relative directory and a name (the root is ``"."``)."""
    if "/" in name or name in ("", ".", ".."):
        raise SandboxError(f"{quoted_name(name)} is not a valid file name")
    return name if directory in (".", "") else f"{directory}/{name}"


def goal_text(goal: str) -> str:
    """Return ``goal``, which names files, as a goal: every name in it spelled as the screen shows
    names (:func:`engine.names.display_name`: ``\\xff`` for a byte that is not UTF-8, ``\\x1b``,
    ``\\n``, a backslash doubled), once, here. A goal is shown with
    :func:`engine.names.display_line`, which leaves this text as it is; the steps keep the names."""
    return display_name(goal)


def _plan(goal: str, steps: list[dict[str, Any]]) -> dict[str, Any]:
    document = {"version": 1, "goal": goal_text(goal), "steps": steps}
    problems = plan_problems(document)
    if problems:
        raise SandboxError(f"{problems[0].reason}")
    return normalise(document)


def new_file(directory: str, name: str) -> dict[str, Any]:
    """A plan creating an empty file (never replacing one)."""
    return _plan(f"new file {name}", [{"op": "write", "path": join(directory, name), "content": ""}])


def new_directory(directory: str, name: str) -> dict[str, Any]:
    """A plan creating a directory."""
    return _plan(f"new directory {name}", [{"op": "mkdir", "path": join(directory, name)}])


def rename(directory: str, old: str, new: str) -> dict[str, Any]:
    """A plan renaming one entry inside its directory."""
    return _plan(f"rename {old} to {new}", [{"op": "move", "from": join(directory, old), "to": join(directory, new)}])


def outermost(paths: list[str]) -> list[str]:
    """``paths`` without those inside another of them (a marked directory carries its marked files)."""
    chosen = set(paths)
    return [path for path in dict.fromkeys(paths) if not any(
        path.startswith(other + "/") for other in _ancestors(path) if other in chosen)]  # fmt: skip


def _ancestors(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:end]) for end in range(1, len(parts))]


def delete(paths: list[str]) -> dict[str, Any]:
    """A plan moving entries to the workspace trash (one step; the policy's max_batch applies to it)."""
    paths = outermost(paths)
    label = paths[0] if len(paths) == 1 else f"{len(paths)} entries"
    if len(paths) == 1:
        return _plan(f"delete {label}", [{"op": "delete", "path": paths[0]}])
    return _plan(f"delete {label}", [{"op": "delete", "paths": paths}])


def write_file(path: str, content: str, *, if_sha256: str | None = None) -> dict[str, Any]:
    """A plan replacing a file's content (what an edit in $EDITOR becomes). With ``if_sha256``,
    the write is refused, under the workspace lock, unless the file still has that digest."""
    step: dict[str, Any] = {"op": "write", "path": path, "content": content, "overwrite": True}
    if if_sha256 is not None:
        step["if_sha256"] = if_sha256
    return _plan(f"edit {path}", [step])


def keep_edit(ws: Workspace, path: str, content: str) -> dict[str, Any]:
    """A plan keeping an edit of ``path`` that could not be applied: a new file beside it,
    ``stem (edited).ext`` (or ``stem (edited) (N).ext`` when that is taken), never replacing one."""
    directory, _, name = path.rpartition("/")
    directory = directory or "."
    stem, ext = _split_name(name)
    kept = join(directory, free_name(ws, directory, f"{stem} (edited){ext}"))
    return _plan(f"keep the edit of {path} as {kept}", [{"op": "write", "path": kept, "content": content}])


def free_name(ws: Workspace, directory: str, name: str, taken: set[str] | None = None) -> str:
    """Return ``name``, or ``stem (N).ext`` with the smallest N that is free in ``directory``."""
    taken = taken or set()
    stem, ext = _split_name(name)
    candidate, number = name, 1
    while ws.lstat(join(directory, candidate)) is not None or join(directory, candidate) in taken:
        candidate = f"{stem} ({number}){ext}"
        number += 1
    return candidate


def _split_name(name: str) -> tuple[str, str]:
    """``name`` as stem and extension (``.bashrc`` has no extension)."""
    return posixpath.splitext(name) if not name.startswith(".") or name.count(".") > 1 else (name, "")


def conflicts(ws: Workspace, sources: list[str], target_dir: str) -> list[tuple[str, str]]:
    """Return the (source, target) pairs of a copy or move whose target already exists.

    Raises :class:`SandboxError` when ``target_dir`` is, or goes through, a symlinked directory:
    nothing is put there (the plan would be refused), so there is nothing to ask about.
    """
    refuse_symlinks_on_the_way(WorkspaceView(ws), check_relpath(target_dir), made=True, inclusive=True)
    return [
        (source, join(target_dir, posixpath.basename(source)))
        for source in sources
        if ws.lstat(join(target_dir, posixpath.basename(source))) is not None
    ]


def transfer(
    ws: Workspace, op: str, sources: list[str], target_dir: str, choose: Callable[[str, str], Conflict]
) -> dict[str, Any] | None:
    """A plan copying or moving ``sources`` into ``target_dir``; ``choose`` settles each conflict.

    Returns None when nothing is left to do (every conflict skipped, or sources already there).
    """
    assert op in ("copy", "move")
    target_dir = check_relpath(target_dir)
    steps: list[dict[str, Any]] = []
    planned: set[str] = set()
    for source in sources:
        name = posixpath.basename(source)
        target = join(target_dir, name)
        if target == source:
            if op == "move":
                continue
            target = join(target_dir, free_name(ws, target_dir, name, planned))
        elif ws.lstat(target) is not None or target in planned:
            choice = choose(source, target)
            if choice is Conflict.SKIP:
                continue
            if choice is Conflict.RENAME:
                target = join(target_dir, free_name(ws, target_dir, name, planned))
            else:
                steps.append({"op": "delete", "path": target})
        planned.add(target)
        steps.append({"op": op, "from": source, "to": target})
    if not steps:
        return None
    label = sources[0] if len(sources) == 1 else f"{len(sources)} entries"
    return _plan(f"{op} {label} to {target_dir}", steps)


def bulk_rename(directory: str, names: list[str], edited: str) -> dict[str, Any] | None:
    """A plan renaming ``names`` to the lines of ``edited`` (one new name per line, same order).

    Only ``"\n"`` ends a line, so a name may hold any other character (a form feed, U+2028, ...).
    ``names`` must not hold ``"\n"`` or ``"\r"``. Swaps and cycles work: every renamed entry goes
    through a temporary name first. Returns None when nothing changed; raises
    :class:`SandboxError` on a wrong line count, a new name holding ``"\r"`` or duplicate names.
    """
    new_names = _edited_lines(edited)
    if len(new_names) != len(names):
        raise SandboxError(f"expected {len(names)} names, one per line, and got {len(new_names)}; nothing renamed")
    changes = [(old, new) for old, new in zip(names, new_names, strict=True) if old != new]
    if not changes:
        return None
    finals = [new for _, new in changes]
    kept = set(names) - {old for old, _ in changes}
    clash = next((n for n in finals if finals.count(n) > 1 or n in kept), None)
    if clash is not None:
        raise SandboxError(f"two entries would be named {quoted_name(clash)}; nothing renamed")
    steps: list[dict[str, Any]] = []
    for index, (old, _) in enumerate(changes):
        steps.append({"op": "move", "from": join(directory, old), "to": join(directory, f".rs-rename-{index}")})
    for index, (_, new) in enumerate(changes):
        steps.append({"op": "move", "from": join(directory, f".rs-rename-{index}"), "to": join(directory, new)})
    return _plan(f"rename {len(changes)} entries", steps)


def _edited_lines(edited: str) -> list[str]:
    """Return the lines of an edited list of names, split on ``"\n"`` alone.

    ``str.splitlines`` would also split on form feeds, U+001C..U+001E, U+0085 and U+2028/U+2029,
    which may be part of a file name. The names offered never hold ``"\r"``, so a ``"\r"`` ending
    every line can only be an editor saving CRLF endings, and is dropped; any other ``"\r"`` is
    refused rather than guessed at (a stray one from mixed endings, or typed into a name).
    """
    text = edited[:-1] if edited.endswith("\n") else edited
    lines = text.split("\n") if text else []
    if lines and all(line.endswith("\r") for line in lines):
        lines = [line[:-1] for line in lines]
    held = next((line for line in lines if "\r" in line), None)
    if held is not None:
        raise SandboxError(f"the new name {quoted_name(held)} holds a carriage return; nothing renamed")
    return lines
