"""``routeshell generate`` and ``serve`` on a model directory whose config.json does not describe its
weights, or whose files are not what they must be: refused before a model is built, in one line
that says what is wrong, exit 2."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from engine.serve.loaded import ModelLoadError, load_model
from engine.serve.model_dir import checked_shapes
from tests.engine.serve.server_support import make_adapter
from tests.helpers import assert_one_line_error
from tests.test_serve_cli_edges import Pretrained, copy_model, routeshell
from tests.test_serve_cli_sharded import refusal, tiny_model, tiny_tensors

#: The tensors of each layer of :func:`tiny_tensors`, and their shapes.
LAYER_PARTS = (("input_layernorm.weight", (4,)), ("mlp.up_proj.weight", (8, 4)))


def set_config(model: Path, **changes: Any) -> None:
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, **changes}))


def change_weights(model: Path, change: Callable[[dict[str, Any]], None]) -> None:
    tensors = load_file(str(model / "model.safetensors"))
    change(tensors)
    save_file(tensors, str(model / "model.safetensors"), metadata={"format": "pt"})


def test_a_trained_model_holds_the_tensors_its_config_describes(pretrained: Pretrained) -> None:
    """The nano model of these tests: two layers and an output layer of its own (untied), as the
    cases below take it to be."""
    config = json.loads((pretrained[0] / "config.json").read_text())
    assert (config["num_hidden_layers"], config["tie_word_embeddings"]) == (2, False)
    assert "lm_head.weight" in load_file(str(pretrained[0] / "model.safetensors"))


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        # Built anyway, their missing layers answered at random, differently on every run:
        ({"num_hidden_layers": 3}, "config.json's num_hidden_layers is 3 but model.safetensors holds 2 layers"),
        # Built for ever, taking more and more memory:
        ({"num_hidden_layers": 100000}, "config.json's num_hidden_layers is 100,000, but model.safetensors holds"),
        ({"max_position_embeddings": 10**12}, "max_position_embeddings is 1,000,000,000,000, more than the"),
        ({"vocab_size": 10**9}, "vocab_size is 1,000,000,000, but no tensor of model.safetensors is wider than"),
        # Said as "integer modulo by zero":
        ({"num_attention_heads": 0}, "config.json's num_attention_heads is 0; it must be 1 or more"),
    ],
)
def test_a_config_that_does_not_describe_the_weights_is_refused_before_the_model_is_built(
    pretrained: Pretrained, tmp_path: Path, changes: dict[str, Any], needle: str
) -> None:
    model = copy_model(pretrained, tmp_path / "model")
    set_config(model, **changes)
    result = routeshell("generate", "--model", str(model), "hi", "--max-tokens", "2")
    assert_one_line_error(result, 2, str(model), needle)


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        # Said as "look at the above report", with no report shown:
        ({"hidden_size": 256}, "in model.safetensors but config.json's model needs [2"),
        # Cut off after its first line, before the reason:
        ({"num_attention_heads": 3}, "is not a multiple of the number of attention heads (3)"),
    ],
)
def test_a_config_whose_model_does_not_fit_the_weights_is_refused_before_it_is_built(
    pretrained: Pretrained, tmp_path: Path, changes: dict[str, Any], needle: str
) -> None:
    # (Found by building the model without memory, which needs torch: checked in this process, as
    # generate and serve check it, to spare a process start for each.)
    model = copy_model(pretrained, tmp_path / "model")
    set_config(model, **changes)
    with pytest.raises(ModelLoadError) as refused:
        load_model(model)
    message = str(refused.value)
    assert needle in message
    assert message.startswith(str(model))
    assert "\n" not in message


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        # A composite model builds its parts from these: 100,000 layers never finished building.
        (
            {"model_type": "gemma3", "text_config": {"num_hidden_layers": 100000}},
            "config.json's text_config.num_hidden_layers is 100,000, but model.safetensors holds",
        ),
        ({"vision_config": {"hidden_size": 10**9}}, "vision_config.hidden_size is 1,000,000,000, but no tensor of"),
        ({"model_type": "gpt2", "n_layer": 100000}, "config.json's n_layer is 100,000, but model.safetensors holds"),
        ({"\x1b[2J": [{"num_layers": 0}]}, "config.json's \\x1b[2J[0].num_layers is 0; it must be 1 or more"),
    ],
)
def test_the_sizes_of_a_configs_parts_are_checked_as_its_own_are(
    pretrained: Pretrained, tmp_path: Path, changes: dict[str, Any], needle: str
) -> None:
    # (checked_shapes is what generate and serve call first, before torch is imported.)
    model = copy_model(pretrained, tmp_path / "model")
    set_config(model, **changes)
    with pytest.raises(ModelLoadError) as refused:
        checked_shapes(model)
    assert needle in str(refused.value)
    assert "\x1b" not in str(refused.value)


def test_a_config_or_tokenizer_nested_past_the_json_parser_or_a_part_the_model_lacks_says_so(
    pretrained: Pretrained, tmp_path: Path
) -> None:
    model = copy_model(pretrained, tmp_path / "model")
    # A RecursionError's traceback, before:
    (model / "config.json").write_text("[" * 100000)
    with pytest.raises(ModelLoadError, match=r"/model: the model cannot be loaded: config.json nests too deeply$"):
        checked_shapes(model)
    shutil.copyfile(pretrained[0] / "config.json", model / "config.json")
    (model / "tokenizer.json").write_text('{"added_tokens": ' + "[" * 100000)
    with pytest.raises(ModelLoadError, match=r"the tokenizer cannot be loaded: tokenizer.json nests too deeply$"):
        load_model(model, weights=False)
    shutil.copyfile(pretrained[0] / "tokenizer.json", model / "tokenizer.json")
    # Said as "'dict' object has no attribute 'to_dict'", before:
    shutil.copyfile(pretrained[0] / "config.json", model / "config.json")
    set_config(model, text_config={"num_hidden_layers": 2})
    with pytest.raises(ModelLoadError, match=r"config.json's text_config is no part of a llama model; remove it$"):
        load_model(model)
    # A part of sizes the weights can hold is no reason to refuse a directory.
    set_config(model, text_config=None, vision_config={"hidden_size": 64, "num_hidden_layers": 2, "num_heads": [2]})
    assert checked_shapes(model)


DEEP = "[" * 900 + "]" * 900  # read by json's parser, but not by transformers' recursive copies


@pytest.mark.parametrize(
    ("name", "text", "said"),
    [
        # Python's "maximum recursion depth exceeded while decoding a JSON array", and from serve a
        # RecursionError, exit 1:
        ("generation_config.json", "[" * 100000, "generation_config.json nests too deeply"),
        # "maximum recursion depth exceeded while calling a Python object", as the model was loaded:
        ("generation_config.json", '{"eos_token_id": 2, "x": ' + DEEP + "}", "generation_config.json nests too deeply"),
        ("config.json", None, "config.json nests too deeply"),
        # "'list' object is not a mapping":
        ("generation_config.json", "[2]", "generation_config.json is not a JSON object"),
    ],
    ids=["generation past the parser", "generation past transformers", "config past transformers", "a list"],
)
def test_a_generation_config_nested_too_deeply_or_not_an_object_is_refused_before_torch_is_imported(
    pretrained: Pretrained, tmp_path: Path, name: str, text: str | None, said: str
) -> None:
    model = copy_model(pretrained, tmp_path / "model")
    if text is None:
        config = json.loads((model / "config.json").read_text())
        text = json.dumps(config)[:-1] + f', "x": {DEEP}}}'
    (model / name).write_text(text)
    with pytest.raises(ModelLoadError, match=rf"/model: the model cannot be loaded: {said}$"):
        checked_shapes(model)


def test_serve_refuses_a_generation_config_nested_past_the_json_parser_in_one_line(
    pretrained: Pretrained, tmp_path: Path
) -> None:
    # "the server failed: RecursionError: maximum recursion depth exceeded ...", exit 1, before.
    model = copy_model(pretrained, tmp_path / "model")
    (model / "generation_config.json").write_text("[" * 100000)
    result = routeshell("serve", "--model", str(model), "--port", "0")
    assert_one_line_error(result, 2, "/model: the model cannot be loaded: generation_config.json nests too deeply")


def test_a_generation_config_that_is_not_json_is_left_to_transformers(pretrained: Pretrained, tmp_path: Path) -> None:
    # transformers makes one of config.json then, as it does where there is none.
    model = copy_model(pretrained, tmp_path / "model")
    (model / "generation_config.json").write_text('{"eos_token_id": 2,')
    assert checked_shapes(model)


def test_serve_refuses_the_config_of_other_weights_as_generate_does(pretrained: Pretrained, tmp_path: Path) -> None:
    model = copy_model(pretrained, tmp_path / "model")
    set_config(model, num_hidden_layers=100000)
    result = routeshell("serve", "--model", str(model), "--port", "0", "--events")
    assert_one_line_error(result, 2, "num_hidden_layers is 100,000", "config.json does not describe these weights")
    (event,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert (event["type"], event["exit_code"]) == ("error", 2)
    set_config(model, num_hidden_layers=3)
    result = routeshell("serve", "--model", str(model), "--port", "0")
    assert_one_line_error(result, 2, "config.json's num_hidden_layers is 3 but model.safetensors holds 2 layers")


def test_weights_missing_a_tensor_or_holding_another_are_refused_and_a_tied_output_layer_is_not_missing(
    pretrained: Pretrained, tmp_path: Path
) -> None:
    # (Loaded in this process, as generate and serve load it, to spare a process start for each.)
    untied = copy_model(pretrained, tmp_path / "untied")
    change_weights(untied, lambda tensors: tensors.pop("lm_head.weight"))
    with pytest.raises(ModelLoadError, match=r"\(it lacks lm_head.weight\); config.json does not describe these"):
        load_model(untied)

    tied = copy_model(pretrained, tmp_path / "tied")
    change_weights(tied, lambda tensors: tensors.pop("lm_head.weight"))
    set_config(tied, tie_word_embeddings=True)  # the output layer is the input embedding: nothing to load
    loaded = load_model(tied, dtype="fp32")
    assert loaded.model is not None

    extra = copy_model(pretrained, tmp_path / "extra")
    hostile = "model.\x1b[2Jextra.weight"
    change_weights(extra, lambda tensors: tensors.update({hostile: tensors["model.norm.weight"].clone()}))
    with pytest.raises(ModelLoadError) as refused:
        load_model(extra)
    # The tensor's name is the file's to say: shown escaped, never cleaning the screen.
    assert "model.safetensors holds 1 tensor the model has no place for (model.\\x1b[2Jextra.weight)" in str(
        refused.value
    )
    assert "\x1b" not in str(refused.value)


def test_weights_that_are_not_finite_numbers_are_refused_by_generate_and_serve_in_one_line(
    pretrained: Pretrained, tmp_path: Path
) -> None:
    # Before, generate failed at the prompt with a traceback of int8 quantization (exit 1), or wrote
    # garbage in fp32, and serve started and answered every request with a 500.
    model = copy_model(pretrained, tmp_path / "model")
    change_weights(model, lambda tensors: tensors["model.norm.weight"].__setitem__(1, float("nan")))
    said = "/model: the model cannot be loaded: its weights hold values that are not finite numbers (model.norm.weight)"
    assert_one_line_error(routeshell("generate", "--model", str(model), "hi"), 2, said)
    assert_one_line_error(routeshell("serve", "--model", str(model), "--port", "0"), 2, said)


def test_an_adapter_whose_weights_are_not_finite_numbers_is_refused_in_one_line(
    pretrained: Pretrained, tmp_path: Path
) -> None:
    # PEFT loads such an adapter, and every reply of it would be garbage.
    adapter = make_adapter(pretrained[0], tmp_path / "lora", seed=5)
    weights = load_file(str(adapter / "adapter_model.safetensors"))
    name = min(name for name in weights if ".lora_A." in name)
    weights[name][0, 1] = float("nan")
    save_file(weights, str(adapter / "adapter_model.safetensors"), metadata={"format": "pt"})
    tensor = name.replace(".lora_A.", ".lora_A.x.")  # PEFT's name of it, in the adapter named x
    said = (
        f"--adapter x={adapter}: the adapter cannot be loaded: its weights hold values that are not finite numbers "
        f"({tensor}); train it again"
    )
    # In this process first, to spare a server that would start and never end where it is not refused.
    with pytest.raises(ModelLoadError) as refused:
        load_model(pretrained[0], dtype="fp32", adapters={"x": adapter})
    assert said in str(refused.value)
    result = routeshell("serve", "--model", str(pretrained[0]), "--adapter", f"x={adapter}", "--port", "0")
    assert_one_line_error(result, 2, said)


@pytest.mark.parametrize(
    ("damage", "needle"),
    [
        # Said as a bare 'added_tokens' (a KeyError's message):
        ("no added tokens", 'the tokenizer cannot be loaded: tokenizer.json has no "added_tokens" list'),
        ("an added token without an id", 'tokenizer.json\'s added token 0 is not an object with an "id" number'),
        ("a model of the wrong kind", "tokenizer.json is not a tokenizer: "),
    ],
)
def test_a_malformed_tokenizer_says_what_is_wrong_with_it(
    pretrained: Pretrained, tmp_path: Path, damage: str, needle: str
) -> None:
    model = copy_model(pretrained, tmp_path / "model")
    tokenizer = json.loads((model / "tokenizer.json").read_text())
    if damage == "no added tokens":
        del tokenizer["added_tokens"]
    elif damage == "an added token without an id":
        del tokenizer["added_tokens"][0]["id"]
    else:
        tokenizer["model"]["vocab"] = 5
    (model / "tokenizer.json").write_text(json.dumps(tokenizer))
    assert_one_line_error(routeshell("generate", "--model", str(model), "hi"), 2, str(model), needle)
    if damage == "no added tokens":
        assert_one_line_error(routeshell("serve", "--model", str(model), "--port", "0"), 2, needle)


def test_a_file_or_an_empty_path_given_as_the_model_is_named_as_such(pretrained: Pretrained, tmp_path: Path) -> None:
    weights = str(pretrained[0] / "model.safetensors")
    # Was called "no such model directory":
    assert_one_line_error(routeshell("generate", "--model", weights, "hi"), 2, f"{weights}: not a directory")
    assert_one_line_error(routeshell("serve", "--model", weights, "--port", "0"), 2, f"{weights}: not a directory")
    # Was shown as ".", the current directory:
    for command in (["generate", "hi"], ["serve", "--port", "0"]):
        result = routeshell(*command, "--model", "")
        assert_one_line_error(result, 2, "argument --model: the path is empty")
    schema = routeshell("generate", "--model", str(pretrained[0]), "hi", "--json-schema", "")
    assert_one_line_error(schema, 2, "argument --json-schema: the path is empty")


@pytest.mark.parametrize(("name", "size"), [("tokenizer.json", 80 << 20), ("chat_template.jinja", 2 << 20)])
def test_a_file_the_libraries_read_whole_that_no_model_holds_is_refused_unread(
    pretrained: Pretrained, tmp_path: Path, name: str, size: int
) -> None:
    # A 300 MiB tokenizer.json (sparse: no disk) was read whole: 1.2 GB of memory, then an unclear error;
    # one of 80 MiB, as a tokenizer, more than 1.5 GiB in each of the server's two processes.
    model = copy_model(pretrained, tmp_path / "model")
    os.truncate(model / name, size)
    result = routeshell("generate", "--model", str(model), "hi")
    assert_one_line_error(result, 2, str(model), f"{name} holds {size:,} bytes, more than a model's ever does")


def test_pickled_weights_are_refused_unread_with_how_to_convert_them(
    pretrained: Pretrained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pytorch_model.bin, as save_pretrained(safe_serialization=False) wrote it, is a pickle: reading
    it took torch.load, in the server's HTTP process too, which otherwise never imports torch."""
    import torch

    model = copy_model(pretrained, tmp_path / "model")
    torch.save(load_file(str(model / "model.safetensors")), model / "pytorch_model.bin")
    (model / "model.safetensors").unlink()
    refusal = "its weights are pytorch_model.bin, a pickle, which can run code as it is read and is never loaded"
    assert_one_line_error(routeshell("serve", "--model", str(model), "--port", "0"), 2, str(model), refusal)
    damaged = copy_model(pretrained, tmp_path / "damaged")
    (damaged / "model.safetensors").rename(damaged / "pytorch_model.bin")  # no pickle at all: never read to see
    with pytest.raises(ModelLoadError, match=refusal):
        checked_shapes(damaged)

    # The conversion the line gives, run as given, makes a directory that is served.
    with pytest.raises(ModelLoadError) as refused:
        checked_shapes(model)
    command = str(refused.value).split("convert it to model.safetensors: ")[1]
    program, directory = command.removeprefix('python -c "').rsplit('" ', 1)
    assert directory == "DIR"
    monkeypatch.setattr("sys.argv", ["-c", str(model)])
    exec(program, {})
    assert checked_shapes(model) == checked_shapes(pretrained[0])


def test_a_pickled_adapter_is_refused_before_peft_reads_it(pretrained: Pretrained, tmp_path: Path) -> None:
    adapter = tmp_path / "lora"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "adapter_model.bin").write_bytes(b"\x80\x04not read")
    with pytest.raises(ModelLoadError, match=r"^--adapter x=.*/lora: its weights are adapter_model.bin, a pickle"):
        load_model(pretrained[0], adapters={"x": adapter}, weights=False)


def no_data_tensor(model: Path, name: str, shape: list[int]) -> None:
    """Write ``model/name.safetensors`` holding one F32 tensor ``name`` of ``shape``, which has no
    elements: its header says a shape save_file would want memory for."""
    header = json.dumps({name: {"dtype": "F32", "shape": shape, "data_offsets": [0, 0]}}).encode()
    header += b" " * (-len(header) % 8)
    (model / f"{name}.safetensors").write_bytes(len(header).to_bytes(8, "little") + header)


@pytest.mark.parametrize("shape", [(0,), (1,)], ids=["no elements", "one element"])
def test_layers_of_tiny_tensors_do_not_let_config_build_that_many(tmp_path: Path, shape: tuple[int, ...]) -> None:
    # 60,000 layers of one such tensor each passed "no more layers than tensors", and building them
    # on the meta device took 100 s and 2.9 GB before the model was refused.
    tensors = tiny_tensors() | {f"model.layers.{layer}.junk": np.zeros(shape, np.float32) for layer in range(2, 500)}
    model = tiny_model(tmp_path / "model", {"model.safetensors": tensors}, num_hidden_layers=500)
    said = (
        "config.json's num_hidden_layers is 500, but model.safetensors holds 6 tensors"
        if shape == (0,)
        else "model.safetensors holds model.layers.0.input_layernorm.weight but no "
        "model.layers.2.input_layernorm.weight; every layer of a model holds the tensors of its first"
    )
    assert said in refusal(model)


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (
            {"model.layers.1.mlp.up_proj.weight": np.ones((8, 3), np.float32)},
            "model.layers.1.mlp.up_proj.weight is [8, 3] in model.safetensors but model.layers.0.mlp.up_proj.weight"
            " is [8, 4]",
        ),
        (
            {"model.layers.1.extra.weight": np.ones(4, np.float32)},
            "holds model.layers.1.extra.weight but no model.layers.0.extra.weight",
        ),
        (
            {f"model.layers.3.{part}": np.ones(shape, np.float32) for part, shape in LAYER_PARTS},
            "holds model.layers.3. but no model.layers.2.",
        ),
    ],
    ids=["a shape", "a tensor of its own", "a gap"],
)
def test_a_layer_unlike_the_first_is_refused_by_name(tmp_path: Path, change: dict[str, Any], said: str) -> None:
    model = tiny_model(tmp_path / "model", {"model.safetensors": tiny_tensors() | change})
    message = refusal(model)
    assert said in message
    assert message.endswith("every layer of a model holds the tensors of its first")


def test_a_tensor_of_no_elements_counts_for_no_size(tmp_path: Path) -> None:
    # A [0, 10**15] tensor let config.json's sizes reach 10**15, with no data to hold it.
    shards = {"model-00001-of-00002.safetensors": tiny_tensors()}
    weight_map = dict.fromkeys(tiny_tensors(), next(iter(shards))) | {"junk": "junk.safetensors"}
    model = tiny_model(tmp_path / "model", shards, weight_map, hidden_size=10**15)
    no_data_tensor(model, "junk", [0, 10**15])
    assert "config.json's hidden_size is 1,000,000,000,000,000, but no tensor of" in refusal(model)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int64, np.bool_])
def test_weights_of_a_type_that_is_not_floating_are_refused_unless_quantized(tmp_path: Path, dtype: type) -> None:
    # Loaded (converted to floats) and answering differently, before.
    tensors = tiny_tensors() | {"model.norm.weight": np.ones(4, dtype)}
    model = tiny_model(tmp_path / "model", {"model.safetensors": tensors})
    assert "model.norm.weight is " in refusal(model)
    assert "in model.safetensors, not a floating type (F16, BF16, F32, F64)" in refusal(model)
    # A quantized checkpoint's integers are the library's to read.
    quantized = tiny_model(
        tmp_path / "quantized", {"model.safetensors": tensors}, quantization_config={"quant_method": "bitsandbytes"}
    )
    assert checked_shapes(quantized)
    halves = {name: tensor.astype(np.float16) for name, tensor in tiny_tensors().items()}
    assert checked_shapes(tiny_model(tmp_path / "halves", {"model.safetensors": halves}))


def test_a_config_that_begins_with_a_byte_order_mark_is_refused_before_torch_is_imported(tmp_path: Path) -> None:
    # Read as JSON here (from bytes) and refused by transformers, once torch was loaded, before.
    model = tiny_model(tmp_path / "model", {"model.safetensors": tiny_tensors()})
    (model / "config.json").write_bytes(b"\xef\xbb\xbf" + (model / "config.json").read_bytes())
    assert "the model cannot be loaded: config.json: Unexpected UTF-8 BOM" in refusal(model)
