"""The shell on the ``local`` profile: the Agent pane starts the profile's model server for its first task,
says how to make a model when there is none, and quitting the shell stops the server."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from engine.config.profiles import load_profile
from engine.names import shell_line
from engine.serve.launcher import probe
from tests.engine.serve.test_launcher import free_port, write_local
from tests.engine.tinyllm.training_support import TrainRun
from tests.tui.conftest import settle, wait_until
from tui.app import RouteshellApp
from tui.widgets.agent_pane import AgentPane
from tui.widgets.agent_transcript import AgentTranscript
from tui.widgets.task_input import TaskInput

SIZE = (120, 40)
RUN_TIMEOUT = 300.0


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def log_text(app: RouteshellApp) -> str:
    """The transcript's text with every space and line break left out (it wraps long lines)."""
    log = app.screen.query_one(AgentTranscript).log_widget
    return "".join("".join(line.text for line in log.lines).split())


def squeezed(text: str) -> str:
    return "".join(text.split())


async def run_task(pilot, task: str) -> AgentPane:  # type: ignore[no-untyped-def]
    await settle(pilot)
    await pilot.press("1")
    await settle(pilot)
    pane = pilot.app.screen.query_one(AgentPane)
    pilot.app.screen.query_one(TaskInput).value = task
    await pilot.press("enter")
    await wait_until(pilot, lambda: not pane.running, "the run to end", timeout=RUN_TIMEOUT)
    await settle(pilot)
    return pane


async def test_without_a_model_the_agent_pane_says_how_to_make_one(isolated_home: Path, workspace: Path) -> None:
    write_local(isolated_home, free_port())
    app = RouteshellApp(workspace, load_profile("local"))
    async with app.run_test(size=SIZE) as pilot:
        await run_task(pilot, "add a README")
        where = isolated_home / ".local" / "share" / "routeshell" / "models" / "tinyllm"
        shown = log_text(app)
        command = shell_line(["routeshell", "train", "all", "--out", str(where)])
        how = f"no model to serve at {where} yet: make one with {command}"
        assert squeezed(how) in shown
        assert "Trainpane" in shown


async def test_the_first_task_starts_the_server_and_quitting_stops_it(
    isolated_home: Path, workspace: Path, pretrained: tuple[Path, TrainRun]
) -> None:
    model = isolated_home / ".local" / "share" / "routeshell" / "models" / "tinyllm"
    shutil.copytree(pretrained[0], model / "sft", ignore=shutil.ignore_patterns("checkpoints"))
    port = free_port()
    write_local(isolated_home, port, f'model = "{model}"\nstart_timeout_s = 300')
    profiles = Path(os.environ["XDG_CONFIG_HOME"]) / "routeshell" / "profiles"
    with (profiles / "local.toml").open("a") as handle:
        handle.write("\n[llm.planner]\nmax_retries = 0\n")
    url = f"http://127.0.0.1:{port}/v1"
    app = RouteshellApp(workspace, load_profile("local"))
    async with app.run_test(size=SIZE) as pilot:
        pane = await run_task(pilot, "add a README")
        assert squeezed("starting the local model server: routeshell serve --model") in log_text(app)
        assert pane.local_server is not None
        assert pane.local_server.started
        assert probe(url) == "ready"
    assert probe(url) == "absent"
