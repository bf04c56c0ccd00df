"""Endpoint base URLs as a user gives them (``--base-url``, ``--judge-endpoint``): what makes one usable."""

from __future__ import annotations

from urllib.parse import urlsplit

from engine.names import display_name

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
    """The message for a ``url`` that :func:`is_http_url` refuses, the URL escaped."""
    return f"{display_name(url)!r} is not an http(s) URL (give the OpenAI base URL, like {EXAMPLE_BASE_URL})"
