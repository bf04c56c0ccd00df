"""Plans: JSON documents of file operations, checked against ``plan.schema.json`` and the sandbox rules."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import UsageError
from engine.files.match import MatchError, parse_match
from engine.jsonl import DuplicateKey, NumberTooLong, decode_error_reason, parse_json
from engine.names import quoted_name
from engine.plans.op_base import PathKey, is_selection
from engine.plans.op_table import OPS
from engine.plans.plan_schema import max_steps, plan_schema_errors
from engine.schemas import describe_error, pointer
from engine.workspace.sandbox import SandboxError, check_relpath

#: Which keys of each op name paths, and whether the step changes what is there (from the ops table).
#: The plan rules every role that writes plans is given, read off the ops table.
PLAN_RULES = (
    'Reply with one JSON document and nothing else: a plan, version 1, {"version": 1, "goal": "...", "steps": [...]}.\n'
    "Each step is one of:\n"
    + "".join(f"  {op.usage}\n" for op in OPS.values())
    + 'Paths are relative to the workspace root, never absolute, never "..", never the root itself,\n'
    "never inside a .git (at any depth) or .routeshell; a path that names a file has no trailing '/'.\n"
    "A run step has no shell: pass the program and its arguments as a list.\n"
    'MATCH selects many files at once instead of naming each: {"glob": "**/*.log"} and, all optional,\n'
    '  "exclude": [GLOB], "type": "file"|"dir"|"any", "ext": [".pdf"], "name_regex": RE, "contains": TEXT,\n'
    '  "larger_than": "1MB", "smaller_than": "2GB", "modified_after": "2025-01-01", "modified_before": "30d",\n'
    '  "tag": TAG, "limit": N. A glob is relative: "*.log" is at the top, "**/*.log" at any depth.\n'
    'Wherever a step takes MATCH it also takes "paths": [P, ...] instead. Prefer one MATCH step to one step per file.'
)

#: The builder role's system prompt; the built-in SFT set teaches the same one.
BUILDER_PROMPT = (
    "You are the builder of a coding agent working in a workspace directory.\n"
    "Make the change the task asks for by emitting a plan of file operations.\n" + PLAN_RULES
)

PATH_KEYS: dict[str, tuple[tuple[str, bool], ...]] = {
    name: tuple((key.key, key.write) for key in op.paths) for name, op in OPS.items()
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
    """Return every problem of ``document`` as a plan v1: schema errors, then sandbox path rules.

    A plan with more steps than the schema allows has that problem and those of its other keys
    alone: its steps are not looked at (see :func:`plan_schema_errors`)."""
    problems = []
    for error in plan_schema_errors(document):
        path, reason = describe_error(error)
        problems.append(PlanProblem(pointer(path), reason))
    reported = {problem.pointer for problem in problems}
    if isinstance(document, dict) and isinstance(document.get("goal"), str) and "/goal" not in reported:
        goal_problem = _text_problem(document["goal"])
        if goal_problem:
            problems.append(PlanProblem("/goal", goal_problem))
    steps = document.get("steps") if isinstance(document, dict) else None
    # Too many steps is refused for that alone (see plan_schema_errors): no step is looked at.
    for index, step in enumerate(steps if isinstance(steps, list) and len(steps) <= max_steps() else []):
        if isinstance(step, dict) and isinstance(step.get("op"), str) and step["op"] in OPS:
            problems += [problem for problem in _step_problems(index, step) if problem.pointer not in reported]
    return sorted(problems, key=_pointer_order)


def _step_problems(index: int, step: dict[str, Any]) -> list[PlanProblem]:
    """The sandbox and op rules for one step that has a known op (the schema checks its shape)."""
    op = OPS[step["op"]]
    problems = []
    for path_key, item, raw in path_values(op.paths, step):
        parts: list[str | int] = ["steps", index, path_key.key]
        where = pointer(parts if item is None else [*parts, item])
        try:
            normal = check_relpath(raw, write=path_key.write)
        except SandboxError as exc:
            problems.append(PlanProblem(where, str(exc)))
            continue
        if normal == "." and not path_key.root_ok:
            problems.append(
                PlanProblem(where, f"{quoted_name(raw)} is the workspace root itself; a {op.name} step cannot name it")
            )
        elif path_key.names_file and raw.endswith("/") and not is_selection(step):
            # "a.txt/" would overwrite a.txt, "dir/" would make a file named dir: never what was meant.
            reason = (
                f"{quoted_name(raw)}: the {path_key.key!r} of a {op.name} step names a file; "
                "give its full path without '/'"
            )
            problems.append(PlanProblem(where, reason))
    for text_key in op.texts:
        if isinstance(step.get(text_key), str) and (text_problem := _text_problem(step[text_key])):
            problems.append(PlanProblem(pointer(["steps", index, text_key]), text_problem))
    problems += [PlanProblem(pointer(["steps", index, *key_parts(key)]), reason) for key, reason in op.problems(step)]
    if isinstance(step.get("match"), dict):
        try:
            parse_match(step["match"])
        except MatchError as exc:
            problems.append(PlanProblem(pointer(["steps", index, "match", exc.key]), exc.reason))
    return problems


def key_parts(key: str) -> list[str | int]:
    """The parts of a key such as ``rules/0/to``, list indexes as numbers (for :func:`pointer`)."""
    return [int(part) if part.isdigit() else part for part in key.split("/") if part]


def path_values(keys: tuple[PathKey, ...], step: dict[str, Any]) -> list[tuple[PathKey, int | None, str]]:
    """(key, index in its list or None, the path) for every path a step names."""
    found: list[tuple[PathKey, int | None, str]] = []
    for path_key in keys:
        raw = step.get(path_key.key)
        if isinstance(raw, str):
            found.append((path_key, None, raw))
        elif path_key.many and isinstance(raw, list):
            found += [(path_key, item, value) for item, value in enumerate(raw) if isinstance(value, str)]
    return found


def _text_problem(text: str) -> str | None:
    # JSON can spell a lone surrogate (\ud800); it has no UTF-8 form, so it cannot be written.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"holds a lone surrogate (U+{ord(text[exc.start]):04X}), which is not text; remove it"
    return None


def _pointer_order(problem: PlanProblem) -> list[tuple[int, int, str]]:
    # Steps in numeric order (/steps/10 after /steps/9), keys alphabetically.
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in problem.pointer.split("/")]


def normalise(document: dict[str, Any]) -> dict[str, Any]:
    """Return a validated plan with defaults filled in and every path in normal form."""
    return {**document, "steps": [normalise_step(step) for step in document["steps"]]}


def normalise_step(step: dict[str, Any]) -> dict[str, Any]:
    """Return one valid step with its defaults filled in and its paths in normal form."""
    op = OPS[step["op"]]
    step = {**op.defaults, **step}
    for path_key in op.paths:
        value = step.get(path_key.key)
        if isinstance(value, str):
            step[path_key.key] = check_relpath(value, write=path_key.write)
        elif path_key.many and isinstance(value, list):
            step[path_key.key] = [check_relpath(item, write=path_key.write) for item in value]
    return step


def parse_plan(text: str, source: str = "plan") -> dict[str, Any]:
    """Parse and validate plan JSON text; raise :class:`InvalidPlan` listing every problem."""
    try:
        document = parse_json(text, unique_keys=True)
    except json.JSONDecodeError as exc:
        raise InvalidPlan(
            source, [PlanProblem("/", f"not JSON: {decode_error_reason(exc)} at line {exc.lineno} column {exc.colno}")]
        ) from None
    except NumberTooLong as exc:
        raise InvalidPlan(source, [PlanProblem("/", f"not JSON: {exc}")]) from None
    except DuplicateKey as exc:
        raise InvalidPlan(source, [PlanProblem("/", str(exc))]) from None
    except RecursionError:
        raise InvalidPlan(source, [PlanProblem("/", "JSON nested too deeply")]) from None
    try:
        problems = plan_problems(document)
    except RecursionError:
        raise InvalidPlan(source, [PlanProblem("/", "JSON nested too deeply")]) from None
    if problems:
        raise InvalidPlan(source, problems)
    return normalise(document)


#: The most bytes a plan file may hold: far beyond any plan (the contents of its writes included),
#: and bounded so that an endless input (``/dev/zero``) cannot take the memory.
MAX_PLAN_BYTES = 64 << 20


def plan_source(path: Path | str) -> str:
    """How an error line names the plan read from ``path`` (``-``: standard input)."""
    return "<stdin>" if str(path) == "-" else str(path)


def load_plan(path: Path | str) -> dict[str, Any]:
    """Read and validate a plan file (``-`` reads standard input), at most :data:`MAX_PLAN_BYTES`."""
    from engine.textfile import read_bounded

    data = read_bounded(path, MAX_PLAN_BYTES, "the plan")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{'the plan on standard input' if str(path) == '-' else path}: not UTF-8 text") from None
    return parse_plan(text, plan_source(path))
