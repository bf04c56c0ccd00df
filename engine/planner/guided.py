"""Asking the planner again, greedily, under a schema without the choice the dry run refused or
without a step done a second time.

A plan the dry run refuses because a step selects nothing says where it went wrong. Sampling the
model again at a temperature may or may not avoid the same choice; taking that choice out of the
schema does, and the model's next greedy answer is its best one among what is left.
:func:`refused_values` finds the values at fault (the glob, or a kind, a word the files hold, a name
pattern or a tag that selects nothing on its own, tried against the workspace as the steps before
it leave it) and :func:`guided_schema` returns the schema without them, or ``None`` when it cannot
tell which value was at fault, when taking it out would leave a field with nothing to choose, or
when the schema would be too big to send. :func:`unrepeated_schema` keeps the steps of an answer up
to the first that repeats one before it, and there forbids that step.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from engine.planner.schema_edit import resolved
from engine.plans.expand import expand_plan
from engine.plans.model import InvalidPlan
from engine.plans.policy import Policy
from engine.workspace.sandbox import SandboxError

#: The filters a probe tries on their own: those that choose files by what they are or hold. A
#: date, a size or an ``exclude`` left out would make the selection wider, and answers asked again
#: without one changed files the request leaves alone more often than they came right.
_PROBED = ("ext", "contains", "name_regex", "tag")
#: The most values one refusal takes out of the schema.
MAX_DROPPED = 8
#: The largest schema a guided ask sends, as compact JSON: the local server's bound
#: (engine.serve.grammar.MAX_SCHEMA_BYTES). A larger one is not asked: the answer stands as it was.
MAX_GUIDED_SCHEMA_CHARS = 64 * 1024
#: What a probe or a dry run of a hostile answer may raise instead of refusing it.
_PROBE_ERRORS = (SandboxError, OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError)


def _sendable(schema: dict[str, Any]) -> dict[str, Any] | None:
    return schema if len(json.dumps(schema, separators=(",", ":"))) <= MAX_GUIDED_SCHEMA_CHARS else None


def _probe_empty(root: Path, before: list[dict[str, Any]], step: dict[str, Any], match: dict[str, Any], *,
                 policy: Policy, now: float | None) -> bool:  # fmt: skip
    """Whether ``step`` with ``match`` selects nothing after the steps ``before`` it."""
    plan = {"version": 1, "steps": [*before, {**step, "match": match}]}
    where = f"/steps/{len(before)}/match"
    try:
        expand_plan(root, plan, policy, now=now)
    except InvalidPlan as exc:
        return any(p.pointer == where and "selects nothing" in p.reason for p in exc.problems)
    except _PROBE_ERRORS:
        return False
    return False


def _empty_selection(root: Path, steps: list[dict[str, Any]], index: int, *, policy: Policy,
                     now: float | None) -> list[tuple[str, Any]]:  # fmt: skip
    """The (key, value) pairs of step ``index``'s match that select nothing on their own."""
    step = steps[index]
    match = step.get("match")
    if not isinstance(match, dict) or not isinstance(match.get("glob"), str):
        return []
    before = steps[:index]
    base = {key: match[key] for key in ("glob", "type") if key in match}
    if _probe_empty(root, before, step, base, policy=policy, now=now):
        return [("glob", match["glob"])]
    found: list[tuple[str, Any]] = []
    for key, value in match.items():
        if key not in _PROBED:
            continue
        if isinstance(value, list) and key == "ext":
            found += [(key, item) for item in value if _probe_empty(root, before, step, {**base, key: [item]},
                                                                    policy=policy, now=now)]  # fmt: skip
        elif _probe_empty(root, before, step, {**base, key: value}, policy=policy, now=now):
            found.append((key, value))
    return found


def refused_values(root: Path, plan: dict[str, Any], problems: list[tuple[str, str]], *, policy: Policy | None = None,
                   now: float | None = None) -> list[tuple[str, Any]]:  # fmt: skip
    """The (key, value) choices of ``plan`` that its dry run ``problems`` (pointer, reason) put at fault."""
    policy = policy or Policy()
    steps = plan.get("steps") if isinstance(plan, dict) else None
    if not isinstance(steps, list):
        return []
    found: list[tuple[str, Any]] = []
    for where, reason in problems:
        parts = where.strip("/").split("/")
        if len(parts) < 2 or parts[0] != "steps" or not parts[1].isdigit() or int(parts[1]) >= len(steps):
            continue
        index = int(parts[1])
        step = steps[index]
        if not isinstance(step, dict):
            continue
        # (Only an empty selection: answers asked again without the find of a rename that changed no
        # name, or the folder files were moved into where they already were, overreached instead.)
        if "selects nothing" in reason:
            found += _empty_selection(root, steps, index, policy=policy, now=now)
    unique: dict[tuple[str, str], tuple[str, Any]] = {}
    for key, value in found:
        unique.setdefault((key, json.dumps(value, sort_keys=True, default=str)), (key, value))
    return list(unique.values())[:MAX_DROPPED]


def _only(root: dict[str, Any], way: Any, key: str, value: Any) -> bool:
    """Whether the object schema ``way`` can give ``key`` no value but ``value``."""
    properties = way.get("properties") if isinstance(way, dict) else None
    target = resolved(root.get("$defs", {}), properties.get(key)) if isinstance(properties, dict) else None
    return isinstance(target, dict) and target.get("enum") == [value]


def _without(root: dict[str, Any], node: Any, key: str, value: Any, *, branches: bool = False) -> bool:
    """Take ``value`` out of every choice of ``key`` under ``node``; whether any was taken out. A
    choice from a shared definition becomes a copy of its own, so other keys keep the value. With
    ``branches``, a branch of an ``anyOf`` that can give ``key`` only ``value`` goes too, where
    another branch is left (a match's place whose filters are its own, :mod:`engine.planner.consistent`)."""
    dropped = False
    if isinstance(node, dict):
        ways = node.get("anyOf")
        if branches and isinstance(ways, list):
            kept_ways = [way for way in ways if not _only(root, way, key, value)]
            if kept_ways and len(kept_ways) < len(ways):
                node["anyOf"] = kept_ways
                dropped = True
        properties = node.get("properties")
        if isinstance(properties, dict) and isinstance(properties.get(key), dict):
            prop = properties[key]
            holders = [(properties, key)]
            if isinstance(prop.get("items"), dict):
                holders.append((prop, "items"))
            for parent, name in holders:
                target = resolved(root.get("$defs", {}), parent[name])
                if isinstance(target, dict) and isinstance(target.get("enum"), list):
                    kept = [item for item in target["enum"] if item != value]
                    if kept and len(kept) < len(target["enum"]):
                        parent[name] = {**target, "enum": kept}
                        dropped = True
        for item in list(node.values()):
            dropped = _without(root, item, key, value, branches=branches) or dropped
    elif isinstance(node, list):
        for item in node:
            dropped = _without(root, item, key, value, branches=branches) or dropped
    return dropped


def guided_schema(schema: dict[str, Any], refused: list[tuple[str, Any]]) -> dict[str, Any] | None:
    """``schema`` without the ``refused`` (key, value) choices, or ``None`` when none could go."""
    edited = copy.deepcopy(schema)
    dropped = False
    for key, value in refused:
        dropped = _without(edited, edited, key, value, branches=True) or dropped
    return _sendable(edited) if dropped else None


#: The keys whose value, said again at the same place, makes a step one that came before it.
_REPEATED_KEYS = ("path", "from", "to")
#: How deep object definitions are copied into the schema of the step that must not repeat.
_INLINE_DEPTH = 4


def _inlined(root: dict[str, Any], node: Any, depth: int = _INLINE_DEPTH) -> Any:
    """A copy of ``node`` with each reference to an object definition of ``root`` replaced by a copy
    of it (references to a list of choices stay: :func:`_without` copies those it changes)."""
    if isinstance(node, list):
        return [_inlined(root, item, depth) for item in node]
    if not isinstance(node, dict):
        return node
    target = resolved(root.get("$defs", {}), node)
    if target is not node and depth > 0 and isinstance(target, dict) and "enum" not in target:
        return _inlined(root, target, depth - 1)
    return {key: _inlined(root, value, depth) for key, value in node.items()}


def unrepeated_schema(schema: dict[str, Any], plan: Any) -> dict[str, Any] | None:
    """``schema`` for a plan that keeps ``plan``'s steps up to the first one that repeats an earlier
    step, and where that one cannot come again: it cannot name the same paths (its ``path``,
    ``from``, ``paths`` and ``to``), or, where that leaves it possible still (a path that was its op's
    only choice, a folder said in free text), cannot be that op. ``None`` when no step repeats or
    the schema leaves no such choice to take away."""
    import jsonschema

    steps = plan.get("steps") if isinstance(plan, dict) else None
    if not isinstance(steps, list):
        return None
    again = next((k for k, step in enumerate(steps) if isinstance(step, dict) and step in steps[:k]), None)
    array = schema.get("properties", {}).get("steps")
    if again is None or not isinstance(array, dict) or "items" not in array:
        return None
    step = steps[again]
    named = [(key, step[key]) for key in _REPEATED_KEYS if isinstance(step.get(key), str)]
    named += [("paths", path) for path in step.get("paths", ()) if isinstance(path, str)]
    repeated = {**plan, "steps": steps[: again + 1]}
    for taken in (named, [("op", step.get("op"))]):
        edited = copy.deepcopy(schema)
        there = _inlined(edited, {"properties": {"step": array["items"]}})
        dropped = [_without(edited, there, key, value) for key, value in taken]  # (each one, not the first only)
        if not any(dropped):
            continue
        edited["properties"]["steps"]["prefixItems"] = [{"const": done} for done in steps[:again]] + [
            there["properties"]["step"]
        ]
        if not jsonschema.Draft202012Validator(edited).is_valid(repeated):
            return _sendable(edited)
    return None


def dry_run_problems(root: Path, plan: Any, *, policy: Policy | None = None,
                     now: float | None = None) -> list[tuple[str, str]]:  # fmt: skip
    """The (pointer, reason) problems the dry run's expansion finds in ``plan`` over ``root``."""
    from engine.plans.model import normalise

    try:
        expand_plan(root, normalise(plan), policy or Policy(), now=now)
    except InvalidPlan as exc:
        return [(problem.pointer, problem.reason) for problem in exc.problems]
    except _PROBE_ERRORS:
        return []
    return []
