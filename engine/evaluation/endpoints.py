"""The two endpoints of an evaluation, as :class:`~engine.config.profiles.Endpoint` values.

A model name left out is asked of the endpoint itself: the first id of ``GET /models``, which is
what ``routeshell serve`` (the base model first), vLLM and llama.cpp's server list.
"""

from __future__ import annotations

import json

from engine.config.profiles import Endpoint
from engine.errors import UsageError
from engine.llm.client import EndpointError, redacted
from engine.llm.deadline import http_client, within
from engine.names import display_line
from engine.urls import is_http_url, not_http_url, shown_url

DEFAULT_TIMEOUT_S = 120.0
DEFAULT_RETRIES = 2
#: A model list bigger than this is not read: a model list is short.
MAX_LIST_BYTES = 1 << 20


def check_url(option: str, url: str) -> str:
    """Return ``url`` without a trailing slash; raise :class:`UsageError` when it is not an http(s) URL."""
    if not is_http_url(url):
        raise UsageError(f"{option} {not_http_url(url)}")
    return url.rstrip("/")


def listed_model(base_url: str, api_key: str | None, *, option: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> str:
    """Return the first model id that ``GET {base_url}/models`` lists, all of it read within ``timeout_s``.

    Raise :class:`EndpointError` (exit code 3) naming ``option`` when the list cannot be had or is empty.
    """
    import httpx

    def failed(why: str) -> EndpointError:
        message = f"LLM endpoint {shown_url(base_url)} {why}; give the model with {option}"
        return EndpointError(redacted(message, api_key))

    headers = {} if api_key is None else {"Authorization": f"Bearer {api_key}"}
    try:
        with (
            http_client(timeout_s) as client,
            within(timeout_s),
            client.stream("GET", f"{base_url}/models", headers=headers) as response,
        ):
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_LIST_BYTES:
                    raise failed("sent a model list over 1 MiB")
            status = response.status_code
    except httpx.TimeoutException:
        raise failed(f"did not list its models within {timeout_s:g} s") from None
    except httpx.HTTPError as exc:
        raise failed(f"could not list its models ({display_line(str(exc)) or type(exc).__name__})") from None
    if status in (401, 403):
        refused = "no API key was sent" if api_key is None else "the API key was refused"
        raise failed(f"answered HTTP {status} to GET /models ({refused}: see --help for the keys)")
    if status != 200:
        raise failed(f"answered HTTP {status} to GET /models")
    try:
        data = json.loads(body)
        first = data["data"][0]["id"]
    except (ValueError, RecursionError, KeyError, IndexError, TypeError):
        raise failed("lists no model at /models") from None
    if not isinstance(first, str) or not first:
        raise failed("lists no model at /models")
    return first


def endpoint(base_url: str, model: str, api_key: str | None, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> Endpoint:
    """Return the :class:`Endpoint` of a base URL and model, with the evaluation's timeout and retries
    (``timeout_s`` is the command's ``--timeout``)."""
    return Endpoint(base_url=base_url, model=model, api_key=api_key, timeout_s=timeout_s, max_retries=DEFAULT_RETRIES,
                    timeout_setting="--timeout")  # fmt: skip
