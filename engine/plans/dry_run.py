"""What a plan would change, without changing anything: a summary per step and unified diffs."""

from __future__ import annotations

import difflib
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.plans.apply import new_content
from engine.workspace.sandbox import SandboxError, Workspace


@dataclass(frozen=True)
class StepPreview:
    """One step as it would run: a one-line summary, a diff for text edits, and a problem if it would fail."""

    index: int
    op: str
    summary: str
    diff: str | None = None
    problem: str | None = None

    def as_event(self) -> dict[str, Any]:
        return {"type": "preview", "index": self.index, "op": self.op, "summary": self.summary,
                "diff": self.diff, "problem": self.problem}  # fmt: skip


class _Overlay:
    """The workspace as earlier steps of the plan would leave it (file contents and existence)."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.files: dict[str, bytes | None] = {}
        self.dirs: dict[str, bool] = {}

    def exists(self, path: str) -> bool:
        if path in self.files:
            return self.files[path] is not None
        if path in self.dirs:
            return self.dirs[path]
        return self.ws.lstat(path) is not None

    def is_dir(self, path: str) -> bool:
        if path in self.dirs:
            return self.dirs[path]
        if self.files.get(path) is not None:
            return False
        info = self.ws.lstat(path)
        return info is not None and stat.S_ISDIR(info.st_mode)

    def require_parent(self, path: str) -> None:
        """Raise the error the apply would raise when ``path``'s directory is missing."""
        head = path.rpartition("/")[0]
        # Resolving the path itself first reports an escape (a symlinked parent) as such.
        self.exists(path)
        if head and not self.is_dir(head):
            if self.exists(head):
                raise SandboxError(f"{head!r} is not a directory")
            raise SandboxError(f"the directory {head!r} does not exist (add a mkdir step before)")

    def content(self, path: str) -> bytes | None:
        if path in self.files:
            return self.files[path]
        info = self.ws.lstat(path)
        if info is None:
            return None
        if not stat.S_ISREG(info.st_mode):
            raise SandboxError(f"{path!r} exists and is not a regular file")
        return self.ws.read_bytes(path)


def _diff(path: str, old: bytes | None, new: bytes) -> str:
    try:
        before = (old or b"").decode("utf-8").splitlines(keepends=True)
        after = new.decode("utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return f"binary content of {path} changes\n"
    lines = difflib.unified_diff(before, after, "/dev/null" if old is None else f"a/{path}", f"b/{path}")
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


def preview_plan(root: Path, plan: dict[str, Any]) -> list[StepPreview]:
    """Describe every step of a validated plan against the workspace as it is now."""
    previews = []
    with Workspace(root) as ws:
        overlay = _Overlay(ws)
        for index, step in enumerate(plan["steps"]):
            try:
                previews.append(_preview_step(overlay, index, step))
            except (SandboxError, OSError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                previews.append(StepPreview(index, step["op"], _summary(step), problem=reason))
    return previews


def _summary(step: dict[str, Any]) -> str:
    op = step["op"]
    if op in ("move", "copy"):
        return f"{op} {step['from']} -> {step['to']}"
    if op == "run":
        return "run " + " ".join(step["argv"]) + f" (timeout {step['timeout_s']}s)"
    return f"{op} {step['path']}"


def _preview_step(overlay: _Overlay, index: int, step: dict[str, Any]) -> StepPreview:
    op = step["op"]
    summary = _summary(step)
    for key in ("path", "to"):
        if key in step and op not in ("mkdir", "delete"):
            overlay.require_parent(step[key])
    if op in ("write", "append", "patch"):
        path = step["path"]
        old = overlay.content(path)
        if old is not None and op == "write" and not step["overwrite"]:
            raise SandboxError(f'{path!r} already exists (set "overwrite": true to replace it)')
        if old is None and op == "patch":
            raise SandboxError(f"{path!r} does not exist")
        new = new_content(step, old or b"")
        overlay.files[path] = new
        return StepPreview(index, op, summary, diff=_diff(path, old, new))
    if op == "mkdir":
        # mkdir makes the missing parents too.
        parts = step["path"].split("/")
        for end in range(1, len(parts) + 1):
            overlay.dirs["/".join(parts[:end])] = True
    elif op in ("move", "copy"):
        if not overlay.exists(step["from"]):
            raise SandboxError(f"{step['from']!r} does not exist")
        if overlay.exists(step["to"]):
            raise SandboxError(f"{step['to']!r} already exists")
        if step["from"] in overlay.files:
            overlay.files[step["to"]] = overlay.files[step["from"]]
        else:
            overlay.dirs[step["to"]] = True
        if op == "move":
            overlay.files[step["from"]] = None
            overlay.dirs[step["from"]] = False
    elif op == "delete":
        if not overlay.exists(step["path"]):
            raise SandboxError(f"{step['path']!r} does not exist")
        overlay.files[step["path"]] = None
        overlay.dirs[step["path"]] = False
    return StepPreview(index, op, summary)
