"""The ``run`` step: a command in the workspace with a timeout, a scrubbed environment and limits.

Where bubblewrap is installed the command also runs without network, with only the workspace
writable (its state directory and every ``.git`` in it read-only) and a private /tmp.
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from engine.plans.step_supervisor import kill_step
from engine.workspace.sandbox import GIT_DIR, STATE_DIR

TAIL_BYTES = 4000
SUPERVISOR = Path(__file__).with_name("step_supervisor.py")
# The session ids of the run steps in progress in this process (see kill_running_steps).
_running: set[int] = set()
_running_lock = threading.Lock()


@dataclass(frozen=True)
class Limits:
    """Resource limits for a ``run`` step (the ``sandbox`` table of a profile)."""

    cpu_s: int = 60
    memory_mb: int = 2048
    file_size_mb: int = 64
    max_processes: int = 64
    network: bool = False

    @classmethod
    def from_profile(cls, sandbox: dict[str, object]) -> Limits:
        keys = ("cpu_s", "memory_mb", "file_size_mb", "max_processes", "network")
        return cls(**{key: sandbox[key] for key in keys if key in sandbox})  # type: ignore[arg-type]


@dataclass(frozen=True)
class RunResult:
    """What a ``run`` step did: its exit code (None on timeout) and the tail of its output."""

    exit_code: int | None
    output_tail: str
    timed_out: bool
    isolated: bool


@functools.cache
def bubblewrap() -> str | None:
    """Return the path of bwrap when it is installed and can create namespaces here.

    Probed once per process: the answer does not change while it runs, and the probe starts a process.
    """
    path = shutil.which("bwrap")
    if path is None:
        return None
    probe = subprocess.run(
        [path, "--ro-bind", "/", "/", "--unshare-net", "--", "true"], capture_output=True, timeout=30, check=False
    )
    return path if probe.returncode == 0 else None


def scrubbed_env(root: Path) -> dict[str, str]:
    """The environment a step sees: a search path and a locale, nothing secret."""
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(root),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TMPDIR": "/tmp",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def supervised_argv(argv: list[str], limits: Limits) -> list[str]:
    """Return a command line that runs ``argv`` under ``limits`` (CPU, memory, file size, processes)
    through :mod:`engine.plans.step_supervisor`.

    The supervisor sets the limits on itself before it forks and execs ``argv``, so they hold from
    the command's first instruction, and nothing runs in this (threaded) process between fork and
    exec: ``preexec_fn`` would, which is unsafe with threads, and ``prlimit`` on the child's pid
    after it started would leave a window where it runs without limits. As a child subreaper it
    also keeps every process the command starts findable until the step is over, and it ends the
    step when this process dies.
    """
    mib = 1024 * 1024
    values = (limits.cpu_s, limits.memory_mb * mib, limits.file_size_mb * mib, limits.max_processes)
    parent = os.getpid()
    return [sys.executable, "-I", "-S", str(SUPERVISOR), str(parent), *(str(value) for value in values), "--", *argv]


def _wait_exited(pid: int, timeout_s: float) -> bool:
    """Wait until the child ``pid`` exits, without reaping it; return False when ``timeout_s`` ran out.

    Not reaping keeps the pid (the step's session and group id) from being reused before
    :func:`kill_step` has looked for what the step left behind.
    """
    deadline = time.monotonic() + timeout_s
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        pidfd = None  # a kernel before 5.3: poll instead
    if pidfd is not None:
        try:
            poller = select.poll()  # not select(): a descriptor above 1023 is fine
            poller.register(pidfd, select.POLLIN)
            return bool(poller.poll(timeout_s * 1000))
        finally:
            os.close(pidfd)
    while os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def kill_running_steps() -> None:
    """SIGKILL every ``run`` step this process has running (for a process about to exit at once)."""
    with _running_lock:
        leaders = list(_running)
    for leader in leaders:
        kill_step(leader)


def _host_tmp_read_only() -> list[str]:
    """bwrap arguments showing what is already in the host's /tmp, read-only, on the private /tmp.

    New files go to the private tmpfs; a toolchain or virtual environment kept under /tmp still
    runs. (A workspace under /tmp is bound writable after these.)
    """
    arguments: list[str] = []
    try:
        entries = list(os.scandir("/tmp"))
    except OSError:
        return arguments
    for entry in entries:
        try:
            if entry.is_symlink():
                arguments += ["--symlink", os.readlink(entry.path), entry.path]
            else:
                arguments += ["--ro-bind-try", entry.path, entry.path]
        except OSError:
            continue
    return arguments


MAX_WALK_DIRS = 50_000


def _git_read_only(root: Path) -> list[str] | None:
    """bwrap arguments that show every ``.git`` in the workspace read-only (a hook or a config is code).

    The walk never follows a symlink and skips the state directory; a ``.git`` that is a symlink
    to a place in the workspace has that place bound read-only. Returns None past
    ``MAX_WALK_DIRS`` directories: a ``.git`` could hide in what was not seen.
    """
    arguments: list[str] = []
    pending = [str(root)]
    seen = 0
    while pending:
        directory = pending.pop()
        seen += 1
        if seen > MAX_WALK_DIRS:
            return None
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            if entry.name.lower() == GIT_DIR:
                target = os.path.realpath(entry.path)
                if target == str(root) or target.startswith(str(root) + os.sep):
                    arguments += ["--ro-bind", target, target]
                continue
            with contextlib.suppress(OSError):
                if entry.is_dir(follow_symlinks=False) and not (directory == str(root) and entry.name == STATE_DIR):
                    pending.append(entry.path)
    return arguments


def _find_program(root: Path, program: str, env: dict[str, str]) -> str | None:
    """Return the program's path as the child would find it, or None when there is none."""
    if "/" in program:
        candidate = root / program if not program.startswith("/") else Path(program)
        return str(candidate) if os.access(candidate, os.X_OK) and candidate.is_file() else None
    return shutil.which(program, path=env["PATH"])


def run_command(root: Path, argv: list[str], timeout_s: int, limits: Limits, *, bwrap: str | None) -> RunResult:
    """Run ``argv`` in ``root``; return its result. Never raises for the command's own failure.

    The step ends when its command exits (or times out, or the wait is interrupted): everything it
    started is then killed, and the output read so far is its output.
    """
    env = scrubbed_env(root)
    if _find_program(root, argv[0], env) is None:
        return RunResult(127, f"{argv[0]}: command not found", False, bwrap is not None)
    command = list(argv)
    if bwrap is not None:
        state = root / STATE_DIR
        git_read_only = _git_read_only(root)
        if git_read_only is None:
            why = f"the workspace has over {MAX_WALK_DIRS} directories, too many to find every .git to protect"
            return RunResult(126, f"{argv[0]}: not run: {why}; run it outside routeshell", False, True)
        command = [
            bwrap,
            "--ro-bind", "/", "/",
            "--tmpfs", "/tmp",
            *_host_tmp_read_only(),
            "--bind", str(root), str(root),
            *(["--ro-bind", str(state), str(state)] if state.is_dir() else []),
            *git_read_only,
            "--dev", "/dev",
            "--proc", "/proc",
            *([] if limits.network else ["--unshare-net"]),
            "--unshare-pid",
            "--die-with-parent",
            "--chdir", str(root),
            "--",
            *argv,
        ]  # fmt: skip
    try:
        # A session of its own: its processes can be found (and killed) by session and group id,
        # and a Ctrl-C at the terminal reaches routeshell, which decides, not the command.
        process = subprocess.Popen(
            supervised_argv(command, limits),
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        return RunResult(127, f"cannot start {argv[0]}: {exc.strerror}", False, bwrap is not None)
    with _running_lock:
        _running.add(process.pid)
    tail: deque[bytes] = deque()
    size = [0]

    def drain() -> None:
        assert process.stdout is not None
        # Keep only the tail: a chatty command must not fill memory.
        while chunk := os.read(process.stdout.fileno(), 65536):
            tail.append(chunk)
            size[0] += len(chunk)
            while size[0] - len(tail[0]) >= TAIL_BYTES:
                size[0] -= len(tail.popleft())

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        timed_out = not _wait_exited(process.pid, timeout_s)
    finally:
        # Whatever ends the wait (the command, its timeout, a Ctrl-C, any exception), nothing the step
        # started may outlive it: an apply that is rolled back next must not be written to afterwards.
        kill_step(process.pid)
        process.wait()
        with _running_lock:
            _running.discard(process.pid)
    reader.join(timeout=5)
    output = b"".join(tail)[-TAIL_BYTES:].decode("utf-8", errors="replace")
    return RunResult(None if timed_out else process.returncode, output, timed_out, bwrap is not None)
