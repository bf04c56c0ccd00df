"""Why llguidance refused a request's schema, said in our words on one bounded line.

llguidance's messages repeat the request's text raw (a format's name with its escape sequences),
name no place in the schema, and speak of its own workings ("Value is not JSON serializable",
"Failed to generate regex for integer range: min=Some(9223372036854775807)"). :func:`refusal`
reads the kinds of message known here, finds what in the schema each is about, and names that:
a pattern, a format, or a number that cannot be decoded with, each with its JSON pointer. A
message of another kind is cut to one line and escaped.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

from engine.schemas import pointer
from engine.serve.schema_check import MAX_SHOWN, place, quoted

#: The longest llguidance or jsonschema message quoted in an error.
MAX_DETAIL = 300
#: What llguidance says of a pattern that asserts a position within it, and what that means.
_ASSERTION = "lookarounds not supported yet"
_ASSERTION_WORDS = r"a word boundary (\b, \B), or a ^ or $ anywhere but at its ends, is not supported"
#: A regular expression llguidance refused while compiling it (derivre's form of the message).
_IN_REGEX = re.compile(r"(?P<reason>.+?) in regex /(?P<pattern>.*)/", re.DOTALL)
#: llguidance's words for a format it does not know.
_UNKNOWN_FORMAT = "Unknown format:"
#: An integer the schema's conversion to llguidance (64-bit numbers) could not carry.
_NOT_SERIALIZABLE = re.compile(r"Value is not JSON serializable: (?P<number>-?[0-9]+)")
#: Numeric keywords whose range llguidance writes as a regular expression, and fails to for some.
_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
_LENGTHS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")
#: Keywords whose values are JSON data, not schemas: what is in them is no keyword.
_DATA = frozenset({"const", "enum", "examples", "default"})
#: Keywords whose values are objects of names (of properties, of definitions), each a schema.
_NAMED = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})
_CANNOT = "cannot be used for constrained decoding"

Path = list[str | int]


def refusal(message: str, schema: Any) -> str:
    """The one-line 400 message for a request's ``schema`` that llguidance refused with ``message``:
    what in the schema cannot be used, where it is, and why, its text from the request escaped and
    cut to :data:`~engine.serve.schema_check.MAX_SHOWN` characters."""
    from engine.names import display_line

    text = message.strip()
    said = _pattern(text, schema) or _format(text, schema) or _number(text, schema)
    if said is None:
        first = text.splitlines()[0] if text else "refused"  # (the rest is a dump of the matcher's state)
        return display_line(f"response_format schema {_CANNOT}: {one_line(first)}")
    return display_line(f"response_format schema: {said}")


def one_line(message: str) -> str:
    """``message`` on one line of at most :data:`MAX_DETAIL` characters."""
    line = " ".join(message.split())
    return line if len(line) <= MAX_DETAIL else line[: MAX_DETAIL - 3] + "..."


def _pattern(text: str, schema: Any) -> str | None:
    """A pattern llguidance cannot decode with, named with its place and the regex library's
    reason: the library says the pattern on a line of its own, whole, and the reason after it (a
    reason that a long pattern pushed past the message's end was lost)."""
    if text.startswith("regex parse error:") and "\nerror:" in text:
        pattern, why = text.split("\n", 2)[1].strip(), text.rsplit("\nerror:", 1)[1]
    elif (said := _IN_REGEX.fullmatch(text)) is not None:  # derivre's: "<reason> in regex /<pattern>/"
        pattern, why = said["pattern"], said["reason"]
    else:
        return None
    if why.startswith(_ASSERTION):  # derivre names the assertion by its syntax tree's kind (WordUnicode)
        why = f"{_ASSERTION_WORDS} (the regex library says: {why})"
    # The library shows the pattern as it parsed it, its control characters escaped or not: the
    # schema's pattern that it shows is named, with its place.
    known = ((at, written) for at, written in _patterns(schema) if pattern in (written.strip(), _escaped(written)))
    found = next(known, None)
    if found is not None:
        return f"the pattern {quoted(found[1])} at {place(found[0])} {_CANNOT}: {one_line(why)}"
    # A pattern that is not the schema's is llguidance's own, made of a length or a bound.
    numeric = _extreme(schema, (*_LENGTHS, *_BOUNDS, "multipleOf"))
    if numeric is not None:
        return f"{numeric} {_CANNOT}: the regular expression made of it cannot be decoded with ({one_line(why)})"
    return f"the pattern {quoted(pattern)} {_CANNOT}: {one_line(why)}"


def _format(text: str, schema: Any) -> str | None:
    """A ``format`` llguidance does not know, named with its place."""
    if not text.startswith(_UNKNOWN_FORMAT):
        return None
    name = text[len(_UNKNOWN_FORMAT) :].strip()
    formats = [(pointer([*path, "format"]), node["format"]) for path, node in _schemas(schema) if "format" in node]
    formats = [(at, written) for at, written in formats if isinstance(written, str)]
    # llguidance cuts the name at a line break: the whole name is found by its start.
    found = next((f for f in formats if f[1].strip() == name), None) or next(
        (f for f in formats if f[1].strip().startswith(name)), None
    )
    named = f"the format {quoted(name)}" if found is None else f"the format {quoted(found[1])} at {place(found[0])}"
    return f"{named} {_CANNOT}: it is not one the grammar knows; leave it out, or give a pattern instead"


def _number(text: str, schema: Any) -> str | None:
    """A number llguidance cannot hold (beyond 64 bits) or cannot write a grammar for (a bound far
    from zero, a multipleOf of many digits), named with its place."""
    if (said := _NOT_SERIALIZABLE.fullmatch(text)) is not None:
        number = int(said["number"])
        at = next((path for path, value in _values(schema) if _is_number(value) and value == number), None)
        where = "" if at is None else f" at {place(pointer(at))}"
        return f"the number {_shown(number)}{where} {_CANNOT}: it does not fit in 64 bits"
    if text.startswith(("Failed to generate regex for integer range", "Failed to generate regex for float range")):
        numeric = _extreme(schema, _BOUNDS)
        what = "a bound" if numeric is None else numeric
        return f"{what} {_CANNOT}: no grammar can be written for a range with a bound so far from zero or so precise"
    if text.startswith("Value for 'multipleOf' has too many digits"):
        numeric = _extreme(schema, ("multipleOf",))
        return f"{'a multipleOf' if numeric is None else numeric} {_CANNOT}: it has too many digits"
    return None


def _extreme(schema: Any, keywords: tuple[str, ...]) -> str | None:
    """The keyword of ``keywords`` in ``schema`` whose number is farthest from 1 in magnitude
    (the largest, or the nearest zero), as ``the <keyword> <number> at <place>``; None if none is."""
    found = [
        (_magnitude(node[keyword]), path, keyword, node[keyword])
        for path, node in _schemas(schema)
        for keyword in keywords
        if _is_number(node.get(keyword))
    ]
    if not found:
        return None
    _, path, keyword, value = max(found, key=lambda each: each[0])  # (the first of equals)
    return f"the {keyword} {_shown(value)} at {place(pointer([*path, keyword]))}"


def _magnitude(value: float) -> float:
    return abs(math.log10(abs(value))) if value else 0.0


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _shown(value: float) -> str:
    text = json.dumps(value)
    return text if len(text) <= MAX_SHOWN else f"{text[:MAX_SHOWN]}... ({len(text)} characters)"


def _escaped(pattern: str) -> str:
    return json.dumps(pattern)[1:-1]


def _patterns(schema: Any) -> Iterator[tuple[str, str]]:
    """Each regular expression of ``schema`` (a ``pattern``, a ``patternProperties`` key) and the
    JSON pointer of where it is."""
    for path, node in _schemas(schema):
        if isinstance(node.get("pattern"), str):
            yield pointer([*path, "pattern"]), node["pattern"]
        if isinstance(node.get("patternProperties"), dict):
            yield from ((pointer([*path, "patternProperties"]), key) for key in node["patternProperties"])


def _schemas(schema: Any) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Each object of ``schema`` and its path, in the order they are written, found without
    recursion; not the data under ``const``, ``enum``, ``examples`` or ``default``."""
    for path, value in _values(schema, data=False):
        if isinstance(value, dict):
            yield path, value


def _values(schema: Any, *, data: bool = True) -> Iterator[tuple[Path, Any]]:
    """Each value within ``schema`` and its path, in the order they are written, found without
    recursion; with ``data`` False, not those under the keywords whose values are data."""
    pending: list[tuple[Any, Path, bool]] = [(schema, [], False)]  # (value, path, an object of names?)
    while pending:
        node, path, names = pending.pop()
        yield path, node
        if isinstance(node, dict):
            kept = [(key, child) for key, child in node.items() if data or names or key not in _DATA]
            pending.extend((child, [*path, key], not names and key in _NAMED) for key, child in reversed(kept))
        elif isinstance(node, list):
            pending.extend((child, [*path, index], False) for index, child in reversed(list(enumerate(node))))
