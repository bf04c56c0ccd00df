"""What runs a ``run`` step's command, and what finds and kills everything a step started.

Run as a script (``python -I -S step_supervisor.py PARENT CPU AS FSIZE NPROC -- ARGV...``), it
sets the resource limits on itself, becomes a child subreaper, and forks and execs the command.
The limits hold from the command's first instruction, and nothing runs in routeshell's own
(threaded) process between fork and exec, which ``preexec_fn`` would do. As a subreaper it
inherits every process of the command's tree whose parent exits, even one that called ``setsid``
and forked again, so when the command ends the rest of its tree is still found here and killed.
When routeshell (``PARENT``) dies, even by SIGKILL, the step is killed too: nothing is left to
write into a workspace whose apply the next command rolls back.

Only the standard library is used: the script runs in a bare interpreter (``-I -S``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import sys

#: How many times the step's processes are looked for and stopped: a process that was forking when
#: the previous round stopped it can leave a child that only the next round finds.
KILL_ROUNDS = 100
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
LIMITS = ("RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_FSIZE", "RLIMIT_NPROC")


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


def step_processes(leader: int) -> set[int]:
    """The live processes of the step whose session ``leader`` started: everything in its session or
    process group, and every descendant of those (a child that called setsid is still a descendant).
    The calling process is never among them."""
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
    """SIGKILL every process of the run step started as session leader ``leader`` (but the caller).

    They are stopped first, round after round until no new one turns up, and only then killed: a
    stopped process cannot fork, and its children stay its children, so a child that called setsid
    is still found through its parent. Call it before reaping ``leader``: until then its pid, and
    so its session and group id, cannot be reused by an unrelated process.
    """
    stopped: set[int] = set()
    for _ in range(KILL_ROUNDS):
        found = step_processes(leader) - stopped
        if not found:
            break
        for pid in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGSTOP)
        stopped |= found
    if leader != os.getpid():
        # Without /proc nothing was found: the process group is what can still be reached.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(leader, signal.SIGKILL)
    for pid in stopped:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _end_the_step(signum: int = signal.SIGTERM, frame: object = None) -> None:
    kill_step(os.getpid())
    os._exit(128 + signum)


def supervise(parent: int, limits: list[int], argv: list[str]) -> int:
    """Run ``argv`` under ``limits`` (the values of :data:`LIMITS`); return its wait status.

    Whatever the command left running when it ended is killed, and reaped, before this returns.
    When ``parent`` dies first (or SIGTERM comes), the command and all it started are killed.
    """
    signal.signal(signal.SIGTERM, _end_the_step)
    with contextlib.suppress(OSError, AttributeError):
        # Best effort, Linux only: without these an orphan that left the session is not found, and
        # a step outlives a routeshell killed by SIGKILL (bubblewrap's PID namespace still ends it).
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        _end_the_step()  # the parent died before the death signal was set up
    for name, value in zip(LIMITS, limits, strict=True):
        resource.setrlimit(getattr(resource, name), (value, value))
    command = os.fork()
    if command == 0:
        # Python ignores these at start-up; the command must get the defaults, as subprocess gives them.
        for name in ("SIGPIPE", "SIGXFSZ"):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
        try:
            os.execvp(argv[0], argv)
        except OSError as exc:
            os.write(2, f"cannot start {argv[0]}: {exc.strerror}\n".encode(errors="replace"))
        os._exit(127)
    status = 0
    while True:
        try:
            pid, code = os.wait()
        except ChildProcessError:
            break
        if pid == command:
            status = code
            break
    kill_step(os.getpid())
    with contextlib.suppress(ChildProcessError):
        while True:
            os.wait()
    return status


def _exit_as(status: int) -> None:
    """End this process the way the command ended: the same exit code, or the same signal."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # the command's core dump, if any, is enough
        signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


def main(args: list[str]) -> None:
    """``PARENT CPU AS FSIZE NPROC -- ARGV...``: supervise ARGV, then end as it ended."""
    separator = args.index("--")
    parent, *limits = (int(value) for value in args[:separator])
    _exit_as(supervise(parent, limits, args[separator + 1 :]))


if __name__ == "__main__":
    main(sys.argv[1:])
