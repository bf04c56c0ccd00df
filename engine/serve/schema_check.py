"""Validating a value against a request's JSON Schema in bounded time.

jsonschema matches ``pattern`` and ``patternProperties`` with Python's ``re``, which backtracks:
a request can pair a pattern such as ``^(a|a)*b`` with a ``const`` of forty ``a``s and hold the
interpreter (and with it every other request and ``/health``) for hours, since ``re`` never lets
go of the GIL. Here those keywords match with the ``regex`` module instead, which lets go of the
GIL and gives up after a deadline: :func:`bounded_validator` makes the validator and
:func:`within` sets the deadline of everything it checks; past it, :class:`CheckTooSlow`.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
from collections.abc import Iterator
from typing import Any

#: Seconds one check of an answer may spend matching patterns.
CHECK_BUDGET_S = 0.25
#: The most characters of a request's pattern, or of a place in its schema, an error repeats.
MAX_SHOWN = 80

_deadline = threading.local()
_classes: dict[type[Any], type[Any]] = {}
_classes_lock = threading.Lock()


class CheckTooSlow(Exception):
    """A pattern of the schema took longer to match than the check's deadline allowed."""


@contextlib.contextmanager
def within(seconds: float = CHECK_BUDGET_S) -> Iterator[None]:
    """Bound the pattern matching of every bounded validator on this thread to ``seconds`` in all."""
    previous = getattr(_deadline, "at", None)
    _deadline.at = time.monotonic() + seconds
    try:
        yield
    finally:
        _deadline.at = previous


def bounded_validator(schema: Any) -> Any:
    """Return a jsonschema validator of ``schema`` (its draft, 2020-12 by default) whose pattern
    keywords match in bounded time (see :func:`within`); otherwise it validates as jsonschema does."""
    from jsonschema import Draft202012Validator
    from jsonschema.validators import extend, validator_for

    base = validator_for(schema, default=Draft202012Validator)
    with _classes_lock:
        if base not in _classes:
            keywords = {
                "pattern": _pattern,
                "patternProperties": _pattern_properties,
                "additionalProperties": _additional_properties,
            }
            _classes[base] = extend(base, {k: v for k, v in keywords.items() if k in base.VALIDATORS})
        return _classes[base](schema)


def quoted(text: str) -> str:
    """``text`` of a request (a pattern, a ``$ref``) as a JSON string for an error message: its
    control characters escaped, and no more than :data:`MAX_SHOWN` characters of it."""
    from engine.names import display_line

    shown = json.dumps(text[:MAX_SHOWN], ensure_ascii=False)
    return display_line(shown if len(text) <= MAX_SHOWN else f'{shown[:-1]}..."')


def place(path: str) -> str:
    """A JSON pointer into a request's schema for an error message: escaped, and its last
    :data:`MAX_SHOWN` characters only (the keys are the request's)."""
    from engine.names import display_line

    path = path or "/"
    return display_line(path if len(path) <= MAX_SHOWN else "..." + path[-MAX_SHOWN:])


def _search(pattern: str, text: str) -> bool:
    import regex

    at = getattr(_deadline, "at", None)
    remaining = math.inf if at is None else at - time.monotonic()
    if remaining <= 0:
        raise CheckTooSlow(pattern)
    try:
        found = regex.search(pattern, text, timeout=None if remaining == math.inf else remaining, concurrent=True)
    except TimeoutError:
        raise CheckTooSlow(pattern) from None
    except regex.error:
        raise CheckTooSlow(pattern) from None  # check_schema accepted it for ``re``; it cannot be decided here
    return found is not None


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    from jsonschema.exceptions import ValidationError

    if validator.is_type(instance, "string") and not _search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator: Any, patterns: dict[str, Any], instance: Any, schema: Any) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(validator: Any, allowed: Any, instance: Any, schema: Any) -> Iterator[Any]:
    from jsonschema.exceptions import ValidationError

    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = [key for key in instance if key not in properties and not any(_search(p, key) for p in patterns)]
    if validator.is_type(allowed, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], allowed, path=extra)
    elif not allowed and extras:
        names = ", ".join(repr(extra) for extra in sorted(extras))
        verb = "was" if len(extras) == 1 else "were"
        yield ValidationError(f"Additional properties are not allowed ({names} {verb} unexpected)")
