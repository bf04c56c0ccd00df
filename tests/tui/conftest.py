"""Fixtures for driving the real app with Textual's Pilot."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from engine.profiles import load_profile
from tui.app import RouteshellApp


async def settle(pilot: Pilot[int]) -> None:
    """Wait until every worker is done and the messages they posted are handled."""
    for _ in range(3):
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
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
