"""Fixtures for driving the real app with Textual's Pilot."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from engine.config.profiles import load_profile
from tui.app import RouteshellApp


async def settle(pilot: Pilot[int]) -> None:
    """Wait until the workers are done (but dialogs awaiting an answer) and their messages handled."""
    for _ in range(3):
        await pilot.pause()
        # A file operation's worker may be waiting on a dialog: that one is not waited for.
        waited = [worker for worker in pilot.app.workers if worker.group != "file-op"]
        if waited:  # an empty list would mean "every worker"
            await pilot.app.workers.wait_for_complete(waited)
    await pilot.pause()


async def wait_until(pilot: Pilot[int], ready: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Pause until ``ready()`` holds, failing with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def screen_text(app: RouteshellApp) -> str:
    """Return the characters the terminal shows, one line per row (styles dropped)."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(segment.text for segment in strip) for strip in strips)


@pytest.fixture
def make_app(workspace: Path):  # type: ignore[no-untyped-def]
    """Build the real app on the sample workspace with the shipped ``ci`` profile."""

    def factory(root: Path = workspace) -> RouteshellApp:
        return RouteshellApp(root, load_profile("ci"))

    return factory


@pytest.fixture
def editor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Install a non-interactive $EDITOR running the given Python code on the file it is given."""

    def install(code: str) -> None:
        script = tmp_path / "editor.py"
        script.write_text(f"import sys\nfrom pathlib import Path\npath = Path(sys.argv[1])\n{code}\n")
        monkeypatch.setenv("EDITOR", f"python3 {script}")
        monkeypatch.delenv("VISUAL", raising=False)

    return install
