"""Running another routeshell command as a child process, in its own process group.

The Train and Serve panes (``tui.process_job``) and the local profile's server
(``engine.serve.launcher``) start ``routeshell train|serve ... --events`` this way: the same Python
and the same routeshell code as the caller, unbuffered output, and a process group of its own that
receives the signals, as a terminal's Ctrl-C would reach the child and anything it started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import site
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import engine

#: Set by a command that ran itself again on huge pages (``tui.serve_cli.reexec_with_huge_pages``)
#: to the whole ``GLIBC_TUNABLES`` value it ran with. glibc cuts the variable short in the process's
#: own environment when it reads it (at the first ``:``), so a child given that environment would
#: start with the first tunable alone; :func:`child_env` gives children the whole value again.
HUGE_PAGES_MARK = "ROUTESHELL_HUGE_PAGES"


class Signalable(Protocol):
    """What :func:`signal_group` needs of a process: ``subprocess.Popen`` and asyncio's both fit."""

    @property
    def pid(self) -> int: ...

    def send_signal(self, sig: int) -> None: ...


def routeshell_argv(*words: str) -> list[str]:
    """Return the command that runs ``routeshell WORDS...`` with this Python (``python -m tui``)."""
    return [sys.executable, "-m", "tui", *words]


def guarded_argv(sig: signal.Signals, *words: str) -> list[str]:
    """Return the command that runs ``routeshell WORDS...`` so that it gets ``sig`` when its starter ends.

    The child must be started with its standard input a pipe that the starter keeps open and never
    writes to: its end of file is the news (``tui.orphan_guard``).
    """
    return [sys.executable, "-m", "tui.orphan_guard", sig.name, *words]


def code_path() -> str | None:
    """The directory that holds the ``engine`` and ``tui`` packages, when they are not installed ones."""
    root = str(Path(engine.__file__).resolve().parent.parent)
    installed = {str(Path(p).resolve()) for p in [*site.getsitepackages(), site.getusersitepackages()]}
    return None if root in installed else root


def child_env(extra: Mapping[str, str] | None = None, *, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return the environment for a child routeshell: ``base`` (default ours), unbuffered, plus ``extra``,
    with the whole ``GLIBC_TUNABLES`` of a command that runs on huge pages (:data:`HUGE_PAGES_MARK`).

    From a source checkout the checkout goes first on ``PYTHONPATH``, so the child runs the same
    code as the caller rather than an installed copy.
    """
    env = {**(os.environ if base is None else base), "PYTHONUNBUFFERED": "1", **(extra or {})}
    tunables = env.get(HUGE_PAGES_MARK, "")
    if tunables.startswith("glibc."):
        env["GLIBC_TUNABLES"] = tunables
    root = code_path()
    if root is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


def signal_group(process: Signalable, sig: signal.Signals) -> None:
    """Send ``sig`` to the process group that ``process`` leads (started with ``start_new_session``).

    A process that has just exited is no error; where the group cannot be signalled, the process is.
    """
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass  # it has just exited
    except PermissionError:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
