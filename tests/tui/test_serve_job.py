"""The Serve pane's job helpers: the form check, the command, event lines, health, endings, and the real server."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest

from engine.serve.launcher import probe
from tests.engine.tinyllm.training_support import TrainRun
from tui.serve_job import (
    Health,
    ServeJob,
    ServeRequest,
    parse_serve_form,
    parse_serve_line,
    read_health,
    serve_event_summary,
)
from tui.train_job import FormError

READY = {"type": "serve_ready", "url": "http://127.0.0.1:8765/v1", "models": ["m", "lora"], "dtype": "bf16",
         "device": "cpu", "pid": 7, "engine_pid": 8}  # fmt: skip
REQUEST = {"type": "serve_request", "method": "POST", "path": "/v1/chat/completions", "status": 200, "model": "m",
           "prompt_tokens": 12, "completion_tokens": 30, "elapsed_s": 0.5}  # fmt: skip


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def test_the_form_builds_the_command(tmp_path: Path) -> None:
    request = parse_serve_form(
        tmp_path / "m", "lora=adapters/a 'b=my adapter'", " 127.0.0.1 ", "0", "int8", "", base=tmp_path
    )
    assert request == ServeRequest(
        tmp_path / "m", (("lora", tmp_path / "adapters/a"), ("b", tmp_path / "my adapter")), "127.0.0.1", 0, "int8"
    )
    # Through the orphan guard: the server stops itself (SIGTERM) when the app is gone.
    assert request.argv()[:5] == [sys.executable, "-m", "tui.orphan_guard", "SIGTERM", "serve"]
    assert request.argv()[5:] == [
        "--model", str(tmp_path / "m"), "--adapter", f"lora={tmp_path / 'adapters/a'}", "--adapter",
        f"b={tmp_path / 'my adapter'}", "--host", "127.0.0.1", "--port", "0", "--dtype", "int8", "--events",
    ]  # fmt: skip
    # Where the model runs: the CPU unless the form says otherwise, as the server's own default.
    assert request.device == "cpu"
    on_gpu = parse_serve_form(tmp_path / "m", "", "127.0.0.1", "0", "auto", "", base=tmp_path, device="cuda")
    assert on_gpu.argv()[-3:] == ["--device", "cuda", "--events"]
    with pytest.raises(FormError, match="choose where the model runs: cpu, cuda, auto"):
        parse_serve_form(tmp_path / "m", "", "127.0.0.1", "0", "auto", "", base=tmp_path, device="tpu")
    keyed = parse_serve_form(tmp_path / "m", "", "0.0.0.0", "8765", "auto", "sekrit-key", base=tmp_path)
    # The key goes in the server's environment, never in a command line that others can read.
    assert not any("sekrit" in word for word in keyed.argv())
    assert keyed.env() == {"ROUTESHELL_API_KEY": "sekrit-key"}
    assert ServeJob(keyed, tmp_path).env == {"ROUTESHELL_API_KEY": "sekrit-key"}
    assert request.env() == {}
    assert shlex.split(keyed.shown())[:2] == ["routeshell", "serve"]


@pytest.mark.parametrize(
    ("model", "adapters", "host", "port", "dtype", "key", "why"),
    [
        (None, "", "127.0.0.1", "8765", "auto", "", "choose a model"),
        ("m", "lora", "127.0.0.1", "8765", "auto", "", "an adapter is NAME=DIR"),
        ("m", "bad/name=x", "127.0.0.1", "8765", "auto", "", "adapter name 'bad/name'"),
        ("m", "a=x a=y", "127.0.0.1", "8765", "auto", "", "given twice"),
        ("m", "'a=x", "127.0.0.1", "8765", "auto", "", "do not parse"),
        ("m", "", " ", "8765", "auto", "", "the host is empty"),
        ("m", "", "127.0.0.1", "http", "auto", "", "the port must be a whole number"),
        ("m", "", "127.0.0.1", "70000", "auto", "", "the port must be a whole number"),
        ("m", "", "127.0.0.1", "8765", "fp64", "", "choose a weight format"),
        ("m", "", "0.0.0.0", "8765", "auto", "", "give an API key"),
        ("m", "", "0.0.0.0", "8765", "auto", "sk 7f3a", "the API key holds a space"),
        ("m", "", "127.0.0.1", "8765", "auto", "cl\u00e9", "the API key holds a character that is not ASCII"),
    ],
)
def test_the_form_refuses_what_cannot_start(
    tmp_path: Path, model: str | None, adapters: str, host: str, port: str, dtype: str, key: str, why: str
) -> None:
    with pytest.raises(FormError, match=why):
        parse_serve_form(tmp_path / model if model else None, adapters, host, port, dtype, key, base=tmp_path)


def test_event_lines_are_checked_against_the_contract() -> None:
    assert parse_serve_line(json.dumps(READY)) == (READY, None)
    assert parse_serve_line("INFO:     Started server process") == (None, None)
    event, why = parse_serve_line(json.dumps({"type": "train_step"}))
    assert event is None
    assert why == "not a server event (type 'train_step')"
    broken = dict(READY)
    del broken["url"]
    assert parse_serve_line(json.dumps(broken))[1] is not None


def test_event_summaries() -> None:
    assert serve_event_summary(READY) == "ready at http://127.0.0.1:8765/v1 (pid 7, bf16): m, lora"
    on_gpu = {**READY, "device": "cuda"}
    assert serve_event_summary(on_gpu) == "ready at http://127.0.0.1:8765/v1 (pid 7, bf16 on cuda): m, lora"
    assert serve_event_summary(REQUEST) == "POST /v1/chat/completions 200 m, 12+30 tokens in 0.50s"
    stopped = {"type": "serve_stopped", "reason": "signal", "requests": 3}
    assert serve_event_summary(stopped) == "stopped on a signal after 3 requests"


def test_health_keeps_only_well_typed_fields() -> None:
    health = Health.parse({"status": "ok", "requests": 3, "tokens_per_s": 41.25, "waiting": 0, "running": 1})
    assert health.summary() == "3 requests · 41.2 tok/s · waiting 0 · running 1"
    junk = Health.parse({"status": ["x"], "requests": "3", "tokens_per_s": True, "waiting": -1, "running": None})
    assert junk == Health()
    assert junk.summary() == "no metrics"
    assert Health.parse([1, 2]) == Health()


async def test_the_real_server_answers_its_health_and_stops_when_its_starter_is_gone(
    tmp_path: Path, pretrained: tuple[Path, TrainRun]
) -> None:
    job = ServeJob(ServeRequest(pretrained[0], port=0), tmp_path)
    events: list[dict[str, object]] = []
    lines: list[tuple[str, str, str | None]] = []

    def on_event(event: dict[str, object]) -> None:
        events.append(event)
        if event["type"] == "serve_ready":
            # The server is up: its health answers. Then its standard input closes, as it does
            # when the app that started it dies: the server stops by itself.
            assert job.url is not None
            assert read_health(job.url).status == "ok"
            assert job.process is not None
            assert job.process.stdin is not None
            job.process.stdin.close()

    await job.start()
    code = await job.serve(on_event, lambda stream, text, problem: lines.append((stream, text, problem)))
    assert events[0]["type"] == "serve_ready"
    assert events[-1]["type"] == "serve_stopped"
    assert job.models == [pretrained[0].name]
    assert not job.interrupted
    assert code == 0, lines
    assert job.ending_line(code) == "exited"
    assert not any(problem for _, _, problem in lines)
    assert job.url is not None
    assert probe(job.url) == "absent"


async def test_a_server_that_cannot_load_its_model_ends_with_its_error(tmp_path: Path) -> None:
    job = ServeJob(ServeRequest(tmp_path / "missing", port=0), tmp_path)
    await job.start()
    code = await job.serve(lambda event: None, lambda stream, text, problem: None)
    assert code == 2
    ending = job.ending_line(code)
    assert ending.startswith("did not start (exited with code 2): ")
    assert "missing" in ending
    assert "\n" not in ending
