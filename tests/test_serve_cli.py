"""``routeshell serve`` and ``routeshell generate`` as a user runs them: exit codes, one-line errors,
signals and output."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from engine.schemas import validator
from tests.engine.serve.server_support import serving
from tests.engine.tinyllm.training_support import TrainRun
from tests.helpers import ROUTESHELL, assert_one_line_error, run_routeshell

Pretrained = tuple[Path, TrainRun]


def env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def routeshell(*args: str, stdin_text: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ROUTESHELL, *args],
        capture_output=True,
        text=True,
        env=env(),
        input=stdin_text,
        stdin=subprocess.DEVNULL if stdin_text is None else None,
        timeout=300,
        check=False,
    )


def test_non_loopback_without_a_key_is_refused(tmp_path: Path) -> None:
    result = run_routeshell("serve", "--model", str(tmp_path), "--host", "0.0.0.0")
    assert_one_line_error(result, 2, "needs an API key", "--api-key")
    with_events = run_routeshell("serve", "--model", str(tmp_path), "--host", "192.0.2.1", "--events")
    assert_one_line_error(with_events, 2, "needs an API key")
    assert json.loads(with_events.stdout)["type"] == "error"


def test_missing_model_is_one_line_and_an_error_event(tmp_path: Path) -> None:
    result = run_routeshell("serve", "--model", str(tmp_path / "nothing"), "--port", "0", "--events")
    assert_one_line_error(result, 2)
    (event,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert event["type"] == "error"
    assert event["exit_code"] == 2


def test_bad_adapter_and_port_are_usage_errors(tmp_path: Path) -> None:
    assert_one_line_error(run_routeshell("serve", "--model", str(tmp_path), "--adapter", "nodir"), 2, "NAME=DIR")
    assert_one_line_error(run_routeshell("serve", "--model", str(tmp_path), "--port", "70000"), 2, "port")


def test_port_in_use_is_one_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run_routeshell("serve", "--model", str(tmp_path), "--port", str(port))
    assert_one_line_error(result, 1, f"port {port}", "in use")


def huge_pages_offered() -> bool:
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    return thp.exists() and "[never]" not in thp.read_text()


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode(errors="replace").split("=", 1) for item in raw if b"=" in item)


def test_serve_runs_itself_again_on_huge_pages_and_sigterm_stops_it_cleanly_during_a_stream(
    pretrained: Pretrained,
) -> None:
    from tui.serve_cli import HUGE_PAGES_TUNABLES, REEXEC_MARK

    with serving(pretrained[0], "--name", "nano", env={"GLIBC_TUNABLES": ""}) as server:
        if huge_pages_offered():
            # the same process, run again once with the tunables (the kernel shows the environment as
            # glibc left it after reading its tunables: the first one of them, at least)
            assert server.ready["pid"] == server.process.pid
            environ = _environ(server.process.pid)
            assert environ[REEXEC_MARK] == HUGE_PAGES_TUNABLES
            assert HUGE_PAGES_TUNABLES.startswith(environ["GLIBC_TUNABLES"])
            assert environ["GLIBC_TUNABLES"].startswith("glibc.malloc.hugetlb=1")
            assert httpx.get(f"{server.root}/health", timeout=30).status_code == 200
        streaming = threading.Event()
        seen: list[str] = []

        def stream() -> None:
            body = {"model": "nano", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 200, "stream": True}
            try:
                with httpx.stream("POST", f"{server.url}/chat/completions", json=body, timeout=60) as response:
                    for line in response.iter_lines():
                        seen.append(line)
                        streaming.set()
            except httpx.HTTPError:
                pass  # the server may cut the stream while stopping
            streaming.set()

        reader = threading.Thread(target=stream)
        reader.start()
        assert streaming.wait(60)
        assert server.stop(signal.SIGTERM) == 0
        reader.join(60)
    assert server.events[-1] == {"type": "serve_stopped", "reason": "signal", "requests": server.events[-1]["requests"]}
    assert "Traceback" not in server.stderr


def test_hugetlb_0_keeps_the_process_and_ctrl_c_stops_it_with_130_and_a_readable_log(
    pretrained: Pretrained,
) -> None:
    from tui.serve_cli import REEXEC_MARK

    process = subprocess.Popen(
        [ROUTESHELL, "serve", "--model", str(pretrained[0]), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**env(), "GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"},
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("routeshell: serving model ")
        environ = _environ(process.pid)
        assert environ["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=0"
        assert REEXEC_MARK not in environ
        url = first.split(" at ")[1].split(";")[0]
        assert url.endswith("/v1")
        assert httpx.get(f"{url}/models", timeout=30).status_code == 200
        time.sleep(0.2)  # the request's log line is written after its answer
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130
    assert "GET /v1/models 200" in out
    assert "stopped after 1 requests" in out
    assert "Traceback" not in err


# -- generate -------------------------------------------------------------------------------------


def test_generate_streams_text_and_reports_usage(pretrained: Pretrained) -> None:
    model = str(pretrained[0])
    result = routeshell("generate", "--model", model, "def hello", "--max-tokens", "8", "--seed", "3")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    (usage,) = result.stderr.strip().splitlines()
    assert "prompt +" in usage
    assert "completion tokens" in usage
    again = routeshell("generate", "--model", model, "-", "--max-tokens", "8", "--seed", "3", stdin_text="def hello")
    # stdin read before running itself again (huge pages) would be gone after it: an empty prompt is an
    # error (exit 2); read after it, the prompt is the same as given on the command line
    assert again.returncode == 0, again.stderr
    assert again.stderr.split(",")[0] == usage.split(",")[0]  # "routeshell: N prompt + M completion tokens"
    assert again.stdout == result.stdout


def test_generate_json_raw_and_schema(pretrained: Pretrained, tmp_path: Path) -> None:
    schema = tmp_path / "verdict.json"
    schema.write_text(json.dumps(validator("decision").schema))
    result = routeshell(
        "generate", "--model", str(pretrained[0]), "route: add a test", "--json-schema", str(schema),
        "--temperature", "0", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    assert response["object"] == "chat.completion"
    choice = response["choices"][0]
    if choice["finish_reason"] == "stop":
        validator("decision").validate(json.loads(choice["message"]["content"]))
    else:
        assert choice["message"]["content"].startswith('{"topology":')
    raw = routeshell("generate", "--model", str(pretrained[0]), "import", "--raw", "--max-tokens", "4", "--json")
    assert json.loads(raw.stdout)["object"] == "text_completion"
    voted = routeshell(
        "generate", "--model", str(pretrained[0]), "What is 6 * 7?", "--self-consistency", "3", "--calculator",
        "--max-tokens", "5", "--seed", "1", "--json",
    )  # fmt: skip
    assert voted.returncode == 0, voted.stderr
    assert json.loads(voted.stdout)["self_consistency"]["samples"] == 3


def test_generate_errors_are_one_line(pretrained: Pretrained, tmp_path: Path) -> None:
    model = str(pretrained[0])
    assert_one_line_error(routeshell("generate", "--model", str(tmp_path / "none"), "hi"), 2)
    (tmp_path / "bad.json").write_text("{not json")
    assert_one_line_error(
        routeshell("generate", "--model", model, "hi", "--json-schema", str(tmp_path / "bad.json")), 2
    )
    assert_one_line_error(routeshell("generate", "--model", model, "word " * 3000), 2, "context")
    assert_one_line_error(routeshell("generate", "--model", model, "hi", "--temperature", "5"), 2, "temperature")


def test_only_the_process_own_command_line_is_run_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tui import serve_cli
    from tui.cli import main

    calls: list[tuple[object, ...]] = []
    monkeypatch.setattr(os, "execve", lambda *args: calls.append(args))  # recorded, never run
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    monkeypatch.delenv(serve_cli.REEXEC_MARK, raising=False)
    # a program that calls main() with a command line of its own keeps its process
    assert main(["generate", "--model", str(tmp_path / "missing"), "hi"]) == 2
    assert calls == []
    if not sys.platform.startswith("linux") or "[never]" in serve_cli.THP_SETTING.read_text():
        pytest.skip("this kernel offers no transparent huge pages")
    serve_cli.reexec_with_huge_pages(own_process=True)
    ((executable, argv, environ),) = calls
    assert executable == sys.executable
    assert argv[0] == sys.executable
    assert environ["GLIBC_TUNABLES"] == serve_cli.HUGE_PAGES_TUNABLES
    assert environ[serve_cli.REEXEC_MARK] == serve_cli.HUGE_PAGES_TUNABLES


def test_thread_defaults_follow_the_cpu_affinity() -> None:
    import shutil

    if shutil.which("taskset") is None:
        pytest.skip("taskset is not installed")
    cores = len(os.sched_getaffinity(0))
    for prefix, usable in (([], cores), (["taskset", "-c", "0"], 1)):
        result = subprocess.run(
            [*prefix, ROUTESHELL, "serve", "--help"], capture_output=True, text=True, env=env(), timeout=60, check=False
        )
        assert result.returncode == 0, result.stderr
        text = " ".join(result.stdout.split())
        assert f"(default: all cores, here {usable})" in text
        assert f"(default: all cores but one, here {max(1, usable - 1)})" in text


def test_more_threads_than_usable_cores_is_a_usage_error(tmp_path: Path) -> None:
    cores = len(os.sched_getaffinity(0))
    for command in (["serve"], ["generate", "hi"]):
        for option in ("--threads", "--prefill-threads"):
            result = routeshell(*command, "--model", str(tmp_path), option, str(cores + 1))
            assert_one_line_error(result, 2, f"expected at most {cores} (the cores this process may use)")
