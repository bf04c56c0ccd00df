"""The ``run`` step: a command in the workspace with a timeout, a scrubbed environment and limits.

Where bubblewrap is installed the command also runs without network, with only the workspace
writable (its state directory read-only) and a private /tmp.
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from engine.workspace.sandbox import STATE_DIR

TAIL_BYTES = 4000
#: How many times the step's processes are looked for and stopped: a process that was forking when
#: the previous round stopped it can leave a child that only the next round finds.
KILL_ROUNDS = 100

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


# Sets the limits on itself, then execs the command: the limits hold from the command's first
# instruction. Used where prlimit(1) is not installed.
_PYTHON_LIMITER = """\
import os, resource, sys
for name, value in zip(("CPU", "AS", "FSIZE", "NPROC"), sys.argv[1:5]):
    resource.setrlimit(getattr(resource, "RLIMIT_" + name), (int(value), int(value)))
try:
    os.execvp(sys.argv[5], sys.argv[5:])
except OSError as exc:
    sys.stderr.write(f"cannot start {sys.argv[5]}: {exc.strerror}\\n")
    sys.exit(127)
"""


@functools.cache
def _prlimit() -> str | None:
    return shutil.which("prlimit")


def limited_argv(argv: list[str], limits: Limits, *, prlimit: str | None) -> list[str]:
    """Return a command line that runs ``argv`` under ``limits`` (CPU, memory, file size, processes).

    The limits are set by a wrapper that sets them on itself and then execs ``argv``, so they hold
    before the command's first instruction and nothing runs between fork and exec in this process.
    (``preexec_fn`` would do it in the forked child, which is unsafe in a process with threads;
    ``prlimit`` on the child's pid after it started would leave a window where it runs unlimited.)
    ``prlimit`` is util-linux's prlimit(1), used when given; else a small Python wrapper.
    """
    mib = 1024 * 1024
    values = (limits.cpu_s, limits.memory_mb * mib, limits.file_size_mb * mib, limits.max_processes)
    if prlimit is not None:
        names = ("--cpu", "--as", "--fsize", "--nproc")
        return [prlimit, *(f"{name}={value}:{value}" for name, value in zip(names, values, strict=True)), "--", *argv]
    return [sys.executable, "-I", "-S", "-c", _PYTHON_LIMITER, *(str(value) for value in values), *argv]


def _processes() -> dict[int, tuple[str, int, int, int]] | None:
    """Every process's (state, parent, process group, session) from /proc; None without /proc."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return None
    found: dict[int, tuple[str, int, int, int]] = {}
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as file:
                stat = file.read()
        except OSError:
            continue  # it exited meanwhile
        # The command name in parentheses may hold spaces and parentheses: the fields follow the last ")".
        fields = stat[stat.rindex(b")") + 2 :].split()
        found[int(name)] = (fields[0].decode(), int(fields[1]), int(fields[2]), int(fields[3]))
    return found


def _step_processes(leader: int) -> set[int]:
    """The live processes of the step whose session ``leader`` started: everything in its session or
    process group, and every descendant of those (a child that called setsid is still a descendant)."""
    table = _processes()
    if table is None:
        return set()
    children: dict[int, list[int]] = {}
    for pid, (_, parent, _, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found: set[int] = set()
    todo = [pid for pid, (_, _, group, session) in table.items() if leader in (group, session)] + [leader]
    while todo:
        pid = todo.pop()
        if pid in found or pid not in table:
            continue
        found.add(pid)
        todo.extend(children.get(pid, ()))
    me = os.getpid()
    # A zombie is dead already; killing it again would never make it go away.
    return {pid for pid in found if pid != me and table[pid][0] not in ("Z", "X")}


def kill_step(leader: int) -> None:
    """SIGKILL every process of the run step started as session leader ``leader``.

    They are stopped first, round after round until no new one turns up, and only then killed: a
    stopped process cannot fork, and its children stay its children, so a child that called setsid
    is still found through its parent. Call it before reaping ``leader``: until then its pid, and
    so its session and group id, cannot be reused by an unrelated process. A process that left the
    step's session and whose parent had already exited (``setsid`` and a double fork) is no longer
    a descendant and is not found; inside bubblewrap the PID namespace ends it with the step.
    """
    stopped: set[int] = set()
    for _ in range(KILL_ROUNDS):
        found = _step_processes(leader) - stopped
        if not found:
            break
        for pid in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGSTOP)
        stopped |= found
    # Without /proc nothing was found: the process group is what can still be reached.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(leader, signal.SIGKILL)
    for pid in stopped:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


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
            return bool(select.select([pidfd], [], [], timeout_s)[0])
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


def _find_program(root: Path, program: str, env: dict[str, str]) -> str | None:
    """Return the program's path as the child would find it, or None when there is none."""
    if "/" in program:
        candidate = root / program if not program.startswith("/") else Path(program)
        return str(candidate) if os.access(candidate, os.X_OK) and candidate.is_file() else None
    return shutil.which(program, path=env["PATH"])


def run_command(root: Path, argv: list[str], timeout_s: int, limits: Limits, *, bwrap: str | None) -> RunResult:
    """Run ``argv`` in ``root``; return its result. Never raises for the command's own failure.

    The step ends when its command exits (or times out): whatever it left running in its
    process group is then killed, and the output read so far is its output.
    """
    env = scrubbed_env(root)
    if _find_program(root, argv[0], env) is None:
        return RunResult(127, f"{argv[0]}: command not found", False, bwrap is not None)
    command = list(argv)
    if bwrap is not None:
        state = root / STATE_DIR
        command = [
            bwrap,
            "--ro-bind", "/", "/",
            "--tmpfs", "/tmp",
            *_host_tmp_read_only(),
            "--bind", str(root), str(root),
            *(["--ro-bind", str(state), str(state)] if state.is_dir() else []),
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
            limited_argv(command, limits, prlimit=_prlimit()),
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
