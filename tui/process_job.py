"""A routeshell command run as a background job of a pane: started, read line by line, stopped.

The Train pane's training job (:class:`tui.train_job.TrainJob`) and the Serve pane's server
(:class:`tui.serve_job.ServeJob`) are both a ``routeshell ... --events`` subprocess in its own
process group (:mod:`engine.child_process`), whose stdout carries one JSON event a line and whose
stderr carries warnings. This module holds what they share: starting the process, handing every
line to a callback as it comes, reading an event line against the events a job may send
(:func:`parse_event_line`), and stopping it with SIGINT, then SIGKILL after a grace period.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any, Literal

from engine.child_process import child_env, signal_group
from engine.events import event_problem

#: A longer line than this from the job is dropped (with a note), not buffered without end.
MAX_LINE = 1 << 20

Stream = Literal["stdout", "stderr"]


def parse_event_line(line: str, kinds: Collection[str], what: str) -> tuple[dict[str, Any] | None, str | None]:
    """Return ``(event, None)`` for a line holding a valid event of one of ``kinds``, else ``(None, why)``.

    ``why`` is None for a line that is simply not JSON (shown as it is), and a reason for JSON that
    breaks the event contract (shown with the line, so a mismatch between the pane and the job
    shows); ``what`` names the job's events in that reason (``training``, ``server``).
    """
    text = line.strip()
    if not text.startswith("{"):
        return None, None
    try:
        event = json.loads(text)
    except ValueError:
        return None, None
    if not isinstance(event, dict):
        return None, None
    kind = event.get("type")
    if kind not in kinds:
        return None, f"not a {what} event (type {kind!r})"
    problem = event_problem(event)
    if problem is not None:
        return None, problem
    return event, None


class ProcessJob:
    """One running ``routeshell ... --events`` process, in its own process group.

    The group gets the signals, as a terminal's Ctrl-C would reach the job and anything it started.
    """

    def __init__(
        self, argv: list[str], cwd: Path, *, env: Mapping[str, str] | None = None, guarded: bool = False
    ) -> None:
        self.argv = argv
        self.cwd = cwd
        #: Variables set for the job on top of ours (a secret that must not show in its command line).
        self.env = dict(env or {})
        #: Whether the job's standard input is a pipe held open until it ends, for a job started
        #: through ``tui.orphan_guard`` (``engine.child_process.guarded_argv``): if this process
        #: dies, however it dies, the job sees the pipe close and stops.
        self.guarded = guarded
        self.process: asyncio.subprocess.Process | None = None
        self.interrupted = False

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self) -> None:
        """Start the process. Raises OSError when it cannot be started."""
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            cwd=self.cwd,
            env=child_env(self.env),
            stdin=asyncio.subprocess.PIPE if self.guarded else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            limit=MAX_LINE,
        )

    async def run(self, on_line: Callable[[Stream, str], None]) -> int:
        """Hand every line of stdout and stderr to ``on_line`` as it comes; return the exit code."""
        process = self.process
        if process is None or process.stdout is None or process.stderr is None:
            raise RuntimeError("the job has not been started")
        await asyncio.gather(
            _read_lines(process.stdout, "stdout", on_line), _read_lines(process.stderr, "stderr", on_line)
        )
        return await process.wait()

    def interrupt(self) -> bool:
        """Send SIGINT to the job (once); return False when it is not running."""
        if not self.running or self.process is None:
            return False
        if not self.interrupted:
            self.interrupted = True
            signal_group(self.process, signal.SIGINT)
        return True

    async def stop(self, grace: float) -> int | None:
        """Interrupt the job, kill it if it is still running after ``grace`` seconds; return its exit code."""
        if self.process is None:
            return None
        self.interrupt()
        try:
            return await asyncio.wait_for(asyncio.shield(self.process.wait()), grace)
        except TimeoutError:
            signal_group(self.process, signal.SIGKILL)
            return await self.process.wait()


async def _read_lines(stream: asyncio.StreamReader, name: Stream, on_line: Callable[[Stream, str], None]) -> None:
    while True:
        try:
            raw = await stream.readline()
        except ValueError:
            # A line past MAX_LINE: asyncio drops what it buffered; say so instead of holding it.
            on_line("stderr", f"(a line of {name} longer than {MAX_LINE:,} bytes was left out)")
            continue
        if not raw:
            return
        on_line(name, raw.decode("utf-8", "surrogateescape").rstrip("\r\n"))
