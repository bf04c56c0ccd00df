"""Plans: JSON documents of file operations, checked against ``plan.schema.json`` and the sandbox rules."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import UsageError
from engine.schemas import describe_error, pointer, validator
from engine.workspace.sandbox import SandboxError, check_relpath

# Which keys of each op name paths, and whether the step changes what is there.
PATH_KEYS: dict[str, tuple[tuple[str, bool], ...]] = {
    "mkdir": (("path", True),),
    "write": (("path", True),),
    "append": (("path", True),),
    "patch": (("path", True),),
    "move": (("from", True), ("to", True)),
    "copy": (("from", False), ("to", True)),
    "delete": (("path", True),),
    "run": (),
}


@dataclass(frozen=True)
class PlanProblem:
    """One reason a plan is invalid: where (a JSON pointer) and why, in plain words."""

    pointer: str
    reason: str

    def __str__(self) -> str:
        return f"{self.pointer}: {self.reason}"


class InvalidPlan(UsageError):
    """A plan that failed validation; ``problems`` lists every reason."""

    def __init__(self, source: str, problems: list[PlanProblem]) -> None:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{source}: invalid plan at {first}{more}")
        self.problems = problems


def plan_problems(document: Any) -> list[PlanProblem]:
    """Return every problem of ``document`` as a plan v1: schema errors, then sandbox path rules."""
    errors = sorted(validator("plan").iter_errors(document), key=lambda e: list(e.absolute_path))
    problems = []
    for error in errors:
        path, reason = describe_error(error)
        problems.append(PlanProblem(pointer(path), reason))
    reported = {problem.pointer for problem in problems}
    steps = document.get("steps") if isinstance(document, dict) else None
    for index, step in enumerate(steps if isinstance(steps, list) else []):
        if not isinstance(step, dict) or step.get("op") not in PATH_KEYS:
            continue
        for key, write in PATH_KEYS[step["op"]]:
            where = pointer(["steps", index, key])
            if not isinstance(step.get(key), str) or where in reported:
                continue
            try:
                check_relpath(step[key], write=write)
            except SandboxError as exc:
                problems.append(PlanProblem(where, str(exc)))
    return sorted(problems, key=_pointer_order)


def _pointer_order(problem: PlanProblem) -> list[tuple[int, int, str]]:
    # Steps in numeric order (/steps/10 after /steps/9), keys alphabetically.
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in problem.pointer.split("/")]


def normalise(document: dict[str, Any]) -> dict[str, Any]:
    """Return a validated plan with defaults filled in and every path in normal form."""
    steps = []
    for step in document["steps"]:
        step = dict(step)
        for key, write in PATH_KEYS[step["op"]]:
            step[key] = check_relpath(step[key], write=write)
        if step["op"] == "write":
            step.setdefault("overwrite", False)
        elif step["op"] == "patch":
            step.setdefault("count", 1)
        elif step["op"] == "run":
            step.setdefault("timeout_s", 60)
            step.setdefault("check", True)
        steps.append(step)
    return {**document, "steps": steps}


def parse_plan(text: str, source: str = "plan") -> dict[str, Any]:
    """Parse and validate plan JSON text; raise :class:`InvalidPlan` listing every problem."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidPlan(
            source, [PlanProblem("/", f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")]
        ) from None
    except RecursionError:
        raise InvalidPlan(source, [PlanProblem("/", "JSON nested too deeply")]) from None
    try:
        problems = plan_problems(document)
    except RecursionError:
        raise InvalidPlan(source, [PlanProblem("/", "JSON nested too deeply")]) from None
    if problems:
        raise InvalidPlan(source, problems)
    return normalise(document)


def load_plan(path: Path | str) -> dict[str, Any]:
    """Read and validate a plan file (``-`` reads standard input)."""
    import sys

    if str(path) == "-":
        return parse_plan(sys.stdin.read(), "<stdin>")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text") from None
    return parse_plan(text, str(path))
