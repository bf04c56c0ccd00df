"""What a plan does to a case's workspace, through the real engine, in a scratch directory.

:func:`plan_effect` makes the case's fixture under a fresh directory, validates the plan as a
planner reply (:func:`reply_problems`: file ops only, never a command or a patch; an empty step
list means "nothing to do"), and only then expands and applies it with the journal, the policy
and every check a plan from an agent goes through, and returns the tree it left. Two plans have
the same effect when the trees are equal: names, contents and tags.
"""

from __future__ import annotations

import calendar
import copy
import datetime as dt
import errno
import json
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from engine.errors import RouteshellError, errno_of
from engine.files.archives import FORMATS
from engine.names import display_line
from engine.planner.fixtures import Entry, Fixture, materialize, snapshot
from engine.planner.prompt import ARCHIVE_SUFFIX, base_reply_schema, one_way
from engine.plans.apply import apply_plan
from engine.plans.expand import expand_plan
from engine.plans.model import normalise, plan_problems
from engine.plans.policy import Policy
from engine.schemas import bounded_errors, describe_error, pointer


def noon(day: dt.date) -> float:
    """The POSIX time of noon UTC on ``day``: "now" for a case."""
    return float(calendar.timegm(dt.datetime.combine(day, dt.time(12)).timetuple()))


@dataclass
class Effect:
    """What became of one plan: whether it was valid, refused (and why), and the tree it left."""

    valid: bool
    refused: str | None = None
    tree: dict[str, Entry] = field(default_factory=dict)
    before: dict[str, Entry] = field(default_factory=dict)

    @property
    def applied(self) -> bool:
        return self.valid and self.refused is None


def reply_problems(plan: Any) -> list[str]:
    """Problems of ``plan`` as a planner reply, each as ``pointer: reason``; empty when it is one.

    A planner reply is a plan (the plan schema and its path rules), except that it may have no
    steps, under the planner reply schema (:func:`~engine.planner.prompt.reply_schema`): file ops
    only (no ``run``, no ``patch``), the keys a planner writes, at most so many steps, paths and
    tags. The path rules come first, since they say plainly why a path is refused."""
    probe = plan
    if isinstance(plan, dict) and plan.get("steps") == []:
        probe = {**plan, "steps": [{"op": "mkdir", "path": "x"}]}
    problems = [f"{problem.pointer or '/'}: {problem.reason}" for problem in plan_problems(probe)]
    if problems:
        return problems
    # The schema before its alternatives first: its errors name the key at fault ("must be one of").
    for checker in _reply_validators():
        if errors := bounded_errors(checker, plan, "steps"):
            return [_reply_problem(error) for error in errors]
    return []


def _reply_problem(error: Any) -> str:
    where, reason = describe_error(error)
    if error.validator in ("anyOf", "oneOf") and "description" not in error.schema:
        reason = "fits none of the forms the planner reply schema gives this step"
    return f"{pointer(where)}: {reason}"


@cache
def _reply_validators() -> tuple[Any, Any]:
    """Validators of the planner reply schema, before and after :func:`one_way`.

    An archive name the planner makes up is a plain one, but the schemas narrowed to a request also
    offer the folders of the workspace, whatever their names ("Café & Co/2024.zip"): here an archive
    is any path the plan's rules allow that ends in a suffix the archive ops read."""
    from jsonschema import Draft202012Validator

    schema = base_reply_schema()
    defs = schema["$defs"]
    archive = {
        **defs["path"],
        "pattern": ARCHIVE_SUFFIX,
        "description": f"a path that ends in {' or '.join('.' + name for name in FORMATS)}",
    }
    defs["archive"]["properties"]["to"] = archive
    defs["extract"]["properties"]["from"] = archive
    return Draft202012Validator(schema), Draft202012Validator(one_way(copy.deepcopy(schema)))


def repetitions(plan: Any) -> list[str]:
    """Where ``plan`` repeats itself: a step the same as an earlier one, a list with an item twice.

    A plan that does so is valid, but from the planner model it is the sign of an answer that
    went round in circles ("make done, shared and shared" for "done, keep and shared"): the agent
    asks again (see :func:`agents.roles.ask_role`) and keeps it only when no retry does better.
    Linear in the size of the plan (items are compared by their canonical JSON)."""
    steps = plan.get("steps") if isinstance(plan, dict) else None
    if not isinstance(steps, list):
        return []
    found = _repeated_items(steps, "/steps", top=True)
    for index, step in enumerate(steps):
        found += _repeated_within(step, f"/steps/{index}")
    return found


def without_repeated_steps(plan: Any) -> Any:
    """``plan`` with each step that is the same as an earlier one left out (the first kept); the
    plan itself when it repeats no step. (A repeated delete, move or tag fails or does nothing.)"""
    steps = plan.get("steps") if isinstance(plan, dict) else None
    if not isinstance(steps, list):
        return plan
    seen: set[str] = set()
    kept = []
    for step in steps:
        key = json.dumps(step, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            kept.append(step)
    return plan if len(kept) == len(steps) else {**plan, "steps": kept}


def _repeated_items(items: list[Any], where: str, *, top: bool = False) -> list[str]:
    first: dict[str, int] = {}
    found = []
    for index, item in enumerate(items):
        key = json.dumps(item, sort_keys=True, default=str)
        if key in first:
            found.append(f"{where}/{index}: the same as {'step' if top else 'item'} {first[key]}")
        else:
            first[key] = index
    return found


def _repeated_within(value: Any, where: str) -> list[str]:
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in _repeated_within(item, f"{where}/{key}")]
    if isinstance(value, list):
        return _repeated_items(value, where) + [
            found for index, item in enumerate(value) for found in _repeated_within(item, f"{where}/{index}")
        ]
    return []


class ScratchError(RouteshellError):
    """A case's workspace could not be written where temporary files go (a full disk, a file system
    without extended attributes): the environment's failure, not the case's (exit code 1)."""


#: What a plan's apply fails with when the scratch file system is at fault, not the plan: the same
#: plan applies on a disk with room and extended attributes.
ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.ENOTSUP, errno.EOPNOTSUPP})


def scratch_error(exc: BaseException, where: Path) -> ScratchError:
    """The one line of :class:`ScratchError` for ``exc``, met writing a case's workspace under ``where``."""
    code = errno_of(exc)
    shown = display_line(str(where))[:200]
    if code in (errno.ENOTSUP, errno.EOPNOTSUPP):
        why = "its file system does not support extended attributes (where files keep their tags)"
        fix = "a directory on one that does (ext4, xfs, btrfs; tmpfs from Linux 6.6)"
    elif code in (errno.ENOSPC, errno.EDQUOT):
        why, fix = "no space left on the device", "a directory on a disk with room"
    else:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        why, fix = display_line(reason)[:200], "a directory you can write"
    return ScratchError(f"cannot write the cases' workspaces in {shown}: {why}; set TMPDIR to {fix}")


@contextmanager
def scratch_writes(where: Path) -> Iterator[None]:
    """Turn an OSError met making a case's workspace under ``where`` into :class:`ScratchError`:
    the case's data is checked when it is read, so what fails here is the disk."""
    try:
        yield
    except OSError as exc:
        raise scratch_error(exc, where) from None


def plan_effect(
    fixture: Fixture, today: dt.date, plan: Any, *, scratch: Path | None = None, policy: Policy | None = None
) -> Effect:
    """Apply ``plan`` to a fresh copy of ``fixture`` as of ``today`` and return what it left.

    Raises :class:`ScratchError` when the workspace cannot be written there (a full disk, no extended
    attributes), whether making it or applying the plan: a plan is refused only for what it asks."""
    owned = scratch is None
    with scratch_writes(Path(tempfile.gettempdir())):
        base = Path(tempfile.mkdtemp(prefix="routeshell-case-")) if scratch is None else scratch
    root = base / "workspace"
    try:
        now = noon(today)
        with scratch_writes(base.parent):
            if root.exists():
                shutil.rmtree(root)
            root.mkdir(parents=True)
            materialize(fixture, root, now)
            before = snapshot(root)
        problems = reply_problems(plan)
        if problems:
            return Effect(False, refused=problems[0], tree=before, before=before)
        if not plan["steps"]:
            return Effect(True, tree=before, before=before)
        try:
            concrete = expand_plan(root, normalise(plan), policy or Policy(), now=now)
            apply_plan(root, concrete, policy=policy or Policy(), origin="planner-eval")
        except (RouteshellError, OSError) as exc:
            if errno_of(exc) in ENVIRONMENT_ERRNOS:
                raise scratch_error(exc, base.parent) from None
            refused = str(exc) or type(exc).__name__
            with scratch_writes(base.parent):
                return Effect(True, refused=refused, tree=snapshot(root), before=before)
        with scratch_writes(base.parent):
            return Effect(True, tree=snapshot(root), before=before)
    finally:
        if owned:
            shutil.rmtree(base, ignore_errors=True)


def same_effect(got: Mapping[str, Entry], want: Mapping[str, Entry]) -> bool:
    return dict(got) == dict(want)
