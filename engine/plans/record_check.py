"""Checking a journal's step records against its plan, before undo or recovery acts on them.

Undo, crash recovery and ``trash restore`` write to the paths that records name. The state
directory is only a directory in the workspace: a cloned repository or an archive can carry a
``.routeshell/`` made by hand. So a record is trusted only as far as a plan is: the paths of
its step must pass the plan rules (no ``.git`` at any depth, no state directory, nothing
outside), and the record must be the one its step makes, naming the same paths.
"""

from __future__ import annotations

from typing import Any

from engine.names import quoted_name
from engine.plans.model import path_values
from engine.plans.op_table import OPS
from engine.workspace.sandbox import SandboxError, check_relpath

#: The keys of a record that name a path of its step, with the same value as in the step.
STEP_KEYS = ("path", "from", "to", "paths")


def record_problem(steps: list[Any], records: list[dict[str, Any]]) -> str | None:
    """Return what is wrong with ``records`` as the records of a plan's ``steps``, or None.

    Record ``n`` is step ``n``'s: the same op, the same paths (a mkdir's ``created`` are leading
    parts of its path; an extract's ``entries`` are names in its folder), and the step's paths
    pass the plan rules for what it reads and writes.
    """
    if len(records) > len(steps):
        return f"it has {len(records)} step records for a plan of {len(steps)} steps"
    for index, record in enumerate(records):
        step = steps[index]
        where = f"record {index + 1}"
        if record.get("i") != index:
            return f"{where} is for step {record.get('i')!r}, not step {index}"
        if not isinstance(step, dict) or not isinstance(step.get("op"), str) or step["op"] not in OPS:
            return f"step {index + 1} of its plan is not a plan step"
        if record.get("op") != step["op"]:
            return f"{where} is a {record.get('op')!r} step, but step {index + 1} of its plan is {step['op']!r}"
        problem = _step_paths_problem(step) or _record_paths_problem(step, record)
        if problem:
            return f"{where} ({step['op']}): {problem}"
    return None


def _step_paths_problem(step: dict[str, Any]) -> str | None:
    """The first path of ``step`` that the plan rules refuse (as validation would), or None."""
    for key, _, path in path_values(OPS[step["op"]].paths, step):
        try:
            check_relpath(path, write=key.write)
        except SandboxError as exc:
            return str(exc)
    return None


def _record_paths_problem(step: dict[str, Any], record: dict[str, Any]) -> str | None:
    for key in STEP_KEYS:
        if key in record and record[key] != step.get(key):
            return f"it names {key} {_shown(record[key])}, but its step names {_shown(step.get(key))}"
    created = record.get("created")
    if step["op"] == "mkdir":
        parts = str(step.get("path")).split("/")
        leading = {"/".join(parts[:end]) for end in range(1, len(parts) + 1)}
        if not isinstance(created, list) or any(directory not in leading for directory in created):
            return f"the directories it made ({_shown(created)}) are not on its path {_shown(step.get('path'))}"
    entries = record.get("entries")
    if entries is not None:
        if not isinstance(entries, list) or not all(isinstance(name, str) for name in entries):
            return "its entries are not a list of names"
        for name in entries:
            if name in ("", ".", "..") or "/" in name:
                return f"{quoted_name(name)} is not a name in {_shown(record.get('to'))}"
            try:
                check_relpath(f"{record.get('to')}/{name}", write=True)
            except SandboxError as exc:
                return str(exc)
    return None


def _shown(value: object) -> str:
    """A path (or a list of them) a record or step names, quoted as messages quote names; anything
    else a crafted journal holds there, as Python writes it."""
    if isinstance(value, str):
        return quoted_name(value)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return "[" + ", ".join(map(quoted_name, value)) + "]"
    return repr(value)
