"""Shared fixtures: an isolated home, a fixed clock zone, a real sample workspace, and a scripted LLM server."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

# With two or more test workers the cores are shared: torch in each worker, and in the jobs and
# servers its tests start, runs on one thread. More busy threads than cores spin, waiting on each
# other, and made the slowest tests several times slower. A thread count already set is kept.
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    os.environ.setdefault("OMP_NUM_THREADS", "1")

from engine.events import CHECK_ENV
from tests.engine.tinyllm.training_support import TrainRun, make_corpus, run_train
from tests.scripted_llm import ScriptedLLM

# Metadata shows local times: pin the zone so screens are the same on every machine.
os.environ["TZ"] = "UTC"
time.tzset()
# Colour settings of the calling terminal must not change what the snapshots see.
for _var in ("NO_COLOR", "FORCE_COLOR", "TEXTUAL_THEME", "TEXTUAL_ANIMATIONS"):
    os.environ.pop(_var, None)

FIXED_MTIME = 1_700_000_000  # 2023-11-14 22:13:20 UTC

HELLO_PY = '''def hello(name: str) -> str:
    """Greet someone."""
    return f"hello {name}"


if __name__ == "__main__":
    print(hello("world"))
'''


#: Test files that keep one worker busy for a minute or more (measured with three workers), longest
#: first. They start first: each file runs whole on one worker (--dist loadfile), and a long one
#: that starts near the end keeps the run going while the other workers have nothing left to do.
#: (pytest-xdist would otherwise start the files with the most tests first, and these have few:
#: ``make test`` passes --no-loadscope-reorder.)
SLOW_FILES = (
    "tests/engine/tinyllm/test_train_resume.py", "tests/engine/planner/test_train.py", "tests/test_serve_cli.py",
    "tests/engine/serve/test_engine_process.py", "tests/test_serve_cli_edges.py", "tests/tui/test_train_pane.py",
    "tests/tui/test_plain.py", "tests/engine/serve/test_server_edges.py", "tests/engine/router/test_lora.py",
    "tests/run_cli/test_resume.py", "tests/engine/serve/test_server_reasoning.py", "tests/test_import_hygiene.py",
    "tests/tui/test_serve_pane.py", "tests/engine/serve/test_launcher.py", "tests/tui/test_file_selection.py",
    "tests/engine/tinyllm/test_train.py", "tests/tui/test_file_operations.py", "tests/tui/test_snapshots.py",
)  # fmt: skip


def pytest_configure(config: pytest.Config) -> None:
    """Tests send Ctrl-C to the commands they start, which take this process's way with SIGINT: a
    run started where SIGINT is ignored (a shell script's background job, ``nohup ... &``) would
    have them all ignore it. (In the controller and in each worker.)"""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the files of :data:`SLOW_FILES` first, in that order; every file stays whole, and the
    others keep their order."""
    rank = {name: at for at, name in enumerate(SLOW_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(SLOW_FILES)))


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point HOME and the XDG directories at fresh directories, so no user config leaks in; return the XDG home."""
    return isolate_home(tmp_path_factory, monkeypatch)


def isolate_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """What :func:`isolated_home` does, for a fixture of a wider scope (with a ``MonkeyPatch.context()``)."""
    home = tmp_path_factory.mktemp("home")
    # HOME is the directory above every test's temporary directory, so that a workspace made there
    # is inside the home directory (outside it, routeshell asks before adopting one).
    monkeypatch.setenv("HOME", str(tmp_path_factory.getbasetemp()))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    for var in ("ROUTESHELL_PROFILE", "OPENAI_API_KEY", "LLM_API_KEY", "LLM_API_BASE", "OPENAI_MODEL"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture(autouse=True)
def checked_events(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Check every event the test emits, in this process and in the routeshell subprocesses it starts,
    against ``engine/schemas/events.schema.json``; a test that emitted an invalid one fails."""
    with events_checked(tmp_path_factory, monkeypatch):
        yield


@contextmanager
def events_checked(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """What :func:`checked_events` does, for a fixture of a wider scope: the block fails on an invalid event."""
    log = tmp_path_factory.mktemp("events") / "invalid-events.txt"
    monkeypatch.setenv(CHECK_ENV, str(log))
    yield
    if log.exists() and log.read_text():
        how = "declare them in engine/events.py, then: python -m engine.events > engine/schemas/events.schema.json"
        pytest.fail(f"events that break the event contract ({how}):\n{log.read_text()}", pytrace=False)


def build_workspace(root: Path) -> Path:
    """Create the sample tree used across the tests, with fixed modes and times.

    It holds hostile names on purpose: Rich markup, an ANSI escape, a newline, a symlink
    leading outside, a binary file and a dotfile.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "docs").mkdir()
    (root / "src" / "pkg" / "hello.py").write_text(HELLO_PY)
    (root / "docs" / "guide.md").write_text("# Guide\n\nRead me.\n")
    (root / "README.md").write_text("# Sample\n\nA sample workspace.\n")
    # "[red]x[/red].txt" as a path: a directory "[red]x[" holding "red].txt".
    (root / "[red]x[").mkdir()
    (root / "[red]x[" / "red].txt").write_text("[bold]not bold[/bold]\n")
    (root / "[bold]b.txt").write_text("markup in a name\n")
    (root / "esc\x1b[31mred").write_text("an escape in a name\n")
    (root / "new\nline.txt").write_text("a newline in a name\n")
    (root / "data.bin").write_bytes(b"\x00\x01\x02\x03")
    (root / ".hidden").write_text("a dotfile\n")
    (root / "outside-link").symlink_to("/etc")
    for path in sorted(root.rglob("*"), reverse=True):
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
        os.utime(path, (FIXED_MTIME, FIXED_MTIME), follow_symlinks=False)
    return root


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A real sample workspace named ``ws`` in a temp directory."""
    return build_workspace(tmp_path / "ws")


@pytest.fixture
def scripted_llm() -> Iterator[ScriptedLLM]:
    """A started scripted OpenAI-compatible server on loopback; enqueue steps, then use its ``base_url``."""
    with ScriptedLLM() as server:
        yield server


# -- a trained model, for the training and serving tests --------------------------------------------


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of a few standard library modules, the nano model's pretraining corpus."""
    return make_corpus(tmp_path_factory.mktemp("corpus"))


def made_once(tmp_path_factory: pytest.TempPathFactory, worker_id: str, name: str, make: Any) -> Path:
    """``make(root)`` run once per test run, not once per xdist worker: the first worker to need
    ``name`` makes it under a file lock, in the run's shared temporary directory, and the others
    wait for it and read it."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    shared = base if worker_id == "master" else base.parent
    root = shared / name
    with FileLock(str(shared / f"{name}.lock")):
        if not (root / "done").is_file():
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir()
            make(root)
            (root / "done").write_text("")
    return root


@pytest.fixture(scope="session")
def pretrained(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path, worker_id: str) -> tuple[Path, TrainRun]:
    """A nano model pretrained for 40 steps (tokenizer included) with validation every 20 steps.

    Trained once per test run: the first worker to need it trains it, the others read it."""

    def make(root: Path) -> None:
        run = run_train(
            "pretrain", "--preset", "nano", "--data", str(corpus_dir), "--max-steps", "40",
            "--eval-every", "20", "--save-every", "20", "--batch-size", "4", "--lr", "1e-3",
            "--out", str(root / "model"), cache=root / "cache",
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        (root / "run.json").write_text(json.dumps(dataclasses.asdict(run)))

    root = made_once(tmp_path_factory, worker_id, "pretrained", make)
    return root / "model", TrainRun(**json.loads((root / "run.json").read_text()))


@pytest.fixture(scope="session")
def reasoning_model(
    tmp_path_factory: pytest.TempPathFactory, pretrained: tuple[Path, TrainRun], worker_id: str
) -> tuple[Path, TrainRun]:
    """The nano model after a reasoning SFT with the English markers (Reasoning:/Answer:) on the
    built-in problems: 60 steps of 8 rows, enough for it to write the markers.

    Trained once per test run: the first worker to need it trains it, the others read it."""

    def make(root: Path) -> None:
        run = run_train(
            "reasoning", "--markers", "en", "--base", str(pretrained[0]), "--max-steps", "60", "--batch-size", "8",
            "--lr", "2e-3", "--eval-every", "30", "--save-every", "30", "--out", str(root / "model"),
            cache=root / "cache",
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        (root / "run.json").write_text(json.dumps(dataclasses.asdict(run)))

    root = made_once(tmp_path_factory, worker_id, "reasoning-model", make)
    return root / "model", TrainRun(**json.loads((root / "run.json").read_text()))


@pytest.fixture(scope="session")
def planner_models(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path, worker_id: str) -> tuple[Path, Path]:
    """A nano base with room for a planner prompt (1024 tokens) and a planner adapter trained on it
    for a few steps: the shipped pair's shape, small enough for tests. Its plans may be wrong.

    Made once per test run: the first worker to need it trains it, the others read it."""
    root = made_once(
        tmp_path_factory, worker_id, "planner-models", lambda root: _train_planner_models(root, corpus_dir)
    )
    return root / "base", root / "planner"


def _train_planner_models(root: Path, corpus_dir: Path) -> None:
    config = root / "nano-1024.toml"
    config.write_text('base = "nano"\ncontext_length = 1024\n')
    base, adapter = root / "base", root / "planner"
    run = run_train(
        "pretrain", "--config", str(config), "--data", str(corpus_dir), "--max-steps", "30",
        "--eval-every", "30", "--batch-size", "4", "--lr", "1e-3", "--out", str(base), cache=root / "cache",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    for name in ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "chat_template.jinja"):
        shutil.copy2(base / "tokenizer" / name, base / name)
    run = run_train(
        "planner", "--base", str(base), "--out", str(adapter), "--count", "24", "--max-steps", "4",
        "--batch-size", "4", "--lr", "3e-3", cache=root / "cache",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
