"""Endpoints as a user gives them: base URLs (``--base-url``, ``--judge-endpoint``), API keys and
model names, and what makes each usable."""

from __future__ import annotations

from urllib.parse import urlsplit

from engine.errors import UsageError
from engine.names import quoted_name

#: What a base URL looks like, for messages.
EXAMPLE_BASE_URL = "http://127.0.0.1:8765/v1"


def is_http_url(url: str) -> bool:
    """Return whether ``url`` is an absolute http(s) URL that names a host, with no space or
    control character in it: what an OpenAI-compatible base URL must be."""
    if not url.isprintable() or any(ch.isspace() for ch in url):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a port that is not a number, or out of range, raises here)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def not_http_url(url: str) -> str:
    """The message for a ``url`` that :func:`is_http_url` refuses, the URL escaped once (as
    :func:`engine.names.quoted_name` escapes a name) and its password masked."""
    return f"{quoted_name(shown_url(url))} is not an http(s) URL (give the OpenAI base URL, like {EXAMPLE_BASE_URL})"


def shown_url(url: str) -> str:
    """``url`` as an error line may show it: a password in it (``http://user:secret@host/v1``) is
    masked, as a key is, since the line reaches screens and CI logs. Read as ``urlsplit`` reads a
    URL's user part, but without refusing any URL: one that is not valid still says its password."""
    scheme, slashes, rest = url.partition("://")
    if not slashes:
        return url
    end = min((at for at in (rest.find(mark) for mark in "/?#") if at >= 0), default=len(rest))
    user_part, at, host = rest[:end].rpartition("@")
    user, colon, password = user_part.partition(":")
    if not at or not colon or not password:
        return url
    return f"{scheme}://{user}:****@{host}{rest[end:]}"


def api_key_problem(key: str) -> str | None:
    """What keeps ``key`` from going in an ``Authorization: Bearer`` header, or None when it can.

    A key is printable ASCII without white space: a header cannot carry a line break or a
    character that is not ASCII, and a client could never send a server a key with either.
    The key itself is never quoted (it is a secret); only the first character that cannot go."""
    if not key:
        return "is empty"
    for offset, char in enumerate(key):
        if not "!" <= char <= "~":
            return f"holds {_character(char)} at offset {offset}; an API key is printable ASCII without spaces"
    return None


def checked_api_key(key: str | None, source: str) -> str | None:
    """``key``, read from ``source`` (``$ROUTESHELL_API_KEY``, a profile's ``api_key``), or None when
    it is unset or empty; raise :class:`UsageError` naming ``source`` when no header can carry it."""
    if not key:
        return None
    problem = api_key_problem(key)
    if problem is not None:
        raise UsageError(f"the API key in {source} {problem}")
    return key


def model_name_problem(name: str) -> str | None:
    """What keeps ``name`` from being a model id (``--model``, ``--name``), or None when it can be:
    one that says something, printable, without white space at its ends."""
    if not name.strip():
        return "is empty"
    for offset, char in enumerate(name):
        if not char.isprintable():
            return f"holds {_character(char)} at offset {offset}; a model name is printable text"
    if name != name.strip():
        return f"{quoted_name(name)} has white space at an end"
    return None


def _character(char: str) -> str:
    named = {"\n": "a line break", "\r": "a carriage return", "\t": "a tab", " ": "a space", "\x1b": "an escape"}
    if char in named:
        return f"{named[char]} (U+{ord(char):04X})"
    kind = "a control character" if not char.isprintable() else "a character that is not ASCII"
    return f"{kind} (U+{ord(char):04X})"
