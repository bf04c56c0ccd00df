"""HTTP clients whose timeout bounds a whole reply, not each read of it.

httpx's timeouts bound each network operation: a server that sends one byte every half second
never trips a read timeout, and a reply of ``Content-Length: 100000`` sent that way takes a day.
Every httpx client in routeshell comes from :func:`http_client`, whose connections check the
deadline that :func:`within` sets before each connect, read and write, and wait no longer than
what is left of it; past it, a read ends with ``httpx.ReadTimeout`` (a write with
``httpx.WriteTimeout``, a connect with ``httpx.ConnectTimeout``), as a silent server's would.

The deadline lives in a context variable, so a client shared by several threads (or used by
none of them in a ``with within(...)``) gives each request its own: outside :func:`within` only
httpx's own timeouts apply.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Imported where used instead: httpx's package __init__ loads its CLI, which imports rich,
    # and the engine must stay importable without the UI stack (tests/test_import_hygiene.py).
    import ssl

    import httpcore
    import httpx

#: The longest a connection may take to open, whatever the reply's deadline.
CONNECT_TIMEOUT_S = 10.0
#: A deadline closer than this counts as passed (a socket timeout of 0 would mean "do not block").
_LEAST_WAIT_S = 0.001


class Deadline:
    """The moment a reply must be complete by; :meth:`extend` moves it ``seconds`` from now."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def extend(self) -> None:
        """Give the reply ``seconds`` more from now (a stream that made progress)."""
        self.at = time.monotonic() + self.seconds

    def left(self) -> float:
        """Seconds until the deadline; 0 or less once it passed."""
        return self.at - time.monotonic()


_CURRENT: ContextVar[Deadline | None] = ContextVar("routeshell_http_deadline", default=None)


@contextmanager
def within(seconds: float) -> Iterator[Deadline]:
    """Bound every request made in the block by one deadline ``seconds`` from now."""
    deadline = Deadline(seconds)
    token = _CURRENT.set(deadline)
    try:
        yield deadline
    finally:
        _CURRENT.reset(token)


def http_client(
    timeout_s: float, *, headers: Mapping[str, str] | None = None, transport: httpx.BaseTransport | None = None
) -> httpx.Client:
    """Return an ``httpx.Client`` whose connections keep to :func:`within`'s deadline.

    ``timeout_s`` is also httpx's own bound on each operation (connecting: at most
    :data:`CONNECT_TIMEOUT_S`). A ``transport`` given (a test's) is used as it is.
    """
    import httpx

    timeout = httpx.Timeout(timeout_s, connect=min(CONNECT_TIMEOUT_S, timeout_s))
    verify = True if transport is not None else _tls_context()
    client = httpx.Client(timeout=timeout, headers=dict(headers or {}), transport=transport, verify=verify)
    if transport is None:
        # The default transport and those httpx made for proxies named in the environment.
        for used in (client._transport, *client._mounts.values()):
            _keep_deadlines(used)
    return client


@cache
def _tls_context() -> ssl.SSLContext:
    """The TLS settings httpx gives a client by default (certifi's CA bundle, or SSL_CERT_FILE or
    SSL_CERT_DIR), made once per process: each client made its own, and reading the CA bundle cost
    25 ms of CPU per client, 100 ms for the four of an agent run. Sharing it is safe: httpcore only
    sets the ALPN protocols on it, the same ones for every client here (none asks for HTTP/2)."""
    import httpx

    return httpx.create_ssl_context()


def http_get(url: str, *, timeout_s: float, headers: Mapping[str, str] | None = None) -> httpx.Response:
    """``GET url`` and read the whole answer within ``timeout_s`` seconds (raises ``httpx.HTTPError``)."""
    with http_client(timeout_s, headers=headers) as client, within(timeout_s):
        return client.get(url)


def _keep_deadlines(transport: httpx.BaseTransport | None) -> None:
    """Make the connections of an httpx transport open streams that keep to the deadline.

    httpx offers no public way to do it: ``HTTPTransport`` builds its httpcore pool itself and takes
    no network backend, and httpcore reads a request's read timeout once per response (headers,
    then body), so neither its timeout extension nor a check between the chunks of a body can stop
    headers that trickle in. The backend of the pool is replaced instead.
    """
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if backend is None:
        # Pinned by tests/engine/llm/test_deadline.py: an httpx without these would hang again.
        raise RuntimeError("this httpx version's transport has no network backend to bound")
    if not isinstance(backend, _DeadlineBackend):
        pool._network_backend = _DeadlineBackend(backend)  # type: ignore[union-attr]


def _bounded(timeout: float | None, late: type[Exception]) -> float | None:
    """``timeout`` shortened to what is left of the current deadline; raise ``late`` once it passed."""
    deadline = _CURRENT.get()
    if deadline is None:
        return timeout
    left = deadline.left()
    if left < _LEAST_WAIT_S:
        raise late(f"the reply took longer than {deadline.seconds:g} s")
    return left if timeout is None else min(timeout, left)


def _httpcore() -> Any:
    import httpcore

    return httpcore


class _DeadlineBackend:
    """An httpcore network backend whose streams keep to the current deadline."""

    def __init__(self, backend: Any) -> None:
        self._backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> _DeadlineStream:
        timeout = _bounded(timeout, _httpcore().ConnectTimeout)
        return _DeadlineStream(self._backend.connect_tcp(host, port, timeout, local_address, socket_options))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> _DeadlineStream:
        timeout = _bounded(timeout, _httpcore().ConnectTimeout)
        return _DeadlineStream(self._backend.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class _DeadlineStream:
    """An httpcore network stream whose reads, writes and TLS handshake keep to the current deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _bounded(timeout, _httpcore().ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _bounded(timeout, _httpcore().WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> _DeadlineStream:
        timeout = _bounded(timeout, _httpcore().ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)
