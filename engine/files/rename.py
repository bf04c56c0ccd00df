"""New names for a bulk rename: a template with placeholders, or a regular expression and its replacement.

Placeholders: ``{name}`` (the whole name), ``{stem}`` and ``{ext}`` (``report.final.pdf`` is
``report.final`` and ``.pdf``; a dotfile has no extension), ``{n}`` (1, 2, ... in path order;
``{n:03}`` pads it), ``{parent}`` (the name of the directory it is in) and ``{mtime}``
(its modification date, ``{mtime:%Y-%m-%d}`` by default; any ``strftime`` format). ``{{`` and
``}}`` are literal braces. A new name stays in its directory: it may not hold ``/``.
"""

from __future__ import annotations

import os
import re
import string
import time
from dataclasses import dataclass

import regex

from engine.names import quoted_name
from engine.workspace.globs import Pattern
from engine.workspace.sandbox import MAX_NAME

FIELDS = ("name", "stem", "ext", "n", "parent", "mtime")


def split_name(name: str) -> tuple[str, str]:
    """Return (stem, ext) of a file name; ``ext`` keeps its dot and is empty for a dotfile."""
    stem, ext = os.path.splitext(name)
    return (stem, ext) if stem else (name, "")


def template_problem(template: str) -> str | None:
    """Why ``template`` cannot be used, or None."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"{template!r} is not a valid template ({exc}); write braces as {{{{ and }}}}"
    for _literal, field, spec, conversion in parts:
        if field is None:
            continue
        widths = [int(number) for number in re.findall(r"\d+", spec or "") if field != "mtime"]
        if any(width > MAX_NAME for width in widths) or len(spec or "") > 100:
            return f"{{{field}:{spec[:20] if spec else ''}}}: a name is at most {MAX_NAME} bytes; use a smaller width"
        if field not in FIELDS:
            return f"unknown placeholder {{{field}}}; use {', '.join('{' + f + '}' for f in FIELDS)}"
        if conversion is not None:
            return f"{{{field}!{conversion}}}: conversions are not supported"
        if field == "n" and spec:
            try:
                format(1, spec)
            except ValueError:
                return f"{{n:{spec}}}: {spec!r} is not a number format (write {{n:03}} for 001)"
        elif field not in ("n", "mtime") and spec:
            try:
                format("x", spec)
            except ValueError:
                return f"{{{field}:{spec}}}: {spec!r} is not a text format"
    if "/" in template:
        return "a new name stays in its directory: the template may not hold '/'"
    return None


@dataclass(frozen=True)
class Renaming:
    """How a bulk rename names files: a template, or a regular expression with its replacement."""

    template: str | None = None
    find: Pattern | None = None
    replace: str = ""

    def new_name(self, name: str, *, n: int, parent: str, mtime: float) -> str:
        """The new name of ``name`` (the ``n``-th file renamed, in directory ``parent``)."""
        if self.find is not None:
            return self.find.sub(self.replace, name)
        assert self.template is not None
        stem, ext = split_name(name)
        out = []
        for literal, field, spec, _conversion in string.Formatter().parse(self.template):
            out.append(literal)
            if field is None:
                continue
            if field == "n":
                out.append(format(n, spec or ""))
            elif field == "mtime":
                out.append(time.strftime(spec or "%Y-%m-%d", time.localtime(mtime)))
            else:
                value = {"name": name, "stem": stem, "ext": ext, "parent": parent}[field]
                out.append(format(value, spec or ""))
        return "".join(out)


def replacement_problem(find: Pattern, replace: str) -> str | None:
    """Why ``replace`` cannot be used with ``find`` (a group it does not have), or None."""
    try:
        _check_groups(find, replace)
        # The replacement is parsed when a match is first replaced: parse it against an empty match.
        names = {number: name for name, number in find.groupindex.items()}
        groups = "".join(f"(?P<{names[i]}>)" if i in names else "()" for i in range(1, find.groups + 1))
        regex.compile(groups).sub(replace, "")
    except (regex.error, re.error, IndexError) as exc:
        return f"the replacement {replace!r} does not fit the pattern ({exc})"
    return None


def _check_groups(find: Pattern, replace: str) -> None:
    groups = find.groups
    # (each escape in turn: a doubled backslash and then a 1 are a backslash and a 1, no group)
    for match in re.finditer(r"\\(?:(\d+)|g<([^>]*)>|.)", replace, re.DOTALL):
        ref = match.group(1) or match.group(2)
        if ref is None:
            continue
        if ref.isdigit() and int(ref) > groups:
            raise re.error(f"invalid group reference {ref}")
        if not ref.isdigit() and ref not in find.groupindex:
            raise re.error(f"unknown group name {ref!r}")


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a file name in a directory, or None."""
    if name in ("", ".", ".."):
        return f"{quoted_name(name)} is not a file name"
    if "/" in name or "\0" in name:
        return f"{quoted_name(name)}: a name may not hold '/' or a NUL byte"
    try:
        encoded = os.fsencode(name)
    except UnicodeEncodeError:
        return f"{quoted_name(name)} is not a valid file name"
    if len(encoded) > MAX_NAME:
        return f"{quoted_name(name[:40])}...: longer than {MAX_NAME} bytes"
    return None
