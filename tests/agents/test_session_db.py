"""Opening the session database: the file SQLite opens is the one looked at, even when something
swaps it while it is being opened.

The swap is made at the moment ``sqlite3.connect`` starts, from Python's audit hook for that call:
after every look routeshell takes before it, before SQLite resolves the name.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from agents.session_db import SESSIONS_DB, checkpointer, open_sessions_db
from engine.workspace.state import StateError

#: What to do when ``sqlite3.connect`` is next called; the hook cannot be removed, so it acts
#: only when a test has armed it, and it is added by the first test that needs it: added at
#: collection, it would run on every audited event of every test in each worker process.
_armed: list[Callable[[], None]] = []
_hooked: list[bool] = []


def _on_connect(event: str, args: tuple[Any, ...]) -> None:
    if event == "sqlite3.connect" and _armed:
        _armed.pop()()


@pytest.fixture
def on_connect() -> Iterator[list[Callable[[], None]]]:
    if not _hooked:
        sys.addaudithook(_on_connect)
        _hooked.append(True)
    yield _armed
    _armed.clear()


def make_database(path: Path, table: str) -> str:
    """A SQLite database at ``path`` with one table; return the digest of its bytes."""
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(f"CREATE TABLE {table} (x)")
        conn.commit()
    return digest(path)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def state(tmp_path: Path) -> Path:
    folder = tmp_path / "ws" / ".routeshell"
    folder.mkdir(parents=True)
    return folder


def assert_refused(raised: pytest.ExceptionInfo[StateError], *needles: str) -> None:
    line = str(raised.value)
    assert "\n" not in line
    for needle in needles:
        assert needle in line


def test_a_database_made_here_is_written_and_read_again(state: Path) -> None:
    database = state / SESSIONS_DB
    with closing(open_sessions_db(database)) as conn:
        checkpointer(conn).setup()
    assert database.is_file()
    assert not database.is_symlink()
    assert database.stat().st_mode & 0o077 == 0  # made by routeshell, for its user only
    with closing(open_sessions_db(database, write=False)) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert "checkpoints" in tables


def test_a_link_at_the_database_path_is_refused_in_one_line(state: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim.sqlite"
    before = make_database(victim, "mine")
    (state / SESSIONS_DB).symlink_to(victim)
    with pytest.raises(StateError) as raised:
        open_sessions_db(state / SESSIONS_DB)
    assert_refused(raised, f"{state / SESSIONS_DB} is not a regular file", "mv ")
    assert digest(victim) == before


def test_a_link_put_at_the_database_path_as_it_is_opened_is_refused(
    state: Path, tmp_path: Path, on_connect: list[Callable[[], None]]
) -> None:
    """Checked, then swapped for a link before SQLite opens it: SQLite would follow the link."""
    database = state / SESSIONS_DB
    make_database(database, "ours")
    victim = tmp_path / "victim.sqlite"
    before = make_database(victim, "mine")

    def swap() -> None:
        database.rename(state / "aside.sqlite")
        database.symlink_to(victim)

    on_connect.append(swap)
    with pytest.raises(StateError) as raised:
        open_sessions_db(database)
    assert_refused(raised, f"{database} was replaced by a link or another file while it was being opened")
    assert not on_connect  # the swap did happen
    assert digest(victim) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["victim.sqlite", "ws"]


def test_another_file_put_at_the_database_path_as_it_is_opened_is_refused(
    state: Path, tmp_path: Path, on_connect: list[Callable[[], None]]
) -> None:
    """The file SQLite opened has the name that was looked at, but it is not the file looked at:
    what SQLite holds is compared with what was checked, not only its name."""
    database = state / SESSIONS_DB
    make_database(database, "ours")
    other = state / "other.sqlite"
    before = make_database(other, "mine")

    def swap() -> None:
        database.rename(state / "aside.sqlite")
        other.rename(database)

    on_connect.append(swap)
    with pytest.raises(StateError) as raised:
        open_sessions_db(database)
    assert_refused(raised, "was replaced by a link or another file")
    assert digest(database) == before


def test_a_state_directory_swapped_as_the_database_is_opened_is_refused(
    state: Path, tmp_path: Path, on_connect: list[Callable[[], None]]
) -> None:
    """A folder with a database of the same name put where the state directory was."""
    database = state / SESSIONS_DB
    make_database(database, "ours")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    before = make_database(elsewhere / SESSIONS_DB, "mine")

    def swap() -> None:
        state.rename(state.with_name("aside"))
        state.symlink_to(elsewhere, target_is_directory=True)

    on_connect.append(swap)
    with pytest.raises(StateError) as raised:
        open_sessions_db(database)
    assert_refused(raised, "was replaced by a link or another file")
    assert digest(elsewhere / SESSIONS_DB) == before
    assert sorted(os.listdir(elsewhere)) == [SESSIONS_DB]  # no side file made there either
