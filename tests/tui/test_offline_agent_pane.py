"""The Agent pane on a files-only local profile: one offline task end to end on tiny models.

The nano planner may write a wrong plan; the flow must hold: the server starts for the first task,
the builder answers under the planner schema, and the run ends in an approval dialog, a failure
line or a one-line decline, never a crash. (What a code task gets is in tests/agents/test_files_planner.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config.profiles import load_profile
from tests.engine.serve.test_launcher import free_port, write_planner_local
from tests.tui.conftest import settle, wait_until
from tests.tui.test_local_server import SIZE, log_text, squeezed
from tui.app import RouteshellApp
from tui.screens.approval_screen import ApprovalScreen
from tui.widgets.agent_pane import AgentPane
from tui.widgets.task_input import TaskInput

RUN_TIMEOUT = 300.0


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


async def start_task(pilot, task: str) -> AgentPane:  # type: ignore[no-untyped-def]
    await settle(pilot)
    await pilot.press("1")
    await settle(pilot)
    pane = pilot.app.screen.query_one(AgentPane)
    pilot.app.screen.query_one(TaskInput).value = task
    await pilot.press("enter")
    await wait_until(
        pilot,
        lambda: isinstance(pilot.app.screen, ApprovalScreen) or not pane.running,
        "an approval dialog or the end of the run",
        timeout=RUN_TIMEOUT,
    )
    await settle(pilot)
    return pane


async def test_an_offline_file_task_runs_end_to_end(
    isolated_home: Path, tmp_path: Path, planner_models: tuple[Path, Path]
) -> None:
    base, adapter = planner_models
    write_planner_local(isolated_home, free_port(), base, adapter)
    workspace = tmp_path / "ws"
    (workspace / "docs").mkdir(parents=True)
    (workspace / "docs" / "report.pdf").write_bytes(b"%PDF")
    app = RouteshellApp(workspace, load_profile("local"))
    async with app.run_test(size=SIZE) as pilot:
        pane = await start_task(pilot, "move the pdfs into archive")
        if isinstance(app.screen, ApprovalScreen):
            await pilot.press("r", "enter")
            await settle(pilot)
            await wait_until(pilot, lambda: not pane.running, "the run to end", timeout=RUN_TIMEOUT)
        shown = log_text(app)
        assert squeezed("starting the local model server: routeshell serve --model") in shown
        assert "builder" in shown
        assert pane.meter.status in ("done", "failed")
    assert (workspace / "docs" / "report.pdf").exists()


async def test_a_plan_declined_as_unsure_is_shown_anyway_on_ctrl_y(
    isolated_home: Path, tmp_path: Path, planner_models: tuple[Path, Path]
) -> None:
    base, adapter = planner_models
    write_planner_local(isolated_home, free_port(), base, adapter, min_probability=1.0)
    workspace = tmp_path / "ws"
    (workspace / "docs").mkdir(parents=True)
    (workspace / "docs" / "report.pdf").write_bytes(b"%PDF")
    app = RouteshellApp(workspace, load_profile("local"))
    async with app.run_test(size=SIZE) as pilot:
        pane = await start_task(pilot, "make a folder called done and keep")
        assert not isinstance(app.screen, ApprovalScreen)
        shown = log_text(app)
        assert squeezed("the local planner is unsure of its plan") in shown
        assert squeezed("ctrl+y asks again and shows that plan anyway") in shown
        assert pane.unsure_task == "make a folder called done and keep"
        await pilot.press("ctrl+y")
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, ApprovalScreen) or not pane.running,
            "an approval dialog",
            timeout=RUN_TIMEOUT,
        )
        assert isinstance(app.screen, ApprovalScreen)  # offered, whatever the approval mode: never applied unseen
        await pilot.press("r", "enter")
        await settle(pilot)
        await wait_until(pilot, lambda: not pane.running, "the run to end", timeout=RUN_TIMEOUT)
        assert pane.unsure_task is None
    assert sorted(str(p.relative_to(workspace)) for p in workspace.rglob("*") if ".routeshell" not in p.parts) == [
        "docs",
        "docs/report.pdf",
    ]
