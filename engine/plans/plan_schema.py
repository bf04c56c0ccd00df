"""A plan checked against ``plan.schema.json`` step by step, each step against its own op's shape.

The schema says which shape a step has with an ``allOf`` of one ``if``/``then`` per op, which a
validator walks whole for every step: 14 trials per step, 6 s for a plan of the 10,000 mkdir
steps the schema allows. A step whose ``op`` is one the schema knows has no error but those of
that op's ``then`` (its ``if`` is the only one that holds, and the step's own keywords only ask
for a known ``op``), so it is checked against that alone: 0.45 s for the same plan. Any other
step is checked against the whole step schema. The errors are the ones the whole schema gives,
in the same order, each at its place in the plan.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from engine.schemas import load_schema, validator


def max_steps() -> int:
    """The most steps a plan may have: the schema's own bound."""
    bound: int = load_schema("plan")["properties"]["steps"]["maxItems"]
    return bound


def plan_schema_errors(document: Any) -> list[Any]:
    """The jsonschema errors of ``document`` as a plan, sorted by where they are.

    A plan with more steps than :func:`max_steps` has that error (and any of its other keys), and
    none of its steps is looked at: checking each would take minutes for the millions of steps a
    plan file may spell, to refuse it for their number anyway."""
    outer, step_validator, op_validators = _validators()
    errors = [(list(error.absolute_path), error) for error in outer.iter_errors(document)]
    steps = document.get("steps") if isinstance(document, dict) else None
    if isinstance(steps, list) and len(steps) <= max_steps():
        for index, step in enumerate(steps):
            op = step.get("op") if isinstance(step, dict) else None
            checker = op_validators.get(op, step_validator) if isinstance(op, str) else step_validator
            for error in checker.iter_errors(step):
                # Checked on its own, a step's error is placed in the step: put the step in the plan.
                error.path.extendleft((index, "steps"))
                errors.append((list(error.absolute_path), error))
    errors.sort(key=lambda found: found[0])
    return [error for _, error in errors]


@cache
def _validators() -> tuple[Any, Any, dict[str, Any]]:
    """Validators of a plan without its steps, of one step, and of one step of each known op."""
    schema = load_schema("plan")
    defs = schema["$defs"]
    # Each validator of a part is the plan's own with another schema: it resolves the part's
    # references in the plan schema as the whole does, without looking up a reference to the part.
    whole = validator("plan")
    steps = {key: value for key, value in schema["properties"]["steps"].items() if key != "items"}
    outer = whole.evolve(schema={**schema, "properties": {**schema["properties"], "steps": steps}})
    step = defs["step"]
    branches = [_op_branch(branch, defs) for branch in step.get("allOf", [])]
    by_op: dict[str, Any] = {}
    # Only where the step schema has the shape this relies on (its own keys ask for a known op, and
    # every branch is one op's if/then): any other shape leaves every step to the whole step schema.
    plain = set(step) == {"type", "required", "properties", "allOf"} and set(step["properties"]) == {"op"}
    if plain and all(branches):
        known = step["properties"]["op"].get("enum", [])
        ops = [op for op, _ in filter(None, branches)]
        by_op = {op: whole.evolve(schema=defs[name]) for op, name in filter(None, branches)
                 if op in known and ops.count(op) == 1}  # fmt: skip
    return outer, whole.evolve(schema=step), by_op


def _op_branch(branch: Any, defs: dict[str, Any]) -> tuple[str, str] | None:
    """(op, the name in ``defs`` its steps are checked against) of a branch
    ``{"if": <op is OP>, "then": {"$ref": "#/$defs/NAME"}}``; None for any other."""
    if not isinstance(branch, dict) or set(branch) != {"if", "then"} or not isinstance(branch["if"], dict):
        return None
    op, then = branch["if"].get("properties", {}).get("op", {}).get("const"), branch["then"]
    if branch["if"] != {"properties": {"op": {"const": op}}, "required": ["op"]} or not isinstance(op, str):
        return None
    if not isinstance(then, dict) or set(then) != {"$ref"} or not str(then["$ref"]).startswith("#/$defs/"):
        return None
    name = then["$ref"].removeprefix("#/$defs/")
    return (op, name) if name in defs else None
