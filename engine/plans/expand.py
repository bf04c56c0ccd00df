"""Expanding a plan's selections into concrete steps, and checking the result against the policy.

A step that selects files (``match``, or a list of ``paths``) and the ``rename`` and ``classify``
ops are turned here into one concrete step per file: ``mkdir``, ``move``, ``copy``, ``delete``,
``tag``, ``untag`` and ``archive``. The preview, the approval and the journal all see the concrete
plan, so what a person approves is exactly what runs, and undo works step by step as for any
plan. The workspace is read as it is before the plan runs; each concrete step is then checked
again, against the workspace as the earlier steps leave it, by the dry run and the apply.
"""

from __future__ import annotations

import os
import posixpath
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from engine.files.classify import destination, parse_rules
from engine.files.match import Found, MatchError, compile_regex, glob_base, parse_match, read_head, select
from engine.files.rename import Renaming, name_problem
from engine.names import quoted_name
from engine.plans.model import InvalidPlan, PlanProblem, key_parts, normalise, normalise_step
from engine.plans.op_base import is_selection, through_symlink
from engine.plans.op_table import OPS, prepare_step
from engine.plans.policy import Policy
from engine.plans.view import Overlay
from engine.schemas import pointer
from engine.workspace.links import symlink_on_the_way
from engine.workspace.sandbox import SandboxError, Workspace, check_relpath

#: The ops that exist only before expansion.
EXPANDED_ONLY = ("rename", "classify")
#: The start of a temporary name a swap or a chain of renames parks a file under (a fresh tag each expansion).
PARKED = re.compile(r"\.rs-rename-[0-9a-f]{8}-")


class ExpandError(SandboxError):
    """A selection that cannot become concrete steps; ``key`` is the step's key at fault."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(reason)
        self.key = key


@dataclass
class _Context:
    ws: Workspace
    policy: Policy
    now: float
    view: Overlay  # the workspace as the concrete steps so far leave it
    warn: Callable[[str], None] | None = None
    warned: set[str] = field(default_factory=set)
    saw: Callable[[str, os.stat_result], None] | None = None

    def selected(self, path: str, info: os.stat_result | None) -> None:
        """Pass on the ``lstat`` a selection made its choice of ``path`` by, taken before anything of it was read."""
        if self.saw is not None and info is not None:
            self.saw(path, info)

    def say(self, warning: str) -> None:
        """Pass ``warning`` on, once per expansion (two semantic steps may find one index unusable)."""
        if self.warn is not None and warning not in self.warned:
            self.warned.add(warning)
            self.warn(warning)

    def exists(self, path: str) -> bool:
        try:
            return self.view.kind(path) is not None
        except SandboxError:
            return False

    def follow(self, steps: list[dict[str, Any]], start: int) -> None:
        """Simulate ``steps`` in the view, so later steps see what they did (the dry run reports a failing one)."""
        for offset, step in enumerate(steps):
            try:
                OPS[step["op"]].simulate(self.view, prepare_step(self.view, start + offset, normalise_step(step)), step)
            except (SandboxError, OSError):
                return


def needs_expansion(plan: dict[str, Any]) -> bool:
    """Whether any step of ``plan`` selects files or is a rename or classify."""
    return any(_needs(step) for step in plan["steps"])


def _concrete_archive(step: dict[str, Any]) -> bool:
    return step["op"] == "archive" and "paths" in step and not step.get("remove")


def expand_plan(
    root: Path | str, plan: dict[str, Any], policy: Policy | None = None, *, now: float | None = None,
    on_refusal: Callable[[str], None] | None = None, source: str = "plan", warn: Callable[[str], None] | None = None,
    saw: Callable[[str, os.stat_result], None] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Return ``plan`` (validated and normalised) with every selection expanded, checked against ``policy``.

    Raises :class:`InvalidPlan` with every problem (pointers name the steps as written) when a
    selection is empty, too big, conflicting, or the policy refuses the plan; its line starts with
    ``source`` (the plan file, as :func:`engine.plans.model.plan_source` names it). ``on_refusal``
    is called with the first reason before raising (the audit log records it). ``warn`` is called
    with each line a semantic match gives about the file index it could not use as it is (set
    aside, or kept in memory), once each, as the selection is made: before any refusal. ``saw`` is
    called with each entry a selection chose and its ``lstat`` as the selection found it, before
    it read anything of it (a semantic match reads and ranks for a while after): what a preview
    compares the apply's workspace with (:meth:`engine.plans.seen.SeeingView.saw`).
    """
    policy = policy or Policy()
    problems = [PlanProblem(pointer(["steps", i, key] if i >= 0 else ["steps"]), reason)
                for i, key, reason in policy.op_problems(plan)]  # fmt: skip
    concrete: list[dict[str, Any]] = []
    origins: list[int] = []  # the index, in the plan as written, of each concrete step
    with Workspace(root) as ws:
        ctx = _Context(ws, policy, time.time() if now is None else now, Overlay(ws, policy.archive), warn, saw=saw)
        if not problems:
            # Later selections are expanded against what the earlier steps leave: follow those steps.
            last = max((i for i, step in enumerate(plan["steps"]) if _needs(step)), default=-1)
            for index, step in enumerate(plan["steps"]):
                try:
                    steps = _expand_step(ctx, step) if _needs(step) else [step]
                except SandboxError as exc:  # an ExpandError names its key; a refused path is the selection's
                    key = exc.key if isinstance(exc, ExpandError) else _selector(step)
                    problems.append(PlanProblem(pointer(["steps", index, *key_parts(key)]), str(exc)))
                    continue
                if index < last and not problems:
                    ctx.follow(steps, len(concrete))
                concrete += steps
                origins += [index] * len(steps)
        if not problems:
            keys = {name: op.paths for name, op in OPS.items()}
            for index, key, reason in policy.path_problems(ws, concrete, keys):
                written = plan["steps"][origins[index]] if concrete else {}
                key = _selector(written) if key and _needs(written) else key
                where: list[str | int] = ["steps", origins[index], key] if key and concrete else ["steps"]
                problems.append(PlanProblem(pointer(where), reason))
    if problems:
        if on_refusal is not None:
            on_refusal(str(problems[0]))
        raise InvalidPlan(source, problems)
    result = normalise({**plan, "steps": concrete})
    if "expanded_from" not in plan and any(_needs(step) for step in plan["steps"]):
        # The ops as written: what the policy's allow_ops and confirm judge the expanded plan by.
        result["expanded_from"] = sorted({step["op"] for step in plan["steps"]})
    return result


def _needs(step: dict[str, Any]) -> bool:
    return step["op"] in EXPANDED_ONLY or (is_selection(step) and not _concrete_archive(step))


def _expand_step(ctx: _Context, step: dict[str, Any]) -> list[dict[str, Any]]:
    op = step["op"]
    if op in ("move", "copy"):
        return _transfer(ctx, step)
    if op == "delete":
        return [{"op": "delete", "path": found.path} for found in _selected(ctx, step)]
    if op == "rename":
        return _rename(ctx, step)
    if op == "classify":
        return _classify(ctx, step)
    if op in ("tag", "untag"):
        found = _selected(ctx, step)
        for item in found:
            if item.kind != "file":
                raise ExpandError(
                    _selector(step), f"{quoted_name(item.path)} is not a regular file; only files carry tags"
                )
        return [{"op": op, "path": item.path, "tags": list(step["tags"])} for item in found]
    if op == "archive":
        found = _selected(ctx, step)
        paths = [item.path for item in found]
        archive = {"op": "archive", "paths": paths, "to": step["to"], "remove": False}
        return [archive] + ([{"op": "delete", "path": path} for path in paths] if step.get("remove") else [])
    raise ExpandError("op", f"a {op} step cannot select files")


def _selector(step: dict[str, Any]) -> str:
    return "match" if "match" in step else "paths"


def _selected(ctx: _Context, step: dict[str, Any], skip_under: tuple[str, ...] = ()) -> list[Found]:
    """The files a step selects, in path order; raises when there are none or too many."""
    limit = ctx.policy.max_batch
    if "paths" in step:
        writes = any(key.key == "paths" and key.write for key in OPS[step["op"]].paths)
        found = []
        for path in dict.fromkeys(step["paths"]):
            kind = ctx.view.kind(path)
            if kind is None:
                # Where the workspace follows no symlink at all, a path through one is not found: say why.
                link = symlink_on_the_way(ctx.view, path) if writes else None
                missing = f"{quoted_name(path)} does not exist"
                reason = str(through_symlink(ctx.view, link, made=False)) if link else missing
                raise ExpandError("paths", reason)
            info = ctx.ws.lstat(path)
            ctx.selected(path, info)
            size, mtime = (info.st_size, info.st_mtime) if info is not None else (0, ctx.now)
            found.append(Found(path, kind, size, mtime))
        directories = {item.path for item in found if item.kind == "dir"}
        found = [item for item in found if not any(item.path.startswith(d + "/") for d in directories)]
        if len(found) > limit:
            raise ExpandError("paths", f"lists {len(found)} paths, more than the policy's max_batch of {limit}")
        return sorted(found)
    try:
        match = parse_match(step["match"], ctx.now)
    except MatchError as exc:
        raise ExpandError(f"match/{exc.key}", exc.reason) from None
    if skip_under:
        match = type(match)(**{**match.__dict__, "skip_under": skip_under})
    present = ctx.exists if ctx.view.nodes else None  # a semantic match ranks only what is there
    try:
        selection = select(ctx.ws, match, bound=limit + 1, present=present)
    except MatchError as exc:
        raise ExpandError(f"match/{exc.key}", exc.reason) from None
    for warning in selection.warnings:
        ctx.say(warning)
    if ctx.view.nodes:  # earlier steps changed things: what they removed or moved away is not there
        selection.found = [item for item in selection.found if ctx.exists(item.path)]
    if selection.total > limit:
        raise ExpandError("match", f"selects {selection.total} entries, more than the policy's max_batch of {limit};"
                          " narrow it (exclude, limit) or raise [policy] max_batch in the profile")  # fmt: skip
    for item in selection.found:
        ctx.selected(item.path, selection.stats.get(item.path))
    if not selection.found:
        raise ExpandError("match", f"selects nothing: no {match.type if match.type != 'any' else 'entry'} "
                          f"matches {quoted_name(match.glob)} and its filters")  # fmt: skip
    return selection.found


def _join(directory: str, name: str) -> str:
    return name if directory in (".", "") else f"{directory}/{name}"


def _missing_dirs(ctx: _Context, targets: list[str]) -> list[dict[str, Any]]:
    """mkdir steps for the directories the targets need that do not exist (outermost are made with them)."""
    needed = sorted({posixpath.dirname(target) for target in targets} - {""})
    missing = [d for d in needed if not ctx.exists(d)]
    return [{"op": "mkdir", "path": d} for d in missing]


def _check_targets(ctx: _Context, pairs: list[tuple[str, str]], key: str, *, moving: set[str]) -> None:
    """Refuse two sources with one target, and a target that exists (unless it is moved away too)."""
    seen: dict[str, str] = {}
    for source, target in pairs:
        try:
            check_relpath(target, write=True)
        except SandboxError as exc:
            raise ExpandError(key, f"{quoted_name(source)} -> {quoted_name(target)}: {exc}") from None
        if target in seen:
            raise ExpandError(
                key, f"{quoted_name(seen[target])} and {quoted_name(source)} would both become {quoted_name(target)}"
            )
        seen[target] = source
        if target not in moving and ctx.exists(target):
            raise ExpandError(key, f"{quoted_name(source)} would become {quoted_name(target)}, which already exists")


def _transfer(ctx: _Context, step: dict[str, Any]) -> list[dict[str, Any]]:
    op, to = step["op"], step["to"]
    found = _selected(ctx, step, skip_under=(to,) if "match" in step else ())
    base = glob_base(step["match"].get("glob", "**")) if "match" in step else "."  # a semantic match may have none
    pairs = []
    for item in found:
        if step.get("keep_tree"):
            rel = item.path[len(base) + 1 :] if base != "." and item.path.startswith(base + "/") else item.path
        else:
            rel = item.path.rpartition("/")[2]
        target = _join(to, rel)
        if target == item.path:
            continue  # already where it would go
        pairs.append((item.path, target))
    if not pairs:
        raise ExpandError(_selector(step), f"everything it selects is already in {quoted_name(to)}")
    _check_targets(ctx, pairs, "to", moving=set())
    mkdirs = _missing_dirs(ctx, [target for _, target in pairs])
    return mkdirs + [{"op": op, "from": source, "to": target} for source, target in pairs]


def _rename(ctx: _Context, step: dict[str, Any]) -> list[dict[str, Any]]:
    if "template" in step:
        renaming = Renaming(template=step["template"])
        key = "template"
    else:
        try:
            renaming = Renaming(find=compile_regex(step["find"], "find"), replace=step["replace"])
        except MatchError as exc:
            raise ExpandError(exc.key, exc.reason) from None
        key = "replace"
    found = _selected(ctx, step)
    pairs = []
    for n, item in enumerate(found, 1):
        directory, _, name = item.path.rpartition("/")
        parent = directory.rpartition("/")[2] if directory else ctx.ws.root.name
        try:
            new = renaming.new_name(name, n=n, parent=parent, mtime=item.mtime)
        except (ValueError, IndexError, OverflowError) as exc:
            raise ExpandError(key, f"{quoted_name(item.path)}: {exc}") from None
        if why := name_problem(new):
            raise ExpandError(key, f"{quoted_name(item.path)} would be renamed {why}")
        if new != name:
            pairs.append((item.path, _join(directory, new)))
    if not pairs:
        raise ExpandError(key, "no name changes: every selected name stays as it is")
    sources = {source for source, _ in pairs}
    _check_targets(ctx, pairs, key, moving=sources)
    if not any(target in sources for _, target in pairs):
        return [{"op": "move", "from": source, "to": target} for source, target in pairs]
    # A swap or a chain (a -> b while b -> c): every file goes through a free temporary name first.
    tag = secrets.token_hex(4)
    parked = [(source, _join(source.rpartition("/")[0], f".rs-rename-{tag}-{n}"), target)
              for n, (source, target) in enumerate(pairs)]  # fmt: skip
    return ([{"op": "move", "from": source, "to": temp} for source, temp, _ in parked]
            + [{"op": "move", "from": temp, "to": target} for _, temp, target in parked])  # fmt: skip


def _classify(ctx: _Context, step: dict[str, Any]) -> list[dict[str, Any]]:
    try:
        rules = parse_rules(step["rules"])
    except MatchError as exc:
        raise ExpandError(f"rules/{exc.key}", exc.reason) from None
    pairs = []
    for item in _selected(ctx, step):
        if item.kind != "file":
            continue
        directory = destination(rules, item.path, partial(read_head, ctx.ws, item.path))
        if directory is None or directory == (item.path.rpartition("/")[0] or "."):
            continue
        pairs.append((item.path, _join(directory, item.path.rpartition("/")[2])))
    if not pairs:
        raise ExpandError("rules", "no rule moves any selected file (each stays where it is)")
    _check_targets(ctx, pairs, "rules", moving=set())
    mkdirs = _missing_dirs(ctx, [target for _, target in pairs])
    return mkdirs + [{"op": "move", "from": source, "to": target} for source, target in pairs]
