"""A profile's ``[policy]``: what plans may never touch, which ops always ask, and how much one plan may do.

::

    [policy]
    deny = ["**/*.exe", "secrets/**"]   # paths no plan touches (any case), refused with the rule
    confirm = ["delete", "rename"]      # ops that always wait for a person, even under approval "auto"
    allow_ops = ["move", "tag"]         # when set, only these ops
    max_batch = 1000                    # files one plan may touch
    max_extract_mb = 1024               # an archive to extract may unpack to at most this much
    max_extract_entries = 10000         # ... and hold at most this many entries

A deny rule is checked against every path a step names, everything beneath a directory a step
moves, copies, deletes or archives, and every entry an archive would extract.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.files.archives import ArchiveError, ArchiveLimits, archive_format, read_members
from engine.kinds import ApprovalMode
from engine.names import quoted_name
from engine.plans.op_base import PathKey
from engine.plans.view import open_regular
from engine.workspace.globs import glob_regex
from engine.workspace.sandbox import SandboxError, Workspace

DEFAULT_MAX_BATCH = 1000
#: How far the files a plan touches are counted (directories counting what is in them).
_COUNT_BOUND = 1_000_000
#: Ops whose directories are walked for denied paths beneath them.
_CARRIES_TREE = ("move", "copy", "delete", "archive")


@dataclass(frozen=True)
class Policy:
    """The rules a profile sets for plans; the default denies nothing and asks nothing extra."""

    deny: tuple[str, ...] = ()
    confirm: tuple[str, ...] = ()
    allow_ops: tuple[str, ...] | None = None
    max_batch: int = DEFAULT_MAX_BATCH
    archive: ArchiveLimits = field(default_factory=ArchiveLimits)

    @classmethod
    def from_profile(cls, table: Mapping[str, Any] | None) -> Policy:
        """The policy of a profile's ``[policy]`` table (already checked by the profile schema)."""
        table = table or {}
        limits = ArchiveLimits(
            max_bytes=int(table.get("max_extract_mb", ArchiveLimits.max_bytes >> 20)) << 20,
            max_entries=int(table.get("max_extract_entries", ArchiveLimits.max_entries)),
        )
        allow = table.get("allow_ops")
        return cls(tuple(table.get("deny", ())), tuple(table.get("confirm", ())),
                   None if allow is None else tuple(allow), int(table.get("max_batch", DEFAULT_MAX_BATCH)),
                   limits)  # fmt: skip

    def denied_by(self, path: str) -> str | None:
        """The deny rule that ``path`` falls under, or None."""
        for rule in self.deny:
            if glob_regex(rule, ignore_case=True).match(path):
                return rule
            if rule.endswith("/**") and glob_regex(rule[:-3], ignore_case=True).match(path):
                return rule
        return None

    def confirms(self, plan: Mapping[str, Any]) -> list[str]:
        """The ops of ``plan`` (as written, or expanded) that the policy says always need a person's yes."""
        ops = {step.get("op") for step in plan.get("steps", ())} | set(plan.get("expanded_from", ()))
        return [op for op in self.confirm if op in ops]

    def op_problems(self, plan: Mapping[str, Any]) -> list[tuple[int, str, str]]:
        """(step index, key, reason) for each op as written that ``allow_ops`` leaves out.

        A plan already expanded is judged by the ops it was written with (``expanded_from``): the
        ``mkdir`` a move needs, the moves a rename becomes and the deletes of an archive's
        ``remove`` belong to the op that was allowed.
        """
        if self.allow_ops is None:
            return []
        allowed = ", ".join(self.allow_ops) or "none"
        written = plan.get("expanded_from")
        if written is not None:
            return [(-1, "", f"the plan was written with {op!r}, and the policy allows only these ops: {allowed}")
                    for op in written if op not in self.allow_ops]  # fmt: skip
        return [(index, "op", f"the policy allows only these ops: {allowed}")
                for index, step in enumerate(plan["steps"]) if step["op"] not in self.allow_ops]  # fmt: skip

    def path_problems(
        self, ws: Workspace, steps: list[dict[str, Any]], keys: Mapping[str, tuple[PathKey, ...]]
    ) -> list[tuple[int, str, str]]:
        """(concrete step index, key, reason) for each denied path and a plan over ``max_batch``."""
        problems: list[tuple[int, str, str]] = []
        touched = _count_files(ws, _touched(steps), _COUNT_BOUND)
        if touched > self.max_batch:
            count = f"more than {_COUNT_BOUND:,}" if touched > _COUNT_BOUND else f"{touched:,}"
            problems.append((0, "", f"the plan touches {count} files, more than the policy's max_batch of "
                             f"{self.max_batch:,}; narrow it, or raise [policy] max_batch in the profile"))  # fmt: skip
        if not self.deny:
            return problems
        for index, step in enumerate(steps):
            named = list(_named_paths(step, keys.get(step["op"], ())))
            if step["op"] == "extract":
                named += [
                    ("from", name if step["to"] == "." else f"{step['to']}/{name}")
                    for name in self._archive_names(ws, step["from"])
                ]
            for key, path in named:
                found = self._denied_at(ws, path, deep=step["op"] in _CARRIES_TREE)
                real = _resolved(ws, path)
                if found is None and real is not None and real != path:
                    # Through a symlinked directory: the rules hold for where the path really leads.
                    found = self._denied_at(ws, real, deep=step["op"] in _CARRIES_TREE)
                if found is not None:
                    problems.append((index, key, found))
                    break
        return problems

    def _archive_names(self, ws: Workspace, path: str) -> list[str]:
        """The entries of the archive at ``path`` (none when it cannot be read: the step itself says why)."""
        fmt = archive_format(path)
        if fmt is None:
            return []
        try:
            fd = open_regular(ws, path)
        except (OSError, SandboxError):
            return []
        try:
            return [member.name for member in read_members(fd, fmt, self.archive)]
        except (ArchiveError, OSError):
            return []
        finally:
            os.close(fd)

    def _denied_at(self, ws: Workspace, path: str, *, deep: bool) -> str | None:
        """Why ``path`` (and, with ``deep``, everything under it) may not be touched, or None."""
        rule = self.denied_by(path)
        if rule is not None:
            return f"{quoted_name(path)} is denied by the policy rule {rule!r}"
        if not deep:
            return None
        walk = _Beneath(ws, path)
        for inner in walk:
            rule = self.denied_by(inner)
            if rule is not None:
                return f"{quoted_name(inner)} is denied by the policy rule {rule!r}"
        if walk.unfinished is not None:
            return (f"{quoted_name(walk.unfinished)} could not be read to the end, so what is under "
                    f"{quoted_name(path)} cannot be checked against the deny rules; narrow the step")  # fmt: skip
        return None


def waits_for_approval(mode: ApprovalMode, plan: Mapping[str, Any], policy: Policy | None = None) -> bool:
    """Return whether ``plan`` stops for the user's answer under approval ``mode`` (the one rule).

    ``never`` only shows plans; ``all`` applies them and ``auto`` asks for plans with a run step,
    both asking too for a plan with an op the ``policy`` says always needs a person's yes;
    ``ask`` asks for every plan. An answer given on resume for that very plan still beats the mode.
    """
    if mode == "never":
        return False
    if policy is not None and policy.confirms(plan):
        return True
    if mode == "all":
        return False
    return mode == "ask" or any(step["op"] == "run" for step in plan["steps"])


def _touched(steps: list[dict[str, Any]]) -> set[str]:
    """The files a concrete plan changes (or archives), each once; a rename's parking names are not files."""
    found: set[str] = set()
    for step in steps:
        op = step["op"]
        if op in ("move", "copy", "extract"):
            found.add(step["from"])
        elif op == "archive":
            found.update(step.get("paths", ()))
        elif op not in ("mkdir", "run") and "path" in step:
            found.add(step["path"])
    return {path for path in found if not path.rpartition("/")[2].startswith(".rs-rename-")}


def _named_paths(step: Mapping[str, Any], keys: tuple[PathKey, ...]) -> Iterator[tuple[str, str]]:
    for key in keys:
        value = step.get(key.key)
        if isinstance(value, str):
            yield key.key, value
        elif key.many and isinstance(value, list):
            yield from ((key.key, item) for item in value if isinstance(item, str))


class _Beneath:
    """Every path under the directory ``path`` (nothing when it is not one), never following a symlink.

    ``unfinished`` names what could not be walked (a directory that cannot be read, or the walk's
    bound reached), so that a check over the tree can refuse rather than pass what it did not see.
    """

    def __init__(self, ws: Workspace, path: str, bound: int = 200_000) -> None:
        self.ws, self.path, self.bound = ws, path, bound
        self.unfinished: str | None = None

    def __iter__(self) -> Iterator[str]:
        try:
            info = self.ws.lstat(self.path)
        except SandboxError:
            return  # outside, or through a symlink: the step's own checks refuse it
        if info is None or not stat.S_ISDIR(info.st_mode):
            return
        stack, seen = [self.path], 0
        while stack:
            directory = stack.pop()
            try:
                entries = list(self.ws.scandir(directory))
            except (SandboxError, OSError):
                self.unfinished = directory
                return
            for entry in entries:
                seen += 1
                if seen > self.bound:
                    self.unfinished = self.path
                    return
                child = f"{directory}/{entry.name}"
                yield child
                if entry.kind == "directory":
                    stack.append(child)


def _count_files(ws: Workspace, paths: set[str], limit: int) -> int:
    """How many files ``paths`` stand for, a directory counting what is in it (counting stops past ``limit``)."""
    count = 0
    for path in paths:
        count += 1
        if count > limit:
            break
        for _inner in _Beneath(ws, path, bound=limit + 1):
            count += 1
            if count > limit:
                break
    return count


def _resolved(ws: Workspace, path: str) -> str | None:
    """``path`` with its directory resolved (symlinks followed, beneath the root); None when it is not there."""
    head, _, name = path.rpartition("/")
    try:
        fd = ws.open(head or ".", os.O_PATH | os.O_DIRECTORY)
    except SandboxError:
        return None
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    finally:
        os.close(fd)
    root = str(ws.root)
    if real == root:
        return name
    if real.startswith(root.rstrip("/") + "/"):
        return f"{real[len(root.rstrip('/')) + 1 :]}/{name}"
    return None
