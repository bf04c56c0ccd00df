"""Showing file names literally: no control codes, no terminal escapes, no undecodable bytes."""

from __future__ import annotations

_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def display_name(name: str) -> str:
    """Return ``name`` with every non-printable character written as a backslash escape.

    Control characters (C0, DEL, C1), line and paragraph separators, bidi overrides and the
    surrogates that ``os.fsdecode`` uses for undecodable bytes all become escapes, like
    ``ls -b``: ``\\xNN`` for an ASCII control character or a raw byte, ``\\uNNNN`` for any other
    character. A backslash is doubled so the result is unambiguous.
    Markup such as ``[red]`` is left as is: callers must render the result as plain text.
    """
    if name.isprintable() and "\\" not in name:
        return name
    out: list[str] = []
    for ch in name:
        if ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            if 0xDC80 <= code <= 0xDCFF:
                # A byte that was not valid UTF-8, smuggled through surrogateescape.
                out.append(f"\\x{code - 0xDC00:02x}")
            elif code < 0x80:
                out.append(f"\\x{code:02x}")
            else:
                out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
    return "".join(out)
