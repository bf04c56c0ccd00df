"""``${VAR}`` and ``${VAR:-default}`` expansion for profile values.

Defaults may nest (``${A:-${B:-x}}``); ``$$`` is a literal dollar sign.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class InterpolationError(ValueError):
    """A malformed ``${...}`` expression."""


class Unset(Exception):
    """Raised when a ``${VAR}`` without a default names an unset variable."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def expand(text: str, env: Mapping[str, str]) -> str:
    """Expand ``text`` against ``env``.

    Returns the expanded string. Raises :class:`Unset` naming the first variable
    that is unset and has no default, and :class:`InterpolationError` on bad syntax.
    """
    if _deepest(text) > MAX_NESTING:
        # Each level is a frame of the parser: thousands of them would end in a RecursionError.
        raise InterpolationError(f"'${{' nested more than {MAX_NESTING} deep")
    out, end = _expand(text, 0, env, nested=False)
    assert end == len(text)
    return out


#: How deep defaults may nest (``${A:-${B:-...}}``): far beyond any profile.
MAX_NESTING = 32


def _deepest(text: str) -> int:
    """How deep ``${`` nests in ``text`` at most (``$$`` is a literal dollar sign)."""
    depth = deepest = pos = 0
    while pos < len(text):
        if text.startswith("$$", pos):
            pos += 2
        elif text.startswith("${", pos):
            depth += 1
            deepest = max(deepest, depth)
            pos += 2
        else:
            depth -= text[pos] == "}" and depth > 0
            pos += 1
    return deepest


def _expand(text: str, pos: int, env: Mapping[str, str], *, nested: bool) -> tuple[str, int]:
    parts: list[str] = []
    while pos < len(text):
        ch = text[pos]
        if nested and ch == "}":
            return "".join(parts), pos
        if ch != "$":
            parts.append(ch)
            pos += 1
            continue
        nxt = text[pos + 1 : pos + 2]
        if nxt == "$":
            parts.append("$")
            pos += 2
        elif nxt == "{":
            value, pos = _variable(text, pos + 2, env)
            parts.append(value)
        else:
            parts.append("$")
            pos += 1
    if nested:
        raise InterpolationError("unclosed '${' in value")
    return "".join(parts), pos


def _variable(text: str, pos: int, env: Mapping[str, str]) -> tuple[str, int]:
    match = _NAME.match(text, pos)
    if match is None:
        raise InterpolationError(f"bad variable name after '${{' at offset {pos}")
    name = match.group()
    pos = match.end()
    if text.startswith("}", pos):
        if name not in env:
            raise Unset(name)
        return env[name], pos + 1
    if text.startswith(":-", pos):
        value = env.get(name, "")
        if value:
            # Still parse the default so syntax errors surface whatever the environment holds.
            _, end = _expand_lenient(text, pos + 2, env)
            return value, end + 1
        try:
            default, end = _expand(text, pos + 2, env, nested=True)
        except Unset as missing:
            # Name every variable that was tried, e.g. OPENAI_API_KEY/LLM_API_KEY.
            raise Unset(f"{name}/{missing.name}") from None
        return default, end + 1
    raise InterpolationError(f"expected '}}' or ':-' after ${{{name}")


def _expand_lenient(text: str, pos: int, env: Mapping[str, str]) -> tuple[str, int]:
    try:
        return _expand(text, pos, env, nested=True)
    except Unset:
        # An unset variable inside an unused default does not matter; find the closing brace.
        return _expand(text, pos, _Everything(), nested=True)


class _Everything(dict[str, str]):
    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> str:
        return ""
