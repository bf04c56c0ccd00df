"""The Train pane under Pilot, running the real ``routeshell train --events`` job on a tiny corpus."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from textual.widgets import Button, Input, Select, TabbedContent

from engine.config.profiles import load_profile
from tests.tui.conftest import screen_text, settle, wait_until
from tests.tui.test_shell import palette_offers
from tui.app import RouteshellApp
from tui.widgets.checkpoint_list import CheckpointList
from tui.widgets.serve_pane import ServePane
from tui.widgets.train_pane import TrainPane

SIZE = (120, 40)
#: Starting Python and the training libraries, then training, on a busy machine: generous on purpose.
JOB_TIMEOUT = 300.0
TEXT = (
    "The quick brown fox jumps over the lazy dog. A small model learns the shape of words.\n"
    "Training a language model from scratch starts with a tokenizer and a little text.\n"
)


@pytest.fixture
def corpus(tmp_path: Path) -> list[Path]:
    """A few small text files to train on."""
    root = tmp_path / "corpus"
    root.mkdir()
    paths = []
    for index in range(4):
        path = root / f"part{index}.txt"
        path.write_text("".join(f"{index} {line}\n" for line in TEXT.splitlines() * 40))
        paths.append(path)
    return paths


def pane_of(app: RouteshellApp) -> TrainPane:
    return app.screen.query_one(TrainPane)


async def open_train(pilot, *, stage: str = "pretrain", data: str = "", steps: str = "", out: str = "") -> TrainPane:  # type: ignore[no-untyped-def]
    """Show the Train pane and fill its form."""
    await settle(pilot)
    await pilot.press("3")
    await settle(pilot)
    pane = pane_of(pilot.app)
    pane.query_one("#train-stage", Select).value = stage
    pane.query_one("#train-preset", Select).value = "nano"
    pane.query_one("#train-data", Input).value = data
    pane.query_one("#train-steps", Input).value = steps
    pane.query_one("#train-out", Input).value = out
    return pane


def log_text(pane: TrainPane) -> str:
    return "\n".join(pane.logged)


async def wait_for_end(pilot, pane: TrainPane) -> int:  # type: ignore[no-untyped-def]
    await wait_until(pilot, lambda: pane.exit_code is not None, "the job to end", timeout=JOB_TIMEOUT)
    await settle(pilot)
    assert pane.exit_code is not None
    return pane.exit_code


def data_arg(corpus: list[Path]) -> str:
    return " ".join(str(path) for path in corpus)


async def test_cancel_interrupts_resume_finishes_and_the_model_goes_to_the_serve_pane(
    tmp_path: Path, corpus: list[Path]
) -> None:
    out = tmp_path / "[bold]out"  # markup in a path is shown as it is
    app = RouteshellApp(tmp_path, load_profile("ci"))
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_train(pilot, data=data_arg(corpus), steps="40", out=str(out))
        await pilot.press("ctrl+g")
        assert pane.running
        await wait_until(pilot, lambda: pane.progress.step >= 1, "the first step", timeout=JOB_TIMEOUT)
        # A second job while one runs is refused, in one line.
        await pilot.press("ctrl+g")
        assert "a job is running" in pane.notice
        await pilot.press("ctrl+s")
        assert await wait_for_end(pilot, pane) == 130, log_text(pane)
        assert pane.notice.startswith("job interrupted (exit 130)")
        assert "Resume" in pane.notice
        assert pane.resumable
        assert not pane.query_one("#train-resume", Button).disabled
        stopped_at = pane.progress.step
        assert 1 <= stopped_at < 40
        await pilot.click("#train-resume")
        assert pane.running
        commands = [line for line in log_text(pane).splitlines() if line.startswith("$ routeshell train")]
        assert len(commands) == 2
        assert commands[0].startswith(f"$ routeshell train pretrain --out '{out}'")
        assert commands[1] == commands[0].replace(" --events", " --resume --events")
        # The resumed job runs to the end.
        assert await wait_for_end(pilot, pane) == 0, log_text(pane)
        assert pane.notice == "job done"
        assert pane.chart.train, "the chart has training-loss points"
        assert pane.chart.train[0][0] <= stopped_at, "the chart keeps the points before the stop"
        assert pane.progress.step == pane.progress.max_steps == 40
        assert "step 40/40" in pane.status
        models = pane.checkpoints
        await wait_until(pilot, lambda: any(c.final and c.path == out for c in models.checkpoints), "the model")
        assert models.highlighted is not None
        assert models.highlighted.path == out
        await wait_until(pilot, lambda: not models.card_text.startswith("reading"), "the model card")
        card = (out / "README.md").read_text()
        assert models.card_text.strip()
        assert models.card_text.splitlines()[0] == card.splitlines()[0]
        assert "[bold]out  model" in screen_text(app)
        # s on the list of models sends the finished one to the Serve pane, where it is the model chosen.
        models.options.focus()
        await pilot.press("s")
        await settle(pilot)
        assert app.screen.query_one(TabbedContent).active == "serve"
        serve = app.screen.query_one(ServePane)
        assert serve.model == out
        assert "[bold]out" in screen_text(app)


async def test_quitting_the_app_stops_the_job(tmp_path: Path, corpus: list[Path]) -> None:
    app = RouteshellApp(tmp_path, load_profile("ci"))
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_train(pilot, data=data_arg(corpus), steps="100000", out=str(tmp_path / "out"))
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: pane.progress.step >= 1, "the first step", timeout=JOB_TIMEOUT)
        job = pane.job
        assert job is not None
        assert job.process is not None
        await pilot.press("q")
    # SIGINT reached it and it stopped cleanly, before the app was gone: no process is left behind.
    assert job.process.returncode == 130
    with pytest.raises(ProcessLookupError):
        os.killpg(job.process.pid, 0)


@pytest.mark.parametrize(
    ("steps", "out", "says"),
    [
        ("30", "", "cannot start: the output directory is empty"),
        ("0", "out", "cannot start: max steps must be a positive whole number, not '0'"),
        ("many", "out", "cannot start: max steps must be a positive whole number, not 'many'"),
    ],
)
async def test_bad_form_input_is_refused_in_one_line(tmp_path: Path, steps: str, out: str, says: str) -> None:
    app = RouteshellApp(tmp_path, load_profile("ci"))
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_train(pilot, steps=steps, out=out)
        await pilot.press("ctrl+g")
        await settle(pilot)
        assert pane.notice.startswith(says)
        assert pane.job is None
        assert says in screen_text(app)
        # Enter in a field starts the job too, and is refused the same way.
        pane.query_one("#train-steps", Input).focus()
        await pilot.press("enter")
        assert pane.notice.startswith(says)


async def test_a_missing_data_file_shows_the_jobs_error_literally(tmp_path: Path) -> None:
    missing = tmp_path / "\x1b[31m[bold]gone[/bold].txt"
    app = RouteshellApp(tmp_path, load_profile("ci"))
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_train(pilot, data=f"'{missing}'", steps="30", out=str(tmp_path / "out"))
        await pilot.click("#train-start")  # the button starts a job as ctrl+g does
        first = pane.job
        assert first is not None
        assert await wait_for_end(pilot, pane) == 2, log_text(pane)
        # The clicked button, disabled while the job ran, passed the focus to Cancel, which gave it
        # back at the end: the focus never left the pane, so its keys still reach it.
        assert app.focused is pane.query_one("#train-start", Button)
        assert pane.notice.startswith("job stopped on bad input (exit 2): ")
        assert not pane.resumable
        shown = screen_text(app) + "\n" + log_text(pane)
        # The hostile name is shown as characters: the escape escaped, the markup not parsed.
        assert "\x1b" not in shown
        assert "\\x1b[31m[bold]gone[/bold].txt" in pane.notice
        assert "stderr: " in log_text(pane)
        assert "[bold]gone[/bold]" in log_text(pane)
        assert pane.query_one("#train-resume", Button).disabled
        assert not pane.query_one("#train-start", Button).disabled
        await pilot.press("ctrl+g")
        assert pane.job is not first
        assert await wait_for_end(pilot, pane) == 2, log_text(pane)


async def test_the_serve_key_refuses_without_a_finished_model(tmp_path: Path) -> None:
    app = RouteshellApp(tmp_path, load_profile("ci"))
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_train(pilot)
        pane.checkpoints.options.focus()
        await pilot.press("s")
        await settle(pilot)
        assert app.screen.query_one(TabbedContent).active == "train"
        assert app.screen.query_one(ServePane).model is None
        assert isinstance(pane.checkpoints, CheckpointList)


async def test_the_palette_drives_the_train_pane(tmp_path: Path) -> None:
    app = RouteshellApp(tmp_path, load_profile("ci"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p", *"cancel the job")
        await wait_until(pilot, lambda: palette_offers(app, "Train: cancel the job"), "the palette to offer it")
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen.query_one(TabbedContent).active == "train"
        assert pane_of(app).notice == "no job is running"
