"""The engine in a process of its own: the tokens of the engine in this process, cancellation,
overload, a model that fails to load, and the death of either process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jsonschema
import pytest

from engine.serve.engine import Engine, collect
from engine.serve.engine_process import EngineProcess, EngineSpec
from engine.serve.grammar import compile_schema
from engine.serve.loaded import LoadedModel, ModelLoadError, load_model
from engine.serve.types import GenerationRequest, Overloaded, SamplingParams, ServeError
from tests.engine.serve.server_support import serving, wait_until
from tests.engine.serve.test_engine import PROMPTS, request, wait_for
from tests.engine.tinyllm.training_support import TrainRun
from tests.helpers import ROUTESHELL

pytestmark = pytest.mark.usefixtures("one_thread")

RECORD = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 12}, "size": {"type": "integer", "minimum": 0}},
    "required": ["name", "size"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def meta(pretrained: tuple[Path, TrainRun]) -> LoadedModel:
    """The nano model without its weights: what the HTTP side of a server holds."""
    return load_model(pretrained[0], dtype="fp32", weights=False)


@pytest.fixture(scope="module")
def remote(pretrained: tuple[Path, TrainRun], meta: LoadedModel) -> Iterator[EngineProcess]:
    engine = EngineProcess(EngineSpec(str(pretrained[0]), "fp32", max_batch=8, max_queue=8))
    engine.start(meta)
    yield engine
    engine.stop()


def test_a_special_token_stands_for_no_text_as_the_reply_decodes_it(meta: LoadedModel) -> None:
    tokenizer = meta.tokenizer
    words = tokenizer("def x", add_special_tokens=False)["input_ids"]
    for special in tokenizer.all_special_ids:
        assert meta.token_bytes(special) == b""
        # (what logprobs give a token's text is what the reply's text holds of it: a <pad> the model
        # picks shows in neither)
        tokens = [*words, special, *words]
        joined = b"".join(meta.token_bytes(token) for token in tokens).decode()
        assert joined.strip() == tokenizer.decode(tokens, skip_special_tokens=True).strip()


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its parent to read its status has ended)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def test_weights_false_loads_the_limits_and_tokenizer_only(meta: LoadedModel, loaded: LoadedModel) -> None:
    assert meta.model is None
    assert (meta.context_length, meta.vocab_size, meta.eos_ids) == (
        loaded.context_length,
        loaded.vocab_size,
        loaded.eos_ids,
    )
    assert meta.text_ids(PROMPTS[0]) == loaded.text_ids(PROMPTS[0])


def test_the_engine_process_gives_the_tokens_of_the_engine_in_this_process(
    remote: EngineProcess, loaded: LoadedModel, meta: LoadedModel
) -> None:
    grammar = compile_schema(RECORD, meta.tokenizer, eos_ids=sorted(meta.eos_ids))

    def requests(model: LoadedModel) -> list[GenerationRequest]:
        plain = [request(model, prompt, str(index), max_tokens=30, logprobs=2) for index, prompt in enumerate(PROMPTS)]
        sampled = request(model, PROMPTS[1], "s", max_tokens=20, temperature=1.0, seed=11)
        constrained = GenerationRequest(
            "j", tuple(model.text_ids(PROMPTS[4])), SamplingParams(max_tokens=60, temperature=0.0), grammar=grammar
        )
        return [*plain, sampled, constrained]

    here = Engine(loaded, max_batch=8, max_queue=8)
    here.start()
    try:
        expected = [collect(stream) for stream in [here.submit(r) for r in requests(loaded)]]
    finally:
        here.stop()
    got = [collect(stream) for stream in [remote.submit(r) for r in requests(meta)]]
    assert [(c.token_ids, c.text, c.finish_reason) for c in got] == [
        (c.token_ids, c.text, c.finish_reason) for c in expected
    ]
    # The same numbers up to the rounding of another batch's padding (rows join as they come).
    for mine, theirs in zip(got, expected, strict=True):
        assert [entry.token for entry in mine.logprobs] == [entry.token for entry in theirs.logprobs]
        expected_logprobs = [entry.logprob for entry in theirs.logprobs]
        assert [entry.logprob for entry in mine.logprobs] == pytest.approx(expected_logprobs, abs=1e-3)
    if got[-1].finish_reason == "stop":
        jsonschema.validate(json.loads(got[-1].text), RECORD)
    stats = remote.stats()
    assert stats.completion_tokens >= sum(c.completion_tokens for c in got)
    assert (stats.running, stats.waiting) == (0, 0)


def test_cancel_frees_the_batch_slot_in_the_engine_process(remote: EngineProcess, meta: LoadedModel) -> None:
    stream = remote.submit(request(meta, PROMPTS[0], max_tokens=200))
    deltas = iter(stream)
    next(deltas)
    wait_for(lambda: remote.stats().running == 1)
    stream.cancel()
    rest = list(deltas)
    assert rest[-1].finish_reason == "cancelled"
    assert sum(len(d.token_ids) for d in rest) < 199
    wait_for(lambda: remote.stats().running == 0)


def test_a_request_the_model_cannot_take_is_refused_before_it_travels(remote: EngineProcess, meta: LoadedModel) -> None:
    with pytest.raises(ServeError) as refused:
        remote.submit(request(meta, PROMPTS[0], max_tokens=meta.context_length))
    assert refused.value.status == 400
    assert refused.value.code == "context_length_exceeded"


def test_overload_and_stop_in_a_small_engine_process(pretrained: tuple[Path, TrainRun], meta: LoadedModel) -> None:
    engine = EngineProcess(EngineSpec(str(pretrained[0]), "fp32", max_batch=1, max_queue=1))
    engine.start(meta)
    pid = engine.pid
    assert pid is not None
    running = engine.submit(request(meta, PROMPTS[0], max_tokens=240))
    waiting = engine.submit(request(meta, PROMPTS[1], max_tokens=5))
    with pytest.raises(Overloaded) as refused:
        engine.submit(request(meta, PROMPTS[2], max_tokens=5))
    assert refused.value.retry_after
    next(iter(running))
    engine.stop()
    ended = collect(waiting)
    assert ended.finish_reason == "cancelled", ended
    assert [d.finish_reason for d in running][-1] == "cancelled"
    assert not alive(pid)
    assert not engine.alive
    with pytest.raises(ServeError) as stopped:
        engine.submit(request(meta, PROMPTS[2], max_tokens=5))
    assert stopped.value.status == 503


def test_a_killed_engine_process_ends_its_streams_with_an_error(
    pretrained: tuple[Path, TrainRun], meta: LoadedModel
) -> None:
    told: list[str] = []
    engine = EngineProcess(EngineSpec(str(pretrained[0]), "fp32", max_batch=2, max_queue=2), on_exit=told.append)
    engine.start(meta)
    try:
        streams = [engine.submit(request(meta, prompt, max_tokens=240)) for prompt in PROMPTS[:3]]
        next(iter(streams[0]))
        assert engine.pid is not None
        os.kill(engine.pid, signal.SIGKILL)
        ends = [collect(stream) for stream in streams]
        assert {(c.finish_reason, c.error) for c in ends} == {("error", "the engine process was killed by SIGKILL")}
        assert wait_until(lambda: told == ["the engine process was killed by SIGKILL"], timeout=10)
        assert not engine.alive
        with pytest.raises(ServeError) as refused:
            engine.submit(request(meta, PROMPTS[0]))
        assert (refused.value.status, str(refused.value)) == (503, "the engine process was killed by SIGKILL")
    finally:
        engine.stop()


def test_a_model_whose_weights_cannot_load_fails_the_start_with_one_line(
    pretrained: tuple[Path, TrainRun], meta: LoadedModel, tmp_path: Path
) -> None:
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for item in pretrained[0].iterdir():
        if item.is_file():
            (damaged / item.name).write_bytes(item.read_bytes())
    weights = damaged / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    engine = EngineProcess(EngineSpec(str(damaged), "fp32"))
    with pytest.raises(ModelLoadError) as failed:
        engine.start(meta)
    assert "the model cannot be loaded" in str(failed.value)
    assert "\n" not in str(failed.value)
    assert engine.pid is not None
    assert not alive(engine.pid)


# -- through `routeshell serve` -------------------------------------------------------------------------


def test_a_server_whose_engine_is_killed_ends_its_streams_and_exits_1(pretrained: tuple[Path, TrainRun]) -> None:
    with serving(pretrained[0], "--name", "nano") as server:
        body = {"model": "nano", "messages": [{"role": "user", "content": "def"}], "max_tokens": 240, "stream": True}
        lines: list[str] = []
        with httpx.stream("POST", f"{server.url}/chat/completions", json=body, timeout=60) as response:
            for line in response.iter_lines():
                if line.startswith("data: ") and not lines:
                    os.kill(server.ready["engine_pid"], signal.SIGKILL)
                if line.startswith("data: "):
                    lines.append(line.removeprefix("data: "))
        assert server.process.wait(60) == 1
    assert lines[-1] == "[DONE]"
    assert "the engine process was killed by SIGKILL" in json.loads(lines[-2])["error"]["message"]
    errors = [line for line in server.stderr.splitlines() if "error" in line]
    assert errors == ["routeshell: error: the server stopped: the engine process was killed by SIGKILL"], server.stderr
    assert "Traceback" not in server.stderr


def test_a_killed_server_takes_its_engine_process_with_it(pretrained: tuple[Path, TrainRun]) -> None:
    with serving(pretrained[0]) as server:
        engine_pid = server.ready["engine_pid"]
        assert engine_pid != server.ready["pid"]
        assert alive(engine_pid)
        server.process.kill()
        server.process.wait(30)
        assert wait_until(lambda: not alive(engine_pid), timeout=30)


def test_sigterm_to_the_whole_process_group_stops_the_server_cleanly(pretrained: tuple[Path, TrainRun]) -> None:
    """The Serve pane and the local profile's launcher signal the server's process group: the
    engine process must leave its stopping to the server, which stops it after its requests."""
    process = subprocess.Popen(
        [ROUTESHELL, "serve", "--model", str(pretrained[0]), "--port", "0", "--events"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline())
        assert ready["type"] == "serve_ready", ready
        url = ready["url"]
        answer = httpx.post(
            f"{url}/completions", json={"model": ready["models"][0], "prompt": "x", "max_tokens": 3}, timeout=60
        )
        assert answer.status_code == 200
        time.sleep(0.2)
        os.killpg(process.pid, signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    stopped = json.loads(out.splitlines()[-1])
    assert (stopped["type"], stopped["reason"], stopped["requests"]) == ("serve_stopped", "signal", 1)
    assert "engine process" not in err
    assert wait_until(lambda: not alive(ready["engine_pid"]), timeout=10)
