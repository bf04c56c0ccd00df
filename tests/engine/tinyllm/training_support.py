"""Running ``routeshell train`` for tests: a small corpus, the real command, its events."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROUTESHELL = str(Path(sys.executable).parent / "routeshell")
#: Standard library modules of a few hundred lines each: enough text for the nano preset.
CORPUS_MODULES = (
    "json/decoder.py", "json/encoder.py", "json/__init__.py", "email/utils.py", "email/header.py",
    "textwrap.py", "shlex.py", "fnmatch.py", "glob.py", "string.py", "colorsys.py", "bisect.py",
    "heapq.py", "keyword.py", "netrc.py", "calendar.py", "difflib.py", "gettext.py",
    "locale.py", "pprint.py", "reprlib.py", "stringprep.py", "tabnanny.py", "token.py", "tokenize.py",
    "quopri.py", "base64.py", "uu.py", "sched.py", "queue.py", "graphlib.py", "numbers.py",
)  # fmt: skip


def make_corpus(directory: Path) -> Path:
    """Copy :data:`CORPUS_MODULES` into ``directory`` (created); return it."""
    directory.mkdir(parents=True, exist_ok=True)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for name in CORPUS_MODULES:
        if (stdlib / name).is_file():  # a module a newer Python dropped is simply left out
            shutil.copyfile(stdlib / name, directory / name.replace("/", "_"))
    return directory


@dataclass
class TrainRun:
    """A finished ``routeshell train`` process: its exit code, events and standard error."""

    returncode: int
    events: list[dict[str, Any]]
    stderr: str

    def of(self, kind: str) -> list[dict[str, Any]]:
        """Return the events of type ``kind``, in order."""
        return [event for event in self.events if event["type"] == kind]

    def losses(self) -> dict[int, float]:
        """Return the training loss of each logged step."""
        return {event["step"]: event["loss"] for event in self.of("train_step")}


def train_env(cache: Path | None = None) -> dict[str, str]:
    """The environment of a training subprocess: offline, its feature cache in ``cache`` when given."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if cache is not None:
        env["XDG_CACHE_HOME"] = str(cache)
    return env


def parse_events(stdout: str) -> list[dict[str, Any]]:
    """Return the JSON events of a ``--events`` standard output (every line must be one)."""
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def run_train(*args: str, cache: Path | None = None, timeout: int = 600, env: dict[str, str] | None = None) -> TrainRun:
    """Run ``routeshell train ARGS --events`` to the end (``env`` added to its environment); never
    raises on failure."""
    result = subprocess.run(
        [ROUTESHELL, "train", *args, "--events"],
        capture_output=True,
        text=True,
        env={**train_env(cache), **(env or {})},
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )
    return TrainRun(result.returncode, parse_events(result.stdout), result.stderr)


def started(argv: list[str], cache: Path | None = None) -> subprocess.Popen[str]:
    """Start ``routeshell train ARGV --events``, its standard output and error piped as text."""
    return subprocess.Popen(
        [ROUTESHELL, "train", *argv, "--events"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=train_env(cache),
    )


def read_to_first_step(process: subprocess.Popen[str]) -> list[str]:
    """Read the event lines of ``process`` up to and including its first ``train_step``; return them."""
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line)
        if json.loads(line)["type"] == "train_step":
            break
    return lines


def paused_at_first_step(argv: list[str], cache: Path | None = None) -> subprocess.Popen[str]:
    """Start ``routeshell train ARGV --events`` and stop it (SIGSTOP) once its first step is done:
    it holds its output directory, however slow it is, until the caller sends SIGCONT or kills it."""
    process = started(argv, cache)
    read_to_first_step(process)
    process.send_signal(signal.SIGSTOP)
    return process


def interrupt_after(step: int | str, argv: list[str], cache: Path | None = None) -> TrainRun:
    """Run ``routeshell train ARGV --events``; send SIGINT once step ``step`` (or an event of that type) is seen."""
    return read_to_end(started(argv, cache), interrupt_at=step)


def read_to_end(
    process: subprocess.Popen[str], seen: list[str] | None = None, interrupt_at: int | str | None = None
) -> TrainRun:
    """Read the events of the started ``process`` to its end, ``seen`` (lines already read) first;
    send SIGINT once step ``interrupt_at`` (or an event of that type) is read, when given."""
    assert process.stdout is not None
    lines = list(seen or [])
    for line in process.stdout:
        lines.append(line)
        event = json.loads(line)
        if (event["type"] == "train_step" and event["step"] == interrupt_at) or event["type"] == interrupt_at:
            process.send_signal(signal.SIGINT)
    stderr = process.stderr.read() if process.stderr else ""
    return TrainRun(process.wait(timeout=300), parse_events("".join(lines)), stderr)
