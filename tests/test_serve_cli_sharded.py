"""A model saved in shards (``save_pretrained(max_shard_size=...)``: model.safetensors.index.json and
model-0000N-of-0000M.safetensors) is served as the single file is, each shard's header checked
first; an index that names a shard outside the directory, or one it lacks, or that is too big to
be one, is refused in one line, exit 2."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

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
    with pytest.raises(ModelLoadError, match=r"names tensors its shard '.*' lacks \(model.no_such.weight\)"):
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


#: The config.json of a tiny model whose weights :func:`tiny_model` writes: never built, only checked.
TINY_CONFIG = {
    "model_type": "llama", "hidden_size": 4, "intermediate_size": 8, "num_hidden_layers": 2,
    "num_attention_heads": 1, "vocab_size": 8,
}  # fmt: skip


def tiny_tensors(layers: int = 2) -> dict[str, np.ndarray]:
    tensors = {"model.embed_tokens.weight": np.ones((8, 4), np.float32), "model.norm.weight": np.ones(4, np.float32)}
    for layer in range(layers):
        tensors[f"model.layers.{layer}.input_layernorm.weight"] = np.ones(4, np.float32)
        tensors[f"model.layers.{layer}.mlp.up_proj.weight"] = np.ones((8, 4), np.float32)
    return tensors


def tiny_model(
    target: Path, shards: dict[str, dict[str, np.ndarray]], weight_map: dict[str, str] | None = None, **config: Any
) -> Path:
    """A model directory of ``shards`` (each file's tensors) and config.json; with ``weight_map`` (or
    more than one shard) an index of them, else the one shard as model.safetensors."""
    target.mkdir()
    (target / "config.json").write_text(json.dumps({**TINY_CONFIG, **config}))
    (target / "tokenizer.json").write_text("{}")
    for shard, tensors in shards.items():
        save_file(tensors, str(target / shard))
    if weight_map is None and len(shards) > 1:
        weight_map = {name: shard for shard, tensors in shards.items() for name in tensors}
    if weight_map is not None:
        (target / WEIGHTS_INDEX).write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return target


def split(tensors: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """``tensors`` in two shards: the layers', and the others'."""
    layers = {name: tensor for name, tensor in tensors.items() if ".layers." in name}
    rest = {name: tensor for name, tensor in tensors.items() if name not in layers}
    return {"model-00001-of-00002.safetensors": layers, "model-00002-of-00002.safetensors": rest}


def refusal(model: Path) -> str:
    with pytest.raises(ModelLoadError) as refused:
        checked_shapes(model)
    message = str(refused.value)
    assert message.isprintable()
    return message


def test_a_tiny_model_in_shards_or_not_passes_the_checks(tmp_path: Path) -> None:
    assert checked_shapes(tiny_model(tmp_path / "single", {"model.safetensors": tiny_tensors()}))
    assert checked_shapes(tiny_model(tmp_path / "sharded", split(tiny_tensors())))


def test_a_shard_name_too_long_for_a_file_is_refused_in_one_line(tmp_path: Path) -> None:
    # OSError: [Errno 36] File name too long, as a traceback, exit 1, before.
    shards = split(tiny_tensors())
    model = tiny_model(tmp_path / "model", shards, {**dict.fromkeys(shards[next(iter(shards))], "l" * 300)})
    result = routeshell("generate", "--model", str(model), "hi", "--max-tokens", "2")
    assert_one_line_error(result, 2, "names the shard 'llll", "(300 characters)', which is no file name of the model")


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"model.norm.weight": "../" + "x" * 5_000_000}, "names the shard '../xxx"),
        ({"A" * 1_000_000: "model-00001-of-00002.safetensors"}, "(AAAA"),
        ({"model.norm.weight": "y" * 100_000}, "names the shard 'yyy"),
    ],
    ids=["a shard's name", "a tensor's name in the index", "a name too long for a file"],
)
def test_a_long_name_of_the_weights_is_cut_in_the_line_that_names_it(
    tmp_path: Path, change: dict[str, str], said: str
) -> None:
    # The whole name was the line before: 5,000,000 characters of it.
    shards = split(tiny_tensors())
    weight_map = {name: shard for shard, tensors in shards.items() for name in tensors}
    message = refusal(tiny_model(tmp_path / "model", shards, {**weight_map, **change}))
    longest = max(len(text) for item in change.items() for text in item)
    assert said in message
    assert f"... ({longest:,} characters)" in message
    assert len(message) < 400


def test_a_long_tensor_name_in_a_shard_is_cut_in_the_line_that_names_it(tmp_path: Path) -> None:
    shards = split(tiny_tensors())
    weight_map = {name: shard for shard, tensors in shards.items() for name in tensors}
    shards["model-00002-of-00002.safetensors"]["B" * 500_000] = np.ones(1, np.float32)
    message = refusal(tiny_model(tmp_path / "model", shards, weight_map))
    assert f"holds {'B' * 80}... (500,000 characters) but {WEIGHTS_INDEX} does not name it" in message
    assert len(message) < 400


def test_each_shard_holds_exactly_the_tensors_the_index_assigns_it(tmp_path: Path) -> None:
    shards = split(tiny_tensors())
    weight_map = {name: shard for shard, tensors in shards.items() for name in tensors}
    # A second copy of a tensor, listed: which one loaded did not follow the index.
    copied = {**shards, "extra.safetensors": {"model.norm.weight": np.full(4, 1e9, np.float32)}}
    model = tiny_model(
        tmp_path / "copied", copied, {**weight_map, "model.layers.0.mlp.up_proj.weight": "extra.safetensors"}
    )
    assert refusal(model).endswith(
        "the shards 'extra.safetensors' and 'model-00002-of-00002.safetensors' both hold model.norm.weight; "
        f"a tensor is in one shard, the one {WEIGHTS_INDEX} names"
    )
    moved = {**weight_map, "model.norm.weight": "model-00001-of-00002.safetensors"}
    assert (
        "the shard 'model-00002-of-00002.safetensors' holds model.norm.weight but "
        f"{WEIGHTS_INDEX} assigns it to 'model-00001-of-00002.safetensors'; it is not the index of these shards"
    ) in refusal(tiny_model(tmp_path / "moved", shards, moved))
    unnamed = {name: shard for name, shard in weight_map.items() if name != "model.norm.weight"}
    assert f"holds model.norm.weight but {WEIGHTS_INDEX} does not name it" in refusal(
        tiny_model(tmp_path / "unnamed", shards, unnamed)
    )


@pytest.mark.parametrize("metadata", [None, [], "absent"])
def test_an_index_without_a_metadata_object_is_refused_before_torch_is_imported(
    tmp_path: Path, metadata: object
) -> None:
    # transformers' KeyError: 'metadata', once torch was loaded, before.
    model = tiny_model(tmp_path / "model", split(tiny_tensors()))
    index = json.loads((model / WEIGHTS_INDEX).read_text())
    index.pop("metadata") if metadata == "absent" else index.update(metadata=metadata)
    (model / WEIGHTS_INDEX).write_text(json.dumps(index))
    assert refusal(model).endswith(f'{WEIGHTS_INDEX} has no "metadata" object')


def test_an_index_that_begins_with_a_byte_order_mark_is_refused_as_transformers_would(tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "model", split(tiny_tensors()))
    (model / WEIGHTS_INDEX).write_bytes(b"\xef\xbb\xbf" + (model / WEIGHTS_INDEX).read_bytes())
    assert f"{WEIGHTS_INDEX}: Unexpected UTF-8 BOM" in refusal(model)


def test_an_index_or_shard_that_is_no_regular_file_is_called_so(tmp_path: Path) -> None:
    # "missing model.safetensors" and "which the model directory lacks", before.
    model = tiny_model(tmp_path / "model", split(tiny_tensors()))
    shard = model / "model-00001-of-00002.safetensors"
    shard.unlink()
    os.mkfifo(shard)
    assert refusal(model).endswith(
        "names the shard 'model-00001-of-00002.safetensors', which is not a regular file (a device, a FIFO or a "
        "directory)"
    )
    (model / WEIGHTS_INDEX).unlink()
    os.symlink("/dev/zero", model / WEIGHTS_INDEX)
    assert refusal(model).endswith(f"{WEIGHTS_INDEX} is not a regular file (a device, a FIFO or a directory)")


LAYERS_SHARD, REST_SHARD = "'model-00001-of-00002.safetensors'", "'model-00002-of-00002.safetensors'"


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (
            {"model.norm.weight": np.ones(4, np.int8)},
            f"model.norm.weight is I8 in the shard {REST_SHARD}, not a floating type",
        ),
        (
            {"model.layers.1.mlp.up_proj.weight": np.ones((8, 3), np.float32)},
            f"model.layers.1.mlp.up_proj.weight is [8, 3] in the shard {LAYERS_SHARD} but "
            f"model.layers.0.mlp.up_proj.weight is [8, 4] (in the shard {LAYERS_SHARD})",
        ),
        (
            {"model.layers.1.extra.weight": np.ones(4, np.float32)},
            f"holds model.layers.1.extra.weight (in the shard {LAYERS_SHARD}) but no model.layers.0.extra.weight",
        ),
        (
            {"model.layers.3.input_layernorm.weight": np.ones(4, np.float32),
             "model.layers.3.mlp.up_proj.weight": np.ones((8, 4), np.float32)},
            f"holds model.layers.3. (in the shard {LAYERS_SHARD}) but no model.layers.2.",
        ),
    ],
    ids=["a type", "a layer's shape", "a layer's tensor of its own", "a gap in the layers"],
)  # fmt: skip
def test_a_refusal_of_one_tensor_names_the_shard_that_holds_it(
    tmp_path: Path, change: dict[str, np.ndarray], said: str
) -> None:
    # The index was named, which holds no tensor: the line said nothing of which of the files to look in.
    message = refusal(tiny_model(tmp_path / "model", split(tiny_tensors() | change)))
    assert said in message


def test_a_tensor_of_another_shape_than_the_config_needs_is_named_with_its_shard(tmp_path: Path) -> None:
    from engine.serve.model_dir import check_model_fits

    model = tiny_model(tmp_path / "model", split(tiny_tensors() | {"model.norm.weight": np.ones(5, np.float32)}))
    with pytest.raises(ModelLoadError) as refused:
        check_model_fits(model, checked_shapes(model))
    assert f"model.norm.weight is [5] in the shard {REST_SHARD} but config.json's model needs [4]" in str(refused.value)


def test_weights_in_shards_that_are_not_finite_numbers_are_refused_naming_the_shard(
    sharded: Path, tmp_path: Path
) -> None:
    from safetensors.torch import load_file, save_file

    from engine.serve.loaded import load_model

    model = tmp_path / "model"
    shutil.copytree(sharded, model)
    shard = index_of(model)["model.norm.weight"]
    tensors = load_file(str(model / shard))
    tensors["model.norm.weight"][1] = float("nan")
    save_file(tensors, str(model / shard), metadata={"format": "pt"})
    with pytest.raises(ModelLoadError) as refused:
        load_model(model, dtype="fp32")
    assert f"not finite numbers (model.norm.weight in the shard '{shard}'); train it again" in str(refused.value)
