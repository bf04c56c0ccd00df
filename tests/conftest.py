"""Shared fixtures: an isolated home, a fixed clock zone, a real sample workspace, and a scripted LLM server."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

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


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point HOME and the XDG directories at fresh directories, so no user config leaks in; return the XDG home."""
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
