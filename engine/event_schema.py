"""The JSON Schema of the event contract, generated from the ``TypedDict`` classes of :mod:`engine.events`.

``python -m engine.events > engine/schemas/events.schema.json`` writes it; a test keeps the file
and the classes in step. Each event class becomes a ``$defs`` entry named by its ``type``, and the
classes it refers to become entries of their own.
"""

# No ``from __future__ import annotations``: the schema is read from the live annotations.

import types
from typing import Any, Literal, NotRequired, Required, Union, get_args, get_origin, get_type_hints

from engine.events import EVENT_TYPES, event_name


def events_schema() -> dict[str, Any]:
    """Return the JSON Schema of every event: a ``oneOf`` over ``$defs`` named by event type."""
    defs: dict[str, Any] = {}
    for cls in EVENT_TYPES:
        _define(cls, defs)
    names = [event_name(cls) for cls in EVENT_TYPES]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://routeshell.dev/schemas/events.schema.json",
        "title": "routeshell events",
        "description": "One JSON object per line, told apart by 'type'. Generated from engine/events.py "
        "(python -m engine.events > engine/schemas/events.schema.json); do not edit by hand.",
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"enum": names}},
        "oneOf": [{"$ref": f"#/$defs/{name}"} for name in names],
        "$defs": dict(sorted(defs.items())),
    }


def _def_name(cls: type) -> str:
    return event_name(cls) if cls in EVENT_TYPES else cls.__name__


def _define(cls: type, defs: dict[str, Any]) -> str:
    name = _def_name(cls)
    if name in defs:
        return name
    defs[name] = {}  # reserved first: a class may refer to itself
    hints = get_type_hints(cls, include_extras=True)
    properties: dict[str, Any] = {}
    required: list[str] = []
    # "type" first, as it is written: the fields of a base class come before a subclass's own.
    for key, hint in sorted(hints.items(), key=lambda item: item[0] != "type"):
        origin = get_origin(hint)
        if origin is NotRequired or origin is Required:
            (hint,) = get_args(hint)
        if key in cls.__required_keys__:  # type: ignore[attr-defined]
            required.append(key)
        properties[key] = _schema_of(hint, defs)
    definition: dict[str, Any] = {"type": "object"}
    if cls.__doc__ and cls.__doc__ != dict.__doc__:
        definition["description"] = " ".join(cls.__doc__.split())
    definition.update(required=required, properties=properties, additionalProperties=False)
    defs[name] = definition
    return name


def _schema_of(hint: Any, defs: dict[str, Any]) -> dict[str, Any]:
    origin = get_origin(hint)
    args = get_args(hint)
    if hint is Any:
        return {}
    if hint is type(None):
        return {"type": "null"}
    simple = {str: "string", bool: "boolean", int: "integer", float: "number"}
    if hint in simple:
        return {"type": simple[hint]}
    if origin is Literal:
        return {"const": args[0]} if len(args) == 1 else {"enum": list(args)}
    if origin is Union or origin is types.UnionType:
        return {"anyOf": [_schema_of(arg, defs) for arg in args]}
    if origin is list:
        return {"type": "array", "items": _schema_of(args[0], defs)}
    if origin is dict:
        values = _schema_of(args[1], defs)
        return {"type": "object", **({"additionalProperties": values} if values else {})}
    if isinstance(hint, type) and hasattr(hint, "__required_keys__"):
        return {"$ref": f"#/$defs/{_define(hint, defs)}"}
    raise TypeError(f"no JSON Schema for {hint!r}: use str, int, float, bool, None, Literal, list, dict or TypedDict")
