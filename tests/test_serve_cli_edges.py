"""``routeshell serve`` and ``generate`` on broken model directories and awkward files: one line, exit 2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.engine.serve.server_support import serving
from tests.engine.tinyllm.training_support import TrainRun
from tests.helpers import ROUTESHELL, assert_one_line_error, read_terminal

Pretrained = tuple[Path, TrainRun]


#: Hides every CUDA device from torch, on any machine.
NO_CUDA = {"CUDA_VISIBLE_DEVICES": ""}


def routeshell(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run(
        [ROUTESHELL, *args], capture_output=True, text=True, env=environment, stdin=subprocess.DEVNULL, timeout=300
    )


def copy_model(pretrained: Pretrained, target: Path) -> Path:
    shutil.copytree(pretrained[0], target, ignore=shutil.ignore_patterns("checkpoints"))
    return target


@pytest.mark.parametrize(
    ("damage", "needle"),
    [
        ("truncated weights", "the model cannot be loaded"),
        ("config.json a list", "the model cannot be loaded"),
    ],
)
def test_a_damaged_model_directory_is_one_line_and_exit_2(
    pretrained: Pretrained, tmp_path: Path, damage: str, needle: str
) -> None:
    model = copy_model(pretrained, tmp_path / "model")
    if damage == "truncated weights":
        with (model / "model.safetensors").open("r+b") as weights:
            weights.truncate(1000)
    else:
        (model / "config.json").write_text("[1, 2]")
    assert_one_line_error(routeshell("serve", "--model", str(model), "--port", "0"), 2, needle)
    assert_one_line_error(routeshell("generate", "--model", str(model), "hi"), 2, needle)


def test_a_junk_adapter_is_one_line_and_exit_2(pretrained: Pretrained, tmp_path: Path) -> None:
    adapter = tmp_path / "lora"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    result = routeshell("serve", "--model", str(pretrained[0]), "--adapter", f"x={adapter}", "--port", "0")
    assert_one_line_error(result, 2, "an adapter cannot be loaded")


def test_a_model_under_a_path_that_is_not_utf8_says_so(pretrained: Pretrained, tmp_path: Path) -> None:
    model = copy_model(pretrained, Path(os.fsdecode(os.fsencode(tmp_path) + b"/model-\xff")))
    assert_one_line_error(routeshell("generate", "--model", str(model), "hi"), 2, "is not UTF-8", "model-\\xff")


def test_the_server_log_is_one_escaped_line_per_record(capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio
    import logging

    from tui.serve_cli import _configure_logging

    names = ("routeshell", "uvicorn", "uvicorn.error", "sse_starlette")
    saved = [(logging.getLogger(n).handlers[:], logging.getLogger(n).propagate) for n in names]
    try:
        _configure_logging()
        try:
            raise RuntimeError("boom\x1b[31m\nsecond line")
        except RuntimeError as err:
            logging.getLogger("uvicorn.error").error("Exception in ASGI application\n", exc_info=err)
        logging.getLogger("routeshell.serve").warning("request %s failed", "/v1/\x1b]0;title\x07")
        try:
            raise asyncio.CancelledError
        except asyncio.CancelledError as err:  # a second Ctrl-C: no failure to report
            logging.getLogger("uvicorn.error").error("Exception in ASGI application\n", exc_info=err)
    finally:
        for name, (handlers, propagate) in zip(names, saved, strict=True):
            logging.getLogger(name).handlers, logging.getLogger(name).propagate = handlers, propagate
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "routeshell: serve: Exception in ASGI application: RuntimeError: boom\\x1b[31m",
        "routeshell: serve: request /v1/\\x1b]0;title\\x07 failed",
    ]


def test_a_schema_file_with_a_long_name_is_used_and_json_on_a_terminal_escapes_what_it_would_obey(
    pretrained: Pretrained, tmp_path: Path
) -> None:
    """JSON leaves C1 controls and bidi overrides as they are; on a terminal they are escaped (the
    same JSON), on a pipe the output stays raw. The schema's file has a long name: the answer is
    its constant, so it was read and used."""
    import pty

    schema = tmp_path / f"{'verdict-' * 12}.json"
    schema.write_text(json.dumps({"const": "\x9b2J\u202e"}))
    args = [ROUTESHELL, "generate", "--model", str(pretrained[0]), "hi", "--json-schema", str(schema), "--json"]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(
            args, stdout=follower, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=environment
        )
        os.close(follower)
        shown = read_terminal(leader, timeout=120)
        assert process.wait(120) == 0
    finally:
        os.close(leader)
    text = shown.decode()
    assert "\x9b" not in text
    assert "\u202e" not in text
    response = json.loads(text)
    assert json.loads(response["choices"][0]["message"]["content"]) == "\x9b2J\u202e"


def test_an_endless_prompt_or_schema_is_read_no_further_than_its_bound(pretrained: Pretrained) -> None:
    with open("/dev/zero", "rb") as zeros:
        argv = [ROUTESHELL, "generate", "--model", str(pretrained[0]), "-"]
        endless = subprocess.run(argv, capture_output=True, text=True, stdin=zeros, timeout=300)
    assert_one_line_error(endless, 2, "the prompt on standard input is longer than 1 MiB")
    result = routeshell("generate", "--model", str(pretrained[0]), "hi", "--json-schema", "/dev/zero")
    assert_one_line_error(result, 2, "the schema /dev/zero is longer than 1 MiB")


def test_endless_small_files_in_a_model_directory_are_never_read_whole_nor_int8_put_on_a_gpu(
    pretrained: Pretrained, tmp_path: Path
) -> None:
    model = copy_model(pretrained, tmp_path / "model")
    # Optional files: one that is no regular file is left out, as a missing one is.
    for name in ("generation_config.json", "routeshell-train.json"):
        (model / name).unlink(missing_ok=True)
        (model / name).symlink_to("/dev/zero")
    # int8 runs on the CPU only, so auto with it is the CPU wherever there is a GPU.
    result = routeshell("generate", "--model", str(model), "hi", "--max-tokens", "2", "--device", "auto",
                        "--dtype", "int8")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


def test_device_cuda_where_torch_sees_none_is_one_line_and_exit_2(pretrained: Pretrained) -> None:
    model = str(pretrained[0])
    needle = "--device cuda: torch sees no CUDA device here"
    assert_one_line_error(
        routeshell("serve", "--model", model, "--port", "0", "--device", "cuda", env=NO_CUDA), 2, needle
    )
    assert_one_line_error(routeshell("generate", "--model", model, "hi", "--device", "cuda", env=NO_CUDA), 2, needle)
    assert_one_line_error(routeshell("serve", "--model", model, "--device", "gpu"), 2, "invalid choice: 'gpu'")


def test_device_auto_without_cuda_serves_on_the_cpu_and_health_says_where(pretrained: Pretrained) -> None:
    with serving(pretrained[0], "--device", "auto", env=NO_CUDA) as server:
        health = server.health()
        assert health["device"] == "cpu"
        reply = server.client().completions.create(model=health["models"][0], prompt="def", max_tokens=2)
        assert reply.usage is not None
        assert reply.usage.completion_tokens >= 1


def test_a_tokenizer_with_more_tokens_than_the_model_embeds_is_refused(pretrained: Pretrained, tmp_path: Path) -> None:
    model = copy_model(pretrained, tmp_path / "model")
    tokenizer = json.loads((model / "tokenizer.json").read_text())
    rows = json.loads((model / "config.json").read_text())["vocab_size"]
    extra = {"id": rows, "content": "<|beyond|>", "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True}  # fmt: skip
    tokenizer["added_tokens"].append(extra)
    (model / "tokenizer.json").write_text(json.dumps(tokenizer))
    needle = f"the tokenizer has {rows + 1} tokens but the model embeds only {rows}"
    assert_one_line_error(routeshell("generate", "--model", str(model), "hi"), 2, needle)
    assert_one_line_error(routeshell("serve", "--model", str(model), "--port", "0"), 2, needle)


def test_the_engine_process_loads_on_the_device_its_spec_names(pretrained: Pretrained) -> None:
    import torch

    from engine.serve.engine_process import EngineSpec, load_engine_model
    from engine.serve.loaded import DEVICES
    from tui.serve_cli import DEVICES as OFFERED

    assert OFFERED == DEVICES  # --device offers what the loader takes (kept apart for a fast --help)

    threads = torch.get_num_threads()
    try:
        loaded = load_engine_model(EngineSpec(model=str(pretrained[0]), dtype="fp32", device="auto"))
        where = "cuda" if torch.cuda.is_available() else "cpu"
        assert loaded.device == where
        assert next(loaded.model.parameters()).device.type == where
        assert load_engine_model(EngineSpec(model=str(pretrained[0]), dtype="fp32")).device == "cpu"
    finally:
        torch.set_num_threads(threads)  # the spec's one thread is for an engine process, not the tests
