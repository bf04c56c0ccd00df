"""The Serve pane under Pilot, running the real ``routeshell serve --events`` on the session's nano model."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from textual.binding import Binding
from textual.widgets import Button, Input, Select

from engine.config.profiles import load_profile
from engine.serve.launcher import probe
from tests.engine.tinyllm.training_support import TrainRun
from tests.tui.conftest import screen_text, settle, wait_until
from tests.tui.test_shell import palette_offers
from tui.app import RouteshellApp
from tui.screens.help_screen import HelpScreen
from tui.widgets.serve_pane import ServePane

SIZE = (120, 40)
#: Starting Python, torch and the model on a busy machine: generous on purpose.
START_TIMEOUT = 300.0
#: A model directory whose name (the served model id) holds markup and a terminal escape.
HOSTILE = "[red]nano\x1b[0m"


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


@pytest.fixture
def model(tmp_path: Path, pretrained: tuple[Path, TrainRun]) -> Path:
    """The nano model, in a directory whose name the server answers to: markup and an escape in it."""
    path = tmp_path / "models" / HOSTILE
    shutil.copytree(pretrained[0], path, ignore=shutil.ignore_patterns("checkpoints"))
    return path


async def open_serve(pilot, model: Path | None) -> ServePane:  # type: ignore[no-untyped-def]
    """Show the Serve pane, choose ``model`` and any free port."""
    await settle(pilot)
    await pilot.press("4")
    await settle(pilot)
    pane = pilot.app.screen.query_one(ServePane)
    if model is not None:
        pane.choose(model)
    pane.query_one("#serve-port", Input).value = "0"
    await settle(pilot)
    return pane


async def wait_ready(pilot, pane: ServePane) -> str:  # type: ignore[no-untyped-def]
    await wait_until(pilot, lambda: (pane.job is not None and pane.job.url is not None) or pane.exit_code is not None,
                     "the server to listen", timeout=START_TIMEOUT)  # fmt: skip
    assert pane.job is not None
    assert pane.job.url is not None, "\n".join(pane.logged)
    return pane.job.url


async def test_start_watch_chat_and_stop(tmp_path: Path, model: Path) -> None:
    app = RouteshellApp(tmp_path, load_profile("ci"))
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_serve(pilot, model)
        assert pane.model == model
        # With a key the server refuses requests without it: the chat box must send it.
        pane.query_one("#serve-key", Input).value = "sekrit-key"
        # The device: auto is a CUDA GPU where torch sees one, else this CPU.
        assert pane.query_one("#serve-device", Select).value == "cpu"
        pane.query_one("#serve-device", Select).value = "auto"
        await pilot.click("#serve-start")
        assert pane.running
        # The focus goes from the button clicked, now disabled, to Stop: never outside the pane.
        assert app.focused is pane.query_one("#serve-stop", Button)
        assert any(line.startswith("$ routeshell serve") and "--device auto" in line for line in pane.logged)
        assert pane.query_one("#serve-device", Select).disabled
        url = await wait_ready(pilot, pane)
        await wait_until(pilot, lambda: pane.health is not None, "the first metrics")
        assert "tok/s" in pane.status
        assert "waiting 0" in pane.status
        shown = screen_text(app)
        # The model id comes from the directory name: shown escaped, markup as it is, no raw escape.
        assert "[red]nano\\x1b[0m" in shown
        assert "\x1b" not in shown

        # The chat box streams a reply from the server.
        chat = pane.chat
        assert chat.model == HOSTILE
        pilot.app.screen.query_one("#serve-chat-input", Input).focus()
        await pilot.press(*"def", "enter")
        await wait_until(pilot, lambda: not chat.replying, "the reply", timeout=START_TIMEOUT)
        reply = chat.turns[-1]
        assert reply.role == "assistant"
        assert not reply.error, reply.content
        assert reply.content
        assert chat.pieces >= 1
        assert "you: def" in chat.transcript
        assert "\x1b" not in chat.transcript
        assert chat.transcript.startswith("you: def\n[red]nano\\x1b[0m: ")
        # The request shows in the log and, soon, in the metrics.
        await wait_until(pilot, lambda: "POST /v1/chat/completions 200" in "\n".join(pane.logged), "the request's line")
        await wait_until(pilot, lambda: pane.health is not None and (pane.health.requests or 0) >= 1, "the count")
        assert "sekrit" not in screen_text(app)
        assert "sekrit" not in "\n".join(pane.logged)

        await pilot.click("#serve-stop")
        await wait_until(pilot, lambda: pane.exit_code is not None, "the server to stop", timeout=60)
        await settle(pilot)
        assert pane.notice == "server stopped"
        assert not pane.running
        assert app.focused is pane.query_one("#serve-start", Button)
        assert "idle" in pane.status
        assert probe(url) == "absent"


async def test_quitting_the_app_stops_the_server(tmp_path: Path, model: Path) -> None:
    app = RouteshellApp(tmp_path, load_profile("ci"))
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_serve(pilot, model)
        await pilot.press("ctrl+g")
        url = await wait_ready(pilot, pane)
        assert pane.job is not None
        assert pane.job.process is not None
        pid = pane.job.process.pid
    assert probe(url) == "absent"
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_the_form_refuses_with_one_line(tmp_path: Path) -> None:
    app = RouteshellApp(tmp_path, load_profile("ci"))
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_serve(pilot, None)
        await pilot.press("ctrl+p", *"start the server")
        await wait_until(pilot, lambda: palette_offers(app, "Serve: start the server"), "the palette to offer it")
        await pilot.press("enter")
        await settle(pilot)
        assert pane.notice.startswith("cannot start: choose a model")
        pane.form.model_select.focus()
        await pilot.press("ctrl+g")
        await settle(pilot)
        assert pane.notice.startswith("cannot start: choose a model")
        assert pane.job is None
        pane.choose(tmp_path / "m")
        pane.query_one("#serve-host", Input).value = "0.0.0.0"
        await pilot.click("#serve-start")
        await settle(pilot)
        assert pane.notice.startswith("cannot start: serving on 0.0.0.0 opens the model to the network")
        assert pane.job is None
        assert "cannot start" in screen_text(app)


async def test_the_models_of_the_train_output_directory_are_offered(tmp_path: Path) -> None:
    out = tmp_path / "models" / "tinyllm"
    for stage in ("pretrain", "sft"):
        (out / stage).mkdir(parents=True)
        (out / stage / "config.json").write_text("{}")
        (out / stage / "model.safetensors").write_bytes(b"")
    app = RouteshellApp(tmp_path, load_profile("ci"))
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_serve(pilot, None)
        await wait_until(pilot, lambda: pane.form.models == [out / "pretrain", out / "sft"], "the models found")
        assert pane.model is None  # offered, not chosen for the user
        pane.choose(out / "sft")
        await settle(pilot)
        assert pane.model == out / "sft"
        assert "models/tinyllm/sft" in screen_text(app)


async def test_the_help_lists_the_serve_keys(tmp_path: Path) -> None:
    app = RouteshellApp(tmp_path, load_profile("ci"))
    async with app.run_test(size=SIZE) as pilot:
        await open_serve(pilot, None)
        app.action_help()
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        sections = dict(app.screen.sections)
        assert [b.key for b in sections["Serve pane"]] == [b.key for b in ServePane.BINDINGS if isinstance(b, Binding)]
        assert [b.key for b in sections["Serve chat"]] == ["ctrl+n"]


async def test_a_server_that_cannot_start_says_why(tmp_path: Path) -> None:
    app = RouteshellApp(tmp_path, load_profile("ci"))
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_serve(pilot, tmp_path / "[bold]gone")
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: pane.exit_code is not None, "the server to give up", timeout=START_TIMEOUT)
        await settle(pilot)
        assert pane.exit_code == 2
        assert pane.notice.startswith("server did not start (exited with code 2): ")
        assert "[bold]gone" in pane.notice
        assert not pane.running
        assert not pane.query_one("#serve-start").disabled
