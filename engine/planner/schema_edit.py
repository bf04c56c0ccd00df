"""Edits to the planner reply schema: a free string made a list of values (as many as fit, each one
the model can write), the ways of an op kept to a match or to files named, a list made to name each
value once, a move or a copy of one file kept beside it, a step kept to some ops, and the definitions
a step refers to."""

from __future__ import annotations

import json
import math
import posixpath
import re
from collections.abc import Iterable
from typing import Any

from engine.planner.prompt import SINGLE_KEYS
from engine.planner.values import is_changeable
from engine.serve.schema_rewrite import MAX_ENUMERATED

#: The most values one list may hold, so that a big workspace keeps the schema small.
MAX_VALUES = 400
MAX_VALUE_CHARS = 200


def is_usable(value: str) -> bool:
    """A value the model can write: printable, valid UTF-8, not too long."""
    if not value or len(value) > MAX_VALUE_CHARS or not value.isprintable():
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def bounded_to(values: Iterable[str], chars: int) -> list[str]:
    """``values`` once each, usable ones only, at most :data:`MAX_VALUES` and ``chars`` characters."""
    out: list[str] = []
    used = 0
    for value in dict.fromkeys(value for value in values if is_usable(value)):
        used += len(value) + 4
        if len(out) >= MAX_VALUES or used > chars:
            break
        out.append(value)
    return out


def one_file_step(defs: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    """The step ``ref`` refers to, taking one file: by its name, or a list of one, never a match."""
    name = ref["$ref"].rsplit("/", 1)[1]
    step = json.loads(json.dumps(defs[name]))
    for way in step["allOf"]:
        op = way["if"]["properties"]["op"]["const"]
        ways = defs[op].get("anyOf")
        if op not in SINGLE_KEYS or not ways:
            continue
        kept = [dict(w, properties=dict(w["properties"])) for w in ways if "match" not in w["required"]]
        if not kept:
            continue
        for w in kept:
            if "paths" in w["properties"]:
                w["properties"]["paths"] = {**defs["paths"], "minItems": 1, "maxItems": 1}
        defs[f"one-{op}"] = {"anyOf": kept}
        way["then"] = {"$ref": f"#/$defs/one-{op}"}
    defs[f"one-{name}"] = step
    return {"$ref": f"#/$defs/one-{name}"}


def resolved(defs: dict[str, Any], node: Any) -> Any:
    """``node`` with a ``$ref`` into ``defs`` (a schema's ``$defs``) followed, a few times at most."""
    for _ in range(4):
        ref = node.get("$ref") if isinstance(node, dict) else None
        if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
            return node
        node = defs.get(ref.removeprefix("#/$defs/"))
    return node


_REF = re.compile(r'"\$ref": "#/\$defs/([^"]+)"')


def reached_defs(defs: dict[str, Any], start: str) -> list[str]:
    """The names of ``defs`` that ``defs[start]`` refers to, itself and through others."""
    seen = [start]
    for name in seen:
        seen += [found for found in _REF.findall(json.dumps(defs[name])) if found not in seen]
    return seen


def step_of(defs: dict[str, Any], ops: list[str]) -> dict[str, Any]:
    """A reference to a step of one of ``ops`` (defined once in ``defs`` for each list of ops)."""
    name = f"step-{'-'.join(ops)}"
    if name not in defs:
        step = json.loads(json.dumps(defs["step"]))
        step["properties"]["op"]["enum"] = [op for op in step["properties"]["op"]["enum"] if op in ops]
        if not step["properties"]["op"]["enum"]:
            return {"$ref": "#/$defs/step"}
        step["allOf"] = [way for way in step["allOf"] if way["if"]["properties"]["op"]["const"] in ops]
        defs[name] = step
    return {"$ref": f"#/$defs/{name}"}


def selected_only(defs: dict[str, Any]) -> None:
    """Make every op that may name one file or list some select its files by ``match`` instead."""
    for op in SINGLE_KEYS:
        ways = defs[op]["anyOf"]
        kept = [way for way in ways if "match" in way["required"]]
        if kept:
            defs[op]["anyOf"] = kept


def listed_only(defs: dict[str, Any]) -> None:
    """Make every op that may name one file or list some name them instead of selecting by ``match``."""
    for op in SINGLE_KEYS:
        ways = defs[op].get("anyOf", [])
        kept = [way for way in ways if "match" not in way["required"]]
        if kept:
            defs[op]["anyOf"] = kept


def unique_when_few(array: dict[str, Any], values: list[str] | None) -> None:
    """Make ``array`` (of ``values``) name each value at most once, where the local server can keep
    that while decoding: it decodes such an array as the list of every array that validates, at most
    :data:`~engine.serve.schema_rewrite.MAX_ENUMERATED` of them ("[cover-v2.png, cover-v2.png]"
    cannot be). A longer list would be checked only after decoding, and refused."""
    if not values:
        return
    longest = min(array["maxItems"], len(values))
    arrays = sum(math.perm(len(values), k) for k in range(array.get("minItems", 0), longest + 1))
    if arrays <= MAX_ENUMERATED:
        array.update(items={"enum": list(values)}, maxItems=longest, uniqueItems=True)


#: The most files whose new names are listed beside them (:func:`renamed_beside`).
MAX_RENAMED = 40


def renamed_beside(
    defs: dict[str, Any],
    files: list[str],
    names: list[str],
    existing: set[str],
    also: dict[str, list[str]] | None = None,
) -> None:
    """A move or a copy of one file (``from``) to a new name puts it beside itself, named as the
    request names it: "rename office-8.JPG to old-office-8.JPG" is ``camera/2025/office-8.JPG`` to
    ``camera/2025/old-office-8.JPG``, never a name in another folder. So each file the request
    may mean gets its own alternative, with the ``to`` names that go with it; with more than
    :data:`MAX_RENAMED` such files or no name with an extension, the step stays as it was. A file of
    ``also`` may go to its paths there too ("move ALL.TXT into logbook and call it ALL-2026.txt")."""
    pairs = []
    also = also or {}
    for path in files:
        folder = posixpath.dirname(path)
        tos = [new for name in names if (new := posixpath.join(folder, posixpath.basename(name))) not in existing]
        tos = [*(new for new in also.get(path, []) if new not in existing), *tos]
        if tos := [new for new in dict.fromkeys(tos) if is_changeable(new)]:
            pairs.append((path, tos))
    if not pairs or len(pairs) > MAX_RENAMED:
        return
    for op in ("move", "copy"):
        ways = defs[op]["anyOf"]
        at = next((at for at, way in enumerate(ways) if "from" in way["required"]), None)
        if at is None:
            continue
        way = ways[at]
        ways[at : at + 1] = [
            {**way, "properties": {**way["properties"], "from": {"const": path}, "to": {"enum": tos}}}
            for path, tos in pairs
        ]


def narrow_enum(
    schemas: dict[str, Any], key: str, values: list[str], defs: dict[str, Any] | None = None, *, drop: bool = False
) -> None:
    """Make ``schemas[key]`` the list ``values``; with none, it stays as it was (free, within the
    plan schema's own bounds: an empty list would leave the model no valid answer at all), or with
    ``drop`` (a free regular expression may not compile) it is taken out of ``schemas``. With
    ``defs``, the list goes there (as ``key`` and a number, once however often it is used) and
    ``schemas[key]`` refers to it, so that the alternatives of an op (:func:`one_way`) share it."""
    if not values:
        if drop:
            del schemas[key]
        return
    if defs is None:
        schemas[key] = {"enum": values}
        return
    known = [name for name in defs if name.startswith(f"{key}-")]  # no name of the plan schema has a "-"
    name = next((name for name in known if defs[name]["enum"] == values), f"{key}-{len(known)}")
    defs[name] = {"enum": values}
    schemas[key] = {"$ref": f"#/$defs/{name}"}
