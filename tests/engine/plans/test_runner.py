"""The ``run`` step for real: exit codes, output, timeouts, a scrubbed environment, limits, isolation."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.plans.runner import TAIL_BYTES, Limits, RunResult, bubblewrap, run_command, supervised_argv
from engine.workspace.sandbox import STATE_DIR
from tests.helpers import ROUTESHELL

PYTHON = sys.executable
NO_BWRAP = "bubblewrap (bwrap) is not installed or cannot create namespaces on this machine"
MODES = ["plain", "bubblewrap"]


@pytest.fixture(scope="module")
def bwrap_path() -> str | None:
    return bubblewrap()


def bwrap_for(mode: str, bwrap_path: str | None) -> str | None:
    """The ``bwrap`` argument for a mode; skips (with the reason shown) when bubblewrap is missing."""
    if mode == "plain":
        return None
    if bwrap_path is None:
        pytest.skip(NO_BWRAP)
    return bwrap_path


@pytest.fixture
def isolated(bwrap_path: str | None) -> str:
    """The path of a working bwrap, or a visible skip."""
    if bwrap_path is None:
        pytest.skip(NO_BWRAP)
    return bwrap_path


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    return root


def python(root: Path, code: str, *, bwrap: str | None, limits: Limits | None = None, timeout_s: int = 60) -> RunResult:
    return run_command(root, [PYTHON, "-c", code], timeout_s, limits or Limits(), bwrap=bwrap)


# -- in both modes ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_exit_code_and_output_tail_are_reported(ws: Path, bwrap_path: str | None, mode: str) -> None:
    bwrap = bwrap_for(mode, bwrap_path)
    code = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
    result = python(ws, code, bwrap=bwrap)
    assert result.exit_code == 3
    assert not result.timed_out
    assert "out" in result.output_tail
    assert "err" in result.output_tail
    assert result.isolated is (bwrap is not None)


@pytest.mark.parametrize("mode", MODES)
def test_success_is_exit_zero(ws: Path, bwrap_path: str | None, mode: str) -> None:
    result = python(ws, "print('fine')", bwrap=bwrap_for(mode, bwrap_path))
    assert result.exit_code == 0
    assert result.output_tail == "fine\n"


@pytest.mark.parametrize("mode", MODES)
def test_only_the_tail_of_a_long_output_is_kept(ws: Path, bwrap_path: str | None, mode: str) -> None:
    code = "import sys; sys.stdout.write('BEGIN' + 'x' * 100_000 + 'END\\n')"
    result = python(ws, code, bwrap=bwrap_for(mode, bwrap_path))
    assert result.exit_code == 0
    assert len(result.output_tail) <= TAIL_BYTES
    assert result.output_tail.endswith("END\n")
    assert "BEGIN" not in result.output_tail


@pytest.mark.parametrize("mode", MODES)
def test_timeout_kills_the_command(ws: Path, bwrap_path: str | None, mode: str) -> None:
    result = run_command(ws, ["sleep", "30"], 1, Limits(), bwrap=bwrap_for(mode, bwrap_path))
    assert result.timed_out
    assert result.exit_code is None


@pytest.mark.parametrize(
    "mode",
    [
        "plain",
        "bubblewrap",
    ],
)
def test_a_background_child_does_not_turn_success_into_a_timeout(ws: Path, bwrap_path: str | None, mode: str) -> None:
    result = run_command(ws, ["sh", "-c", "sleep 30 & echo started"], 3, Limits(), bwrap=bwrap_for(mode, bwrap_path))
    assert "started" in result.output_tail
    assert not result.timed_out
    assert result.exit_code == 0


@pytest.mark.parametrize("mode", MODES)
def test_environment_is_scrubbed(ws: Path, bwrap_path: str | None, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
    code = "import json, os; print(json.dumps(dict(os.environ)))"
    result = python(ws, code, bwrap=bwrap_for(mode, bwrap_path))
    assert result.exit_code == 0
    seen = json.loads(result.output_tail)
    assert "OPENAI_API_KEY" not in seen
    assert "AWS_SECRET_ACCESS_KEY" not in seen
    assert "XDG_CONFIG_HOME" not in seen  # set in the parent by the isolated_home fixture
    assert "secret" not in result.output_tail
    assert seen["HOME"] == str(ws)
    assert "PATH" in seen


@pytest.mark.parametrize("mode", MODES)
def test_cwd_and_home_are_the_workspace(ws: Path, bwrap_path: str | None, mode: str) -> None:
    code = "import os; print(os.getcwd()); print(os.path.expanduser('~'))"
    result = python(ws, code, bwrap=bwrap_for(mode, bwrap_path))
    assert result.exit_code == 0
    cwd, home = result.output_tail.splitlines()
    assert cwd == os.path.realpath(ws)
    assert home == str(ws)


@pytest.mark.parametrize("mode", MODES)
def test_file_size_limit(ws: Path, bwrap_path: str | None, mode: str) -> None:
    code = "open('big.bin', 'wb').write(b'x' * (5 * 1024 * 1024)); print('wrote it all')"
    result = python(ws, code, bwrap=bwrap_for(mode, bwrap_path), limits=Limits(file_size_mb=1))
    assert result.exit_code != 0
    assert not result.timed_out
    assert "wrote it all" not in result.output_tail
    assert (ws / "big.bin").stat().st_size <= 1024 * 1024


@pytest.mark.parametrize("mode", MODES)
def test_memory_limit(ws: Path, bwrap_path: str | None, mode: str) -> None:
    code = "block = bytearray(1024 * 1024 * 1024); print('allocated')"
    result = python(ws, code, bwrap=bwrap_for(mode, bwrap_path), limits=Limits(memory_mb=200))
    assert result.exit_code != 0
    assert not result.timed_out
    assert "allocated" not in result.output_tail


@pytest.mark.parametrize("mode", MODES)
def test_memory_limit_leaves_room_for_a_small_allocation(ws: Path, bwrap_path: str | None, mode: str) -> None:
    code = "block = bytearray(20 * 1024 * 1024); print('allocated')"
    result = python(ws, code, bwrap=bwrap_for(mode, bwrap_path), limits=Limits(memory_mb=200))
    assert result.exit_code == 0
    assert "allocated" in result.output_tail


@pytest.mark.parametrize("mode", MODES)
def test_cpu_limit(ws: Path, bwrap_path: str | None, mode: str) -> None:
    code = "while True: pass"
    result = python(ws, code, bwrap=bwrap_for(mode, bwrap_path), limits=Limits(cpu_s=1), timeout_s=120)
    assert not result.timed_out
    assert result.exit_code != 0


@pytest.mark.parametrize(
    "mode",
    [
        "plain",
        "bubblewrap",
    ],
)
def test_missing_command_is_exit_127_with_a_message(ws: Path, bwrap_path: str | None, mode: str) -> None:
    result = run_command(ws, ["routeshell-no-such-command"], 10, Limits(), bwrap=bwrap_for(mode, bwrap_path))
    assert "routeshell-no-such-command" in result.output_tail
    assert not result.timed_out
    assert result.exit_code == 127


@pytest.mark.parametrize("mode", MODES)
def test_missing_command_never_raises(ws: Path, bwrap_path: str | None, mode: str) -> None:
    result = run_command(ws, ["routeshell-no-such-command"], 10, Limits(), bwrap=bwrap_for(mode, bwrap_path))
    assert result.exit_code not in (0, None)
    assert "command not found" in result.output_tail


# -- with bubblewrap -------------------------------------------------------------------------


@pytest.fixture
def tcp_server() -> Iterator[int]:
    """A listening TCP socket on 127.0.0.1 in the test's own network namespace; yields its port."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


CONNECT = """
import socket, sys
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=5).close()
except OSError as exc:
    print("cannot connect:", exc)
    sys.exit(1)
print("connected")
"""


def test_plain_mode_reaches_the_test_server(ws: Path, tcp_server: int) -> None:
    # The control for the test below: without isolation the same child does connect.
    result = python(ws, CONNECT.format(port=tcp_server), bwrap=None)
    assert result.exit_code == 0
    assert "connected" in result.output_tail


def test_isolated_run_has_no_network(ws: Path, isolated: str, tcp_server: int) -> None:
    result = python(ws, CONNECT.format(port=tcp_server), bwrap=isolated)
    assert result.isolated
    assert result.exit_code == 1
    assert "cannot connect" in result.output_tail


def test_isolated_run_with_network_allowed_reaches_the_server(ws: Path, isolated: str, tcp_server: int) -> None:
    result = python(ws, CONNECT.format(port=tcp_server), bwrap=isolated, limits=Limits(network=True))
    assert result.exit_code == 0
    assert "connected" in result.output_tail


WRITE = """
import sys
try:
    with open(sys.argv[1], "w") as f:
        f.write("escaped")
except OSError as exc:
    print("refused:", exc)
    sys.exit(1)
print("written")
"""


def write_file(root: Path, target: Path | str, *, bwrap: str | None) -> RunResult:
    return run_command(root, [PYTHON, "-c", WRITE, str(target)], 60, Limits(), bwrap=bwrap)


@pytest.fixture(params=["other-tmp-dir", "var-tmp-dir"])
def outside_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory outside the workspace that exists in the parent: under /tmp, or under /var/tmp."""
    if request.param == "other-tmp-dir":
        yield tmp_path_factory.mktemp("outside")
        return
    if not os.access("/var/tmp", os.W_OK):
        pytest.skip("/var/tmp is not writable here")
    directory = Path(tempfile.mkdtemp(prefix="routeshell-test-", dir="/var/tmp"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


def test_plain_mode_writes_outside_the_workspace(ws: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    # The control for the test below: without isolation nothing stops the write.
    outside = tmp_path_factory.mktemp("outside")
    result = write_file(ws, outside / "escaped.txt", bwrap=None)
    assert result.exit_code == 0
    assert (outside / "escaped.txt").read_text() == "escaped"


def test_isolated_run_cannot_write_outside_the_workspace(ws: Path, isolated: str, outside_dir: Path) -> None:
    target = outside_dir / "escaped.txt"
    result = write_file(ws, target, bwrap=isolated)
    assert result.exit_code == 1
    assert "refused" in result.output_tail
    assert not target.exists()
    assert list(outside_dir.iterdir()) == []


def test_isolated_run_has_a_private_tmp(ws: Path, isolated: str) -> None:
    target = Path("/tmp") / f"routeshell-private-{uuid.uuid4().hex}.txt"
    try:
        result = write_file(ws, target, bwrap=isolated)
        assert result.exit_code == 0
        assert "written" in result.output_tail
        assert not target.exists()
    finally:
        target.unlink(missing_ok=True)


def test_isolated_run_sees_the_state_dir_read_only(ws: Path, isolated: str) -> None:
    state = ws / STATE_DIR
    state.mkdir()
    (state / "lock").write_text("original")
    new = write_file(ws, state / "injected", bwrap=isolated)
    changed = write_file(ws, state / "lock", bwrap=isolated)
    removed = run_command(ws, ["rm", "-f", str(state / "lock")], 60, Limits(), bwrap=isolated)
    assert new.exit_code == 1
    assert changed.exit_code == 1
    assert removed.exit_code != 0
    assert sorted(path.name for path in state.iterdir()) == ["lock"]
    assert (state / "lock").read_text() == "original"


def test_isolated_run_can_write_inside_the_workspace(ws: Path, isolated: str) -> None:
    (ws / "sub").mkdir()
    result = write_file(ws, "sub/made-inside.txt", bwrap=isolated)
    assert result.exit_code == 0
    assert (ws / "sub" / "made-inside.txt").read_text() == "escaped"


def test_isolated_run_can_use_programs_kept_under_tmp(ws: Path, isolated: str) -> None:
    """A toolchain or virtual environment under /tmp stays usable (read-only) beside the private /tmp."""
    tools = Path(tempfile.mkdtemp(prefix="routeshell-tools-", dir="/tmp"))
    try:
        program = tools / "hello"
        program.write_text("#!/bin/sh\necho hello from tmp\n")
        program.chmod(0o755)
        ran = run_command(ws, [str(program)], 60, Limits(), bwrap=isolated)
        assert ran.exit_code == 0
        assert "hello from tmp" in ran.output_tail
        overwrite = write_file(ws, program, bwrap=isolated)
        assert overwrite.exit_code == 1
        assert program.read_text().startswith("#!/bin/sh")
    finally:
        shutil.rmtree(tools)


# -- nothing a step started outlives it ----------------------------------------------------------

#: A step that starts a writer appending to late.txt (in its process group, or in a session of its
#: own), says so, and then waits to be stopped.
BACKGROUND_WRITER_STEP = """\
import os, subprocess, sys, time
writer = '''import os, time
with open('writer.pid.part', 'w') as file:  # renamed whole: the pid is there once the name is
    file.write(str(os.getpid()))
os.rename('writer.pid.part', 'writer.pid')
while True:
    with open('late.txt', 'a') as file:
        file.write('x')
    time.sleep(0.01)
'''
subprocess.Popen([sys.executable, '-c', writer], start_new_session=sys.argv[1] == 'setsid')
while not os.path.exists('writer.pid'):
    time.sleep(0.01)
open('started', 'w').close()
time.sleep(600)
"""


def alive(pid: int) -> bool:
    """Whether ``pid`` is a process that can still run (a zombie cannot)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(b")") + 2 :].split()[0] not in (b"Z", b"X")


def wait_for(path: Path, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.01)


@pytest.mark.parametrize("writer", ["group", "setsid"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill"])
def test_a_stopped_apply_leaves_nothing_running(ws: Path, tmp_path: Path, writer: str, sig: int) -> None:
    (ws / "a.txt").write_text("old\n")
    (ws / "step.py").write_text(BACKGROUND_WRITER_STEP)
    steps = [
        {"op": "write", "path": "a.txt", "content": "new\n", "overwrite": True},
        {"op": "run", "argv": [PYTHON, "step.py", writer], "timeout_s": 600},
    ]
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps({"version": 1, "goal": "a step that leaves a writer", "steps": steps}))
    # Without bubblewrap on PATH: the step is a plain process tree, as where bwrap is missing.
    env = {**os.environ, "PATH": str(Path(ROUTESHELL).parent)}
    argv = [ROUTESHELL, "plan", "apply", str(plan_file), "--yes", "--workspace", str(ws)]
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(ws / "started", proc)
        writer_pid = int((ws / "writer.pid").read_text())
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    if sig == signal.SIGINT:
        assert proc.returncode == 130, err
        assert not alive(writer_pid)  # killed before the rollback
    else:
        # Killed outright: the step notices its parent is gone and ends itself; the next command rolls back.
        deadline = time.monotonic() + 60
        while alive(writer_pid):
            assert time.monotonic() < deadline, "the writer outlived a killed routeshell"
            time.sleep(0.01)
        recovered = subprocess.run([ROUTESHELL, "plan", "history", "--workspace", str(ws)], env=env, check=False)
        assert recovered.returncode == 0
    assert (ws / "a.txt").read_text() == "old\n"  # rolled back
    written = (ws / "late.txt").stat().st_size
    time.sleep(0.3)  # the writer wrote every 10 ms while it lived
    assert (ws / "late.txt").stat().st_size == written


def test_a_setsid_grandchild_of_a_finished_step_is_killed(ws: Path) -> None:
    # The middle process exits at once: its setsid child is an orphan outside the step's session.
    middle = "import subprocess; print(subprocess.Popen(['sleep', '600'], start_new_session=True).pid)"
    code = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {middle!r}])"
    result = python(ws, code, bwrap=None)
    assert result.exit_code == 0, result
    assert not alive(int(result.output_tail.split()[-1]))


def test_the_limits_hold_from_the_first_instruction() -> None:
    limits = Limits(cpu_s=7, memory_mb=300, file_size_mb=3, max_processes=33)
    names = ("RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_FSIZE", "RLIMIT_NPROC")
    code = f"import resource as r; print([list(r.getrlimit(getattr(r, n))) for n in {names}])"
    out = subprocess.run(supervised_argv([PYTHON, "-c", code], limits), capture_output=True, text=True, check=True)
    mib = 1024 * 1024
    assert json.loads(out.stdout) == [[7, 7], [300 * mib] * 2, [3 * mib] * 2, [33, 33]]


@pytest.mark.parametrize(("code", "status"), [("raise SystemExit(5)", 5), ("import os; os.kill(os.getpid(), 15)", -15)])
def test_the_command_s_exit_status_comes_through(code: str, status: int) -> None:
    result = subprocess.run(supervised_argv([PYTHON, "-c", code], Limits()), check=False)
    assert result.returncode == status


@pytest.mark.parametrize("mode", MODES)
def test_the_command_does_not_inherit_ignored_sigpipe_or_sigxfsz(ws: Path, bwrap_path: str | None, mode: str) -> None:
    result = run_command(ws, ["cat", "/proc/self/status"], 60, Limits(), bwrap=bwrap_for(mode, bwrap_path))
    (line,) = [line for line in result.output_tail.splitlines() if line.startswith("SigIgn:")]
    ignored = int(line.split()[1], 16)
    assert ignored & (1 << (signal.SIGPIPE - 1)) == 0
    assert ignored & (1 << (signal.SIGXFSZ - 1)) == 0


def test_the_bubblewrap_probe_runs_once() -> None:
    bubblewrap()
    before = bubblewrap.cache_info()
    bubblewrap()
    assert bubblewrap.cache_info().hits == before.hits + 1
    assert bubblewrap.cache_info().misses == before.misses
