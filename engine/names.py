"""Showing names and text literally: no control codes, no terminal escapes, no undecodable bytes.

Anything that came from a file, a model, a command or a server reaches the screen through one of
these two functions: :func:`display_name` for a name or any other one-line value,
:func:`display_text` for text of several lines (file contents, diffs, a model's reply).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable

_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}

TAB_SIZE = 8


def _escape(ch: str) -> str:
    """One non-printable character as a backslash escape."""
    if ch in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[ch]
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:
        # A byte that was not valid UTF-8, smuggled through surrogateescape.
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x80:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


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
    return "".join(_escape(ch) if ch == "\\" or not ch.isprintable() else ch for ch in name)


def quoted_name(name: object) -> str:
    """``name`` (a path, a file name) in single quotes for a message, escaped once as
    :func:`display_name` escapes it: ``'bad\\xff.txt'``, ``'esc\\x1b[31m.txt'``.

    A message names files this way, never with ``repr``, which spells a byte that is not UTF-8 as
    ``\\udcff``. Show the message with :func:`display_line`, which leaves the name as it is here. A
    command to paste quotes its words with :func:`shell_word` instead.
    """
    return f"'{display_name(str(name))}'"


def display_text(text: str, *, tab_size: int = TAB_SIZE) -> str:
    """Return multi-line ``text`` ready to show: line breaks kept, everything else printable.

    ``"\\n"`` stays a line break and a tab becomes spaces up to the next multiple of ``tab_size``
    columns (counted in characters, after escaping), as a terminal would show it. Every other
    non-printable character is escaped as :func:`display_name` escapes it: ESC, the other C0
    and C1 controls, DEL, a carriage return (so a CRLF line ends in a visible ``\\r``), the
    Unicode line and paragraph separators, bidi overrides and lone surrogates. Backslashes are
    kept as they are, so source code and JSON read normally. Markup such as ``[red]`` is left as
    is: callers must render the result as plain text (a rich ``Text``, never markup).
    """
    if not text.replace("\n", "").replace("\t", "").isprintable():
        text = "".join(ch if ch.isprintable() or ch in "\n\t" else _escape(ch) for ch in text)
    # After escaping, no carriage return is left to reset expandtabs' column; "\n" does.
    return text.expandtabs(tab_size) if "\t" in text else text


def display_line(message: str) -> str:
    """Return a one-line message (an error, a status) ready to show: every non-printable escaped.

    Like :func:`display_name`, but backslashes are kept as they are: a message already quotes
    names with ``repr``, and doubling its backslashes would only make it harder to read.
    """
    if message.isprintable():
        return message
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in message)


def shell_word(word: str) -> str:
    """``word`` quoted for a POSIX shell, and never with a control character in it: a word that has
    one (an escape sequence in a folder's name, a newline in a task) is quoted as ``$'...'`` with
    its bytes escaped (bash, zsh and ksh read it back), so printing it moves no cursor."""
    if word.isprintable():
        return shlex.quote(word)
    escaped = []
    for ch in word:
        if ch in "\\'":
            escaped.append("\\" + ch)
        elif ch.isprintable():
            escaped.append(ch)
        else:
            try:  # (an undecodable byte of a name is itself again; any other lone surrogate, as UTF-8 would be)
                raw = ch.encode("utf-8", errors="surrogateescape")
            except UnicodeEncodeError:
                raw = ch.encode("utf-8", errors="surrogatepass")
            escaped.extend(f"\\x{byte:02x}" for byte in raw)
    return "$'" + "".join(escaped) + "'"


def shell_line(words: Iterable[str]) -> str:
    """``words`` as one POSIX shell command line (:func:`shell_word` each): it reads back as the same
    words when pasted, and printing it moves no cursor, whatever a path in it holds."""
    return " ".join(shell_word(word) for word in words)
