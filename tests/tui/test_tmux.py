"""The real app in a real terminal: tmux at 80x24, as over SSH, read back with capture-pane."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.scripted_llm import Reply, ScriptedLLM

pytestmark = [
    pytest.mark.tmux,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (make test installs it as root)"),
]

ROUTESHELL = Path(sys.executable).parent / "routeshell"


class Tmux:
    """One private tmux server running a bash shell in an 80x24 window."""

    def __init__(self, socket: str) -> None:
        self.socket = socket

    def __call__(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True, timeout=30
        )
        return result.stdout

    def send(self, *keys: str) -> None:
        self("send-keys", "-t", "t", *keys)

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "t")

    def wait_for(self, test: Callable[[str], bool], what: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            shown = self.screen()
            if test(shown):
                return shown
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}; the screen shows:\n{shown}")
            time.sleep(0.2)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    session = Tmux(f"routeshell-test-{os.getpid()}-{tmp_path.name}")
    editor = tmp_path / "editor.py"
    editor.write_text("import sys\nwith open(sys.argv[1], 'a') as f:\n    f.write('# edited in the editor\\n')\n")
    env = {**os.environ, "PS1": "$ ", "TERM": "xterm-256color", "EDITOR": f"{sys.executable} {editor}"}
    command = ["tmux", "-L", session.socket, "-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", "80", "-y", "24"]
    subprocess.run(
        [*command, "bash", "--norc", "--noprofile"],
        env=env,
        check=True,
        timeout=30,
    )
    try:
        yield session
    finally:
        subprocess.run(["tmux", "-L", session.socket, "kill-server"], capture_output=True, check=False)


def test_real_app_at_80x24_and_quit_restores_terminal(tmux: Tmux, workspace: Path) -> None:
    tmux.send("echo before-the-app", "Enter")
    tmux.wait_for(lambda s: "before-the-app\n$" in s, "the shell prompt")
    tmux.send(f"{ROUTESHELL} --profile ci --workspace {workspace}", "Enter")

    shown = tmux.wait_for(lambda s: "README.md" in s and "2 Files" in s and "Quit" in s, "the Files pane")
    lines = shown.split("\n")
    assert len(lines) >= 24
    assert "2 Files" in shown
    assert "ws · profile ci" in shown
    # Hostile names arrive as literal text: no escape reached the terminal, no markup was applied.
    assert "esc\\x1b[31mred" in shown
    assert "[bold]b.txt" in shown
    assert "new\\nline.txt" in shown
    assert "[red]x[/" in shown

    tmux.send("?")
    tmux.wait_for(lambda s: "Go to the parent directory" in s, "the help screen")
    tmux.send("Escape")
    tmux.wait_for(lambda s: "Go to the parent directory" not in s and "README.md" in s, "the help to close")

    tmux.send("Down", "Down", "Enter")  # into src/
    tmux.wait_for(lambda s: "ws/src/" in s and "pkg/" in s, "the src directory")
    tmux.send("l")
    tmux.wait_for(lambda s: "def hello(name: str)" in s, "the preview of hello.py")

    # Editing hands the terminal to $EDITOR and back; the saved edit is an undoable plan.
    tmux.send("e")
    tmux.wait_for(lambda s: "# edited in the editor" in s and "u to undo" in s, "the edit to apply")
    assert "# edited in the editor" in (workspace / "src" / "pkg" / "hello.py").read_text()
    tmux.send("u")
    tmux.wait_for(lambda s: "Undo plan" in s and "restore the previous content" in s, "the undo question")
    tmux.send("y")
    tmux.wait_for(lambda s: "Undid plan" in s, "the undo")
    assert "edited" not in (workspace / "src" / "pkg" / "hello.py").read_text()

    tmux.send("q")
    shown = tmux.wait_for(lambda s: "README.md" not in s and "before-the-app" in s, "the app to quit")
    # The alternate screen is gone and the shell answers again.
    tmux.send("echo exit=$?", "Enter")
    shown = tmux.wait_for(lambda s: "exit=0" in s, "the exit status")
    assert "2 Files" not in shown


def test_agent_task_with_an_approval_in_a_real_terminal(tmux: Tmux, workspace: Path, scripted_llm: ScriptedLLM) -> None:
    loud = {"op": "patch", "path": "src/pkg/hello.py", "find": 'f"hello {name}"', "replace": 'f"HELLO {name}"'}
    plan = {"version": 1, "goal": "greet loudly", "steps": [loud]}
    scripted_llm.enqueue(Reply(plan))
    tmux.send(f"LLM_API_BASE={scripted_llm.base_url} {ROUTESHELL} --profile ci --workspace {workspace}", "Enter")
    tmux.wait_for(lambda s: "README.md" in s and "2 Files" in s, "the Files pane")
    tmux.send("1")
    tmux.wait_for(lambda s: "Type a task below" in s, "the Agent pane")
    # The ci profile only shows plans (never); ctrl+t goes on to all, then ask, which waits for an answer.
    tmux.send("C-t")
    tmux.wait_for(lambda s: "approval all" in s, "approval all")
    tmux.send("C-t")
    tmux.wait_for(lambda s: "approval ask" in s, "approval ask")
    tmux.send("-l", "make the greeting loud")
    tmux.send("Enter")
    tmux.wait_for(lambda s: "waits for your approval" in s and '+    return f"HELLO {name}"' in s, "the approval")
    tmux.send("a")
    tmux.wait_for(lambda s: "done: builder" in s, "the run to finish")
    assert 'f"HELLO {name}"' in (workspace / "src" / "pkg" / "hello.py").read_text()
    tmux.send("Escape", "q")
    tmux.wait_for(lambda s: "README.md" not in s and "Type a task" not in s, "the app to quit")


def test_an_offline_task_on_the_local_planner_in_a_real_terminal(
    tmux: Tmux, isolated_home: Path, tmp_path: Path, planner_models: tuple[Path, Path]
) -> None:
    from tests.engine.serve.test_launcher import free_port, write_planner_local

    base, adapter = planner_models
    write_planner_local(isolated_home, free_port(), base, adapter)
    workspace = tmp_path / "ws"
    (workspace / "docs").mkdir(parents=True)
    (workspace / "docs" / "report.pdf").write_bytes(b"%PDF")
    tmux.send(f"OMP_NUM_THREADS=1 {ROUTESHELL} --profile local --workspace {workspace}", "Enter")
    tmux.wait_for(lambda s: "docs" in s and "2 Files" in s, "the Files pane")
    tmux.send("1")
    tmux.wait_for(lambda s: "Type a task below" in s, "the Agent pane")
    tmux.send("-l", "move the pdfs into archive")
    tmux.send("Enter")
    # The nano planner's plan may be wrong: an approval to reject, or a failure (a line, or the
    # run's meter when the endpoint's own error is shown); never a crash.
    ends = ("waits for your approval", "failed:", "done:", "● failed", "● done")
    shown = tmux.wait_for(lambda s: any(end in s for end in ends), "the plan or the end", timeout=300)
    if "waits for your approval" in shown:
        tmux.send("r")
        tmux.send("Enter")
        tmux.wait_for(lambda s: "failed:" in s, "the run to end after the rejection", timeout=60)
    assert "Traceback" not in tmux.screen()
    assert (workspace / "docs" / "report.pdf").exists()
    tmux.send("Escape", "q")
    tmux.wait_for(lambda s: "Type a task" not in s, "the app to quit")
