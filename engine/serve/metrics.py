"""Prometheus metrics of the server, in a registry of its own (``GET /metrics``).

Requests by path and status, prompt and completion tokens, time to first token, and, read from
the engine when scraped, the queue depth, the running sequences and the recent tokens per second.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

#: The paths counted by name; any other path is counted as "other", so the label stays bounded.
KNOWN_PATHS = frozenset({"/v1/models", "/v1/chat/completions", "/v1/completions", "/health", "/metrics"})
CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServeMetrics:
    """The server's counters; ``queue_depth``, ``running`` and ``tokens_per_second`` are read when scraped."""

    def __init__(
        self, queue_depth: Callable[[], int], running: Callable[[], int], tokens_per_second: Callable[[], float]
    ) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "routeshell_requests",
            "HTTP requests answered, by path and status",
            ["path", "status"],
            registry=self.registry,
        )
        self.prompt_tokens = Counter("routeshell_prompt_tokens", "Prompt tokens of requests", registry=self.registry)
        self.completion_tokens = Counter("routeshell_completion_tokens", "Tokens generated", registry=self.registry)
        self.first_token = Histogram(
            "routeshell_time_to_first_token_seconds",
            "Seconds from a request's admission to its first generated token",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=self.registry,
        )
        Gauge("routeshell_queue_depth", "Sequences waiting for a batch slot", registry=self.registry).set_function(
            lambda: float(queue_depth())
        )
        Gauge("routeshell_running_sequences", "Sequences in the running batch", registry=self.registry).set_function(
            lambda: float(running())
        )
        Gauge(
            "routeshell_tokens_per_second", "Tokens generated per second, recently", registry=self.registry
        ).set_function(tokens_per_second)
        self._lock = threading.Lock()
        self.total_requests = 0

    def request(self, path: str, status: int, prompt_tokens: int, completion_tokens: int) -> None:
        """Count one answered request (``total_requests`` counts the API's alone)."""
        self.requests.labels(path if path in KNOWN_PATHS else "other", str(status)).inc()
        self.prompt_tokens.inc(prompt_tokens)
        if path.startswith("/v1/"):  # /health polls (the Serve pane's, a probe's) are not work
            with self._lock:
                self.total_requests += 1

    def tokens(self, count: int) -> None:
        """Count ``count`` tokens generated just now."""
        self.completion_tokens.inc(count)

    def time_to_first_token(self, seconds: float) -> None:
        self.first_token.observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
