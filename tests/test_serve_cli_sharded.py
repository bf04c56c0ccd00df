"""A model saved in shards (``save_pretrained(max_shard_size=...)``: model.safetensors.index.json and
model-0000N-of-0000M.safetensors) is served as the single file is, each shard's header checked
first; an index that names a shard outside the directory, or one it lacks, or that is too big to
be one, is refused in one line, exit 2."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from engine.serve.loaded import ModelLoadError
from engine.serve.model_dir import MAX_INDEX_BYTES, WEIGHTS_INDEX, checked_shapes
from tests.engine.serve.server_support import serving
from tests.helpers import assert_one_line_error
from tests.test_serve_cli_edges import Pretrained, routeshell

SUPPORT_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json")


@pytest.fixture(scope="module")
def sharded(pretrained: Pretrained, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The nano model saved again in shards of at most 200 KB, with its tokenizer."""
    from transformers import AutoModelForCausalLM

    out = tmp_path_factory.mktemp("sharded") / "model"
    AutoModelForCausalLM.from_pretrained(pretrained[0]).save_pretrained(out, max_shard_size="200KB")
    for name in SUPPORT_FILES:
        if (pretrained[0] / name).is_file():
            (out / name).write_bytes((pretrained[0] / name).read_bytes())
    assert not (out / "model.safetensors").exists()
    assert len(list(out.glob("model-*-of-*.safetensors"))) > 2
    return out


def test_a_model_saved_in_shards_is_served_and_answers(sharded: Path) -> None:
    # Refused before: "not a finished model directory (missing model.safetensors)".
    with serving(sharded, "--name", "nano") as server:
        reply = server.client().chat.completions.create(
            model="nano", messages=[{"role": "user", "content": "hi"}], max_tokens=4, temperature=0
        )
        assert reply.usage is not None
        assert reply.usage.completion_tokens >= 1
        assert reply.choices[0].finish_reason in ("length", "stop")


def index_of(model: Path) -> dict[str, str]:
    weight_map: dict[str, str] = json.loads((model / WEIGHTS_INDEX).read_text())["weight_map"]
    return weight_map


def with_weight_map(sharded: Path, target: Path, change: dict[str, str]) -> Path:
    target.mkdir()
    for entry in sharded.iterdir():
        os.link(entry, target / entry.name)  # (a link to a file elsewhere would be refused)
    (target / WEIGHTS_INDEX).unlink()
    weight_map = {**index_of(sharded), **change}
    (target / WEIGHTS_INDEX).write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return target


@pytest.mark.parametrize(
    ("shard", "said"),
    [
        ("../model.safetensors", "names the shard '../model.safetensors', which is no file name of the model"),
        ("model-99999-of-99999.safetensors", "which the model directory lacks"),
        ("outside.safetensors", "a link out of the model directory"),
        ("\x1b[2J.safetensors", "names the shard '\\x1b[2J.safetensors', which the model directory lacks"),
    ],
)
def test_an_index_naming_a_shard_outside_the_directory_or_absent_is_refused_in_one_line(
    sharded: Path, tmp_path: Path, shard: str, said: str
) -> None:
    first = next(iter(index_of(sharded)))
    model = with_weight_map(sharded, tmp_path / "model", {first: shard})
    (tmp_path / "model.safetensors").write_bytes((sharded / index_of(sharded)[first]).read_bytes())
    os.symlink(tmp_path / "model.safetensors", model / "outside.safetensors")
    with pytest.raises(ModelLoadError) as refused:
        checked_shapes(model)
    assert said in str(refused.value)
    assert str(refused.value).isprintable()


def test_an_index_of_other_shards_or_too_big_is_refused_in_one_line(sharded: Path, tmp_path: Path) -> None:
    model = with_weight_map(sharded, tmp_path / "model", {"model.no_such.weight": index_of(sharded)["lm_head.weight"]})
    with pytest.raises(ModelLoadError, match=r"names tensors its shards lack \(model.no_such.weight\)"):
        checked_shapes(model)
    (model / WEIGHTS_INDEX).write_text("[" * 100000)
    with pytest.raises(ModelLoadError, match=rf"{WEIGHTS_INDEX} nests too deeply$"):
        checked_shapes(model)
    (model / WEIGHTS_INDEX).write_text('{"weight_map": {}}')
    with pytest.raises(ModelLoadError, match=r'has no "weight_map" of tensor names to shard files$'):
        checked_shapes(model)
    with (model / WEIGHTS_INDEX).open("r+b") as index:  # (sparse: no disk)
        index.truncate(MAX_INDEX_BYTES + 1)
    result = routeshell("serve", "--model", str(model), "--port", "0")
    assert_one_line_error(result, 2, f"{WEIGHTS_INDEX} holds {MAX_INDEX_BYTES + 1:,} bytes, more than a model's")
