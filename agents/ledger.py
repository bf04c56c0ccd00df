"""Token usage per thread and role, written the moment a model call returns.

Graph state is checkpointed only when a node completes, so tokens spent by a node that then
fails (an endpoint error, a role that gave no valid reply, the budget running out) would be
lost from it. The ledger keeps every call in the session database instead, so budgets and
totals stay right across failures and resumes.
"""

from __future__ import annotations

import sqlite3
import threading

from engine.llm.client import Usage

_SCHEMA = """CREATE TABLE IF NOT EXISTS routeshell_usage (
    thread TEXT NOT NULL, role TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, estimated INTEGER NOT NULL)"""


class UsageLedger:
    """Token counts of one database (``:memory:`` by default), by thread and role."""

    def __init__(self, conn: sqlite3.Connection | None = None) -> None:
        self._conn = conn or sqlite3.connect(":memory:", check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock, self._conn:
            self._conn.execute(_SCHEMA)

    def add(self, thread: str, role: str, usage: Usage) -> None:
        """Record one call's usage, committed before this returns."""
        with self._lock, self._conn:
            self._conn.execute(
                "INSERT INTO routeshell_usage VALUES (?, ?, ?, ?, ?)",
                (thread, role, usage.prompt_tokens, usage.completion_tokens, int(usage.estimated)),
            )

    def per_role(self, thread: str) -> dict[str, Usage]:
        """Return the usage of ``thread`` by role."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT role, SUM(prompt_tokens), SUM(completion_tokens), MAX(estimated) FROM routeshell_usage "
                "WHERE thread = ? GROUP BY role ORDER BY MIN(rowid)",
                (thread,),
            ).fetchall()
        return {
            role: Usage(int(prompt), int(completion), bool(estimated)) for role, prompt, completion, estimated in rows
        }

    def total(self, thread: str) -> Usage:
        """Return the usage of ``thread`` over every role."""
        return sum(self.per_role(thread).values(), Usage())
