"""The local profile's model server: started when the endpoint does not answer, reused, refused without a
model, stopped on exit. Every server here is the real ``routeshell serve`` on the session's nano model."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from engine.config.profiles import load_profile
from engine.errors import UsageError
from engine.serve.launcher import (
    ServerStartError,
    health_url,
    is_loopback,
    local_server_for,
    probe,
    serve_settings,
    served_model,
    shipped_models,
    wait_ready,
)
from tests.engine.tinyllm.training_support import TrainRun
from tests.helpers import assert_one_line_error, run_routeshell
from tests.scripted_llm import ScriptedLLM


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """The servers started here share two cores with everything else."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def write_local(xdg: Path, port: int, serve: str | None = None) -> None:
    """Replace the shipped ``local`` profile in the user profile directory with one like it whose
    endpoint is on ``port`` and whose ``[serve]`` table is ``serve`` (TOML lines; default: a model
    under the data directory), with no adapters and a chat builder: the tests serve nano models."""
    profiles = Path(os.environ["XDG_CONFIG_HOME"]) / "routeshell" / "profiles"
    profiles.mkdir(parents=True, exist_ok=True)
    serve = serve or 'model = "${XDG_DATA_HOME:-~/.local/share}/routeshell/models/tinyllm"'
    text = (
        'description = "local, for the tests"\nworkspace = "./workspace"\napproval = "ask"\n\n'
        '[router]\nkind = "model"\n\n'
        f'[llm.default]\nbase_url = "http://127.0.0.1:{port}/v1"\nmodel = "tinyllm-base"\ntimeout_s = 60\n'
        "max_retries = 2\n\n[sandbox]\nrun_timeout_s = 60\n"
        f"\n[serve]\n{serve}\n"
    )
    (profiles / "local.toml").write_text(text)


def write_planner_local(
    xdg: Path, port: int, base: Path, adapter: Path, *, min_probability: float | None = None
) -> None:
    """Like :func:`write_local`, with the shipped profile's files-only builder: ``base`` served with
    ``adapter`` as ``planner`` (the tests' nano pair, standing in for the shipped one); with
    ``min_probability``, its ``[planner]`` bound (1 declines every plan of the nano planner, which is
    never certain of one it chose)."""
    write_local(xdg, port, f'model = "{base}"\nstart_timeout_s = 300\n\n[serve.adapters]\nplanner = "{adapter}"')
    profiles = Path(os.environ["XDG_CONFIG_HOME"]) / "routeshell" / "profiles"
    with (profiles / "local.toml").open("a") as handle:
        handle.write('\n[llm.builder]\nmodel = "planner"\nprompt = "planner"\nmax_retries = 0\n')
        if min_probability is not None:
            handle.write(f"\n[planner]\nmin_probability = {min_probability}\n")


def test_the_local_profile_serves_the_shipped_base_and_planner() -> None:
    settings = serve_settings(load_profile("local"))
    assert settings is not None
    assert settings.model == shipped_models() / "base"
    assert settings.adapters == (("planner", shipped_models() / "planner"),)
    words = settings.words(settings.model)
    assert words[-3:] == ["--adapter", f"planner={shipped_models() / 'planner'}", "--events"]


def test_a_local_profile_names_a_model_to_serve_under_the_data_directory(isolated_home: Path) -> None:
    write_local(isolated_home, 8765)
    settings = serve_settings(load_profile("local"))
    assert settings is not None
    assert settings.model == isolated_home / ".local" / "share" / "routeshell" / "models" / "tinyllm"
    assert (settings.base_url, settings.port, settings.name) == ("http://127.0.0.1:8765/v1", 8765, "tinyllm-base")
    words = settings.words(settings.model / "sft")
    assert words[:3] == ["serve", "--model", str(settings.model / "sft")]
    assert words[-1] == "--events"
    assert words[3:9] == ["--host", "127.0.0.1", "--port", "8765", "--name", "tinyllm-base"]


def test_no_server_for_a_remote_endpoint_an_overridden_one_or_no_serve_table() -> None:
    assert serve_settings(load_profile("ci")) is None
    assert serve_settings(load_profile("openai")) is None
    local = load_profile("local")
    assert serve_settings(local, base_url="http://example.com/v1") is None
    assert serve_settings(local, base_url="http://127.0.0.1:8765/v1/") is not None
    named = serve_settings(local, model="other")
    assert named is not None
    assert named.name == "other"  # the server answers to the name the run asks for
    assert local_server_for(load_profile("ci")) is None
    assert [is_loopback(u) for u in ("http://localhost:1/v1", "http://[::1]:8/v1", "http://127.1.2.3/v1")] == [True] * 3
    assert not any(is_loopback(u) for u in ("https://127.0.0.1/v1", "http://10.0.0.1/v1", "http://example.com/v1"))
    assert health_url("http://127.0.0.1:8765/v1/") == "http://127.0.0.1:8765/health"


def test_a_bad_serve_table_is_one_line_naming_the_key(isolated_home: Path) -> None:
    write_local(isolated_home, free_port(), 'model = "m"\ndtype = "fp64"')
    result = run_routeshell("profiles", "show", "local")
    assert_one_line_error(result, 2, "serve.dtype")
    write_local(isolated_home, free_port(), 'model = "m"\ndevice = "gpu"')
    assert_one_line_error(run_routeshell("profiles", "show", "local"), 2, "serve.device")


def test_the_serve_tables_device_reaches_the_servers_command(isolated_home: Path) -> None:
    port = free_port()
    write_local(isolated_home, port, 'model = "m"\ndevice = "auto"')
    settings = serve_settings(load_profile("local"))
    assert settings is not None
    assert settings.words(Path("m"))[-3:] == ["--device", "auto", "--events"]
    write_local(isolated_home, port, 'model = "m"')
    settings = serve_settings(load_profile("local"))
    assert settings is not None
    assert "--device" not in settings.words(Path("m"))  # the CPU, the server's default


def test_the_served_model_of_a_train_all_directory_is_its_sft_model(tmp_path: Path) -> None:
    out = tmp_path / "tinyllm"
    for stage in ("pretrain", "sft"):
        (out / stage).mkdir(parents=True)
        (out / stage / "config.json").write_text("{}")
        (out / stage / "model.safetensors").write_bytes(b"")
    assert served_model(out) == out / "sft"
    assert served_model(out / "pretrain") == out / "pretrain"
    assert served_model(tmp_path / "missing") is None


def test_without_a_model_run_says_how_to_make_one(isolated_home: Path, tmp_path: Path) -> None:
    write_local(isolated_home, free_port())
    (tmp_path / "ws").mkdir()
    result = run_routeshell("run", "--workspace", str(tmp_path / "ws"), "add a README")
    where = isolated_home / ".local" / "share" / "routeshell" / "models" / "tinyllm"
    how = f"routeshell train all --out {where}"
    assert_one_line_error(result, 3, f"no model to serve at {where}", how, "Train pane")


def test_a_server_that_dies_on_start_is_one_line_with_its_last_words(isolated_home: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("not json")
    (broken / "model.safetensors").write_bytes(b"junk")
    write_local(isolated_home, free_port(), f'model = "{broken}"\nstart_timeout_s = 300')
    server = local_server_for(load_profile("local"))
    assert server is not None
    with pytest.raises(ServerStartError) as caught:
        server.ensure()
    message = str(caught.value)
    assert message.startswith("the local model server exited with code 2: routeshell: error: ")
    assert "\n" not in message
    assert caught.value.exit_code == 3
    assert not server.started


def test_meanwhile_runs_once_the_server_process_is_started(isolated_home: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("not json")
    (broken / "model.safetensors").write_bytes(b"junk")
    write_local(isolated_home, free_port(), f'model = "{broken}"\nstart_timeout_s = 300')
    server = local_server_for(load_profile("local"))
    assert server is not None
    started: list[bool] = []
    with pytest.raises(ServerStartError, match="exited with code 2"):
        server.ensure(meanwhile=lambda: started.append(server.process is not None))
    assert started == [True]


def test_a_failure_meanwhile_stops_the_server_and_goes_on(isolated_home: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("not json")
    (broken / "model.safetensors").write_bytes(b"junk")
    write_local(isolated_home, free_port(), f'model = "{broken}"\nstart_timeout_s = 300')
    server = local_server_for(load_profile("local"))
    assert server is not None

    def fail() -> None:
        raise UsageError("the caller's own error")

    with pytest.raises(UsageError, match="the caller's own error"):
        server.ensure(meanwhile=fail)
    assert server.process is None  # stopped and forgotten: close() ran


def test_meanwhile_is_not_called_when_something_answers(isolated_home: Path, scripted_llm: ScriptedLLM) -> None:
    port = int(scripted_llm.base_url.rsplit(":", 1)[1].split("/")[0])
    write_local(isolated_home, port)
    server = local_server_for(load_profile("local"))
    assert server is not None
    called: list[None] = []
    assert not server.ensure(meanwhile=lambda: called.append(None))
    assert called == []
    assert not server.started


def test_a_server_is_started_reused_and_stopped(
    isolated_home: Path, tmp_path: Path, pretrained: tuple[Path, TrainRun]
) -> None:
    model = tmp_path / "models" / "tinyllm"
    shutil.copytree(pretrained[0], model / "sft", ignore=shutil.ignore_patterns("checkpoints"))
    port = free_port()
    write_local(isolated_home, port, f'model = "{model}"\nstart_timeout_s = 300')
    profile = load_profile("local")
    url = f"http://127.0.0.1:{port}/v1"
    assert probe(url) == "absent"
    said: list[str] = []
    with local_server_for(profile) as first:  # type: ignore[union-attr]
        assert first.ensure(on_start=said.append)
        assert said == [f"starting the local model server: routeshell serve --model {model / 'sft'} --host "
                        f"127.0.0.1 --port {port} --name tinyllm-base --dtype auto --events"]  # fmt: skip
        assert first.ready is not None
        assert first.ready["url"] == url
        assert first.started
        models = httpx.get(f"{url}/models", timeout=10).json()
        assert [m["id"] for m in models["data"]] == ["tinyllm-base"]
        # Another shell on the same profile uses the running server and starts none.
        with local_server_for(profile) as second:  # type: ignore[union-attr]
            assert not second.ensure()
            assert not second.started
        assert probe(url) == "ready"  # the second one stopped nothing
        assert not first.ensure()  # already running: nothing to do
        pid = first.process.pid if first.process else None
    assert probe(url) == "absent"
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_run_starts_the_server_and_stops_it_when_it_ends(
    isolated_home: Path, tmp_path: Path, pretrained: tuple[Path, TrainRun]
) -> None:
    model = isolated_home / ".local" / "share" / "routeshell" / "models" / "tinyllm"
    shutil.copytree(pretrained[0], model / "pretrain", ignore=shutil.ignore_patterns("checkpoints"))
    port = free_port()
    write_local(isolated_home, port, f'model = "{model}"\nstart_timeout_s = 300')
    # Whatever the nano model answers, the run must end and take its server with it.
    profiles = Path(os.environ["XDG_CONFIG_HOME"]) / "routeshell" / "profiles"
    with (profiles / "local.toml").open("a") as handle:
        handle.write("\n[llm.planner]\nmax_retries = 0\n")
    (tmp_path / "ws").mkdir()
    result = run_routeshell(
        "run", "--workspace", str(tmp_path / "ws"), "--approve", "never", "--topology", "single", "--json",
        "add a README",
    )  # fmt: skip
    assert "Traceback" not in result.stderr
    assert f"routeshell: starting the local model server: routeshell serve --model {model / 'pretrain'}" in (
        result.stderr
    )
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert events
    assert events[-1]["type"] == "final"
    assert probe(f"http://127.0.0.1:{port}/v1") == "absent"


def test_a_port_held_by_something_else_is_one_line(isolated_home: Path, pretrained: tuple[Path, TrainRun]) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = int(holder.getsockname()[1])
        write_local(isolated_home, port, f'model = "{pretrained[0]}"\nstart_timeout_s = 300')
        server = local_server_for(load_profile("local"))
        assert server is not None
        with pytest.raises(ServerStartError, match=f"exited with code 1: .*port {port} on 127.0.0.1 is in use"):
            server.ensure()


def test_a_profile_device_the_machine_lacks_is_one_line_naming_the_profiles_key(
    isolated_home: Path, pretrained: tuple[Path, TrainRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # (no GPU, on any machine)
    write_local(isolated_home, free_port(), f'model = "{pretrained[0]}"\ndevice = "cuda"\nstart_timeout_s = 300')
    server = local_server_for(load_profile("local"))
    assert server is not None
    with pytest.raises(ServerStartError) as caught:
        server.ensure()
    message = str(caught.value)
    assert message.startswith("the local model server exited with code 2: ")
    assert "torch sees no CUDA device here" in message
    assert message.endswith('(the profile\'s [serve] table says device = "cuda": set it to "cpu")')
    assert "\n" not in message


def test_a_server_whose_starter_is_killed_stops_by_itself(
    isolated_home: Path, tmp_path: Path, pretrained: tuple[Path, TrainRun]
) -> None:
    port = free_port()
    write_local(isolated_home, port, f'model = "{pretrained[0]}"\nstart_timeout_s = 300')
    starter = (
        "import json, time\n"
        "from engine.config.profiles import load_profile\n"
        "from engine.serve.launcher import local_server_for\n"
        "server = local_server_for(load_profile('local'))\n"
        "server.ensure()\n"
        "print(json.dumps(server.ready), flush=True)\n"
        "time.sleep(600)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", starter], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
    )
    try:
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline())
        assert probe(ready["url"]) == "ready"
    finally:
        # No atexit, no cleanup: the starter is simply gone, as after a crash or a closed terminal.
        process.kill()
        process.wait()
    deadline = time.monotonic() + 60
    while probe(ready["url"]) != "absent" or pid_alive(ready["pid"]):
        assert time.monotonic() < deadline, "the orphaned server is still running"
        time.sleep(0.5)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def returns_within(call: Callable[[], str], limit: float = 120.0) -> str | None:
    """What ``call`` returned, or None when it was still waiting after ``limit`` seconds (a hang, not a speed)."""
    result: list[str] = []
    worker = threading.Thread(target=lambda: result.append(call()), daemon=True)
    worker.start()
    worker.join(limit)
    return result[0] if result else None


def test_waiting_for_a_server_ends_when_it_answers_when_it_dies_or_in_time() -> None:
    port = free_port()
    assert returns_within(lambda: wait_ready(f"http://127.0.0.1:{port}/v1", timeout=0.5)) == "absent"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    # The server's exit ends the wait, not its hour-long timeout.
    assert returns_within(lambda: wait_ready(f"http://127.0.0.1:{port}/v1", dead, timeout=3600)) == "absent"
    with socket.socket() as listener:  # something that answers, but not with a health of 200
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        other = listener.getsockname()[1]
        reply = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

        def answer() -> None:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                with conn:
                    conn.recv(4096)
                    conn.sendall(reply)

        threading.Thread(target=answer, daemon=True).start()
        assert wait_ready(f"http://127.0.0.1:{other}/v1", timeout=0.5) == "other"
