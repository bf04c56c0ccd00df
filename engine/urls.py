"""Endpoint base URLs as a user gives them (``--base-url``, ``--judge-endpoint``): what makes one usable."""

from __future__ import annotations

from urllib.parse import urlsplit

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
