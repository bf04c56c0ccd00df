"""The model presets: their sizes, the Llama configs they build, and every bad --config FILE."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from engine.errors import ExitCode
from engine.tinyllm.errors import TrainInputError
from engine.tinyllm.presets import (
    DEFAULT_PRESET,
    PRESETS,
    ModelPreset,
    preset_from_dict,
    preset_to_dict,
    resolve_preset,
)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_parameter_count_matches_the_built_model(name: str) -> None:
    import torch
    from transformers import LlamaForCausalLM

    preset = PRESETS[name]
    # The meta device builds the real module tree without allocating the weights.
    with torch.device("meta"):
        model = LlamaForCausalLM(preset.llama_config())
    assert model.num_parameters() == preset.parameter_count()


def test_preset_sizes_are_the_designed_ones() -> None:
    assert 0.7e6 <= PRESETS["nano"].parameter_count() <= 1.5e6
    assert 6e6 <= PRESETS["tiny"].parameter_count() <= 10e6
    small = PRESETS["small"]
    assert (small.hidden_size, small.num_layers, small.num_heads, small.intermediate_size) == (512, 8, 8, 2048)
    assert (small.vocab_size, small.context_length) == (16000, 512)
    assert 1_000 <= PRESETS["nano"].vocab_size <= 2_048
    assert PRESETS["tiny"].vocab_size == 8000
    assert DEFAULT_PRESET == "tiny"


def test_llama_config_is_the_original_architecture() -> None:
    config = PRESETS["small"].llama_config()
    assert config.model_type == "llama"
    assert (config.pad_token_id, config.bos_token_id, config.eos_token_id) == (0, 1, 2)
    assert config.tie_word_embeddings is False
    assert config.hidden_act == "silu"
    assert config._attn_implementation == "sdpa"
    assert config.max_position_embeddings == 512
    assert config.rope_parameters is not None
    assert config.rope_parameters["rope_theta"] == 10000.0


def test_resolve_preset_by_name_and_default() -> None:
    assert resolve_preset(None, None) == PRESETS[DEFAULT_PRESET]
    assert resolve_preset("nano", None) is PRESETS["nano"]


def test_unknown_preset_is_one_clear_line() -> None:
    with pytest.raises(TrainInputError) as err:
        resolve_preset("huge", None)
    assert str(err.value) == "unknown preset 'huge' (choose nano, tiny or small, or --config FILE)"
    assert err.value.exit_code == ExitCode.USAGE


def test_config_file_toml_overrides_a_base(tmp_path: Path) -> None:
    config = tmp_path / "wide.toml"
    config.write_text('base = "nano"\nhidden_size = 256\nrope_theta = 500000\n', encoding="utf-8")
    preset = resolve_preset(None, config)
    assert preset.name == "wide"
    assert preset.hidden_size == 256
    assert preset.rope_theta == 500000.0
    assert preset.num_layers == PRESETS["nano"].num_layers


def test_config_file_json_complete_needs_no_base(tmp_path: Path) -> None:
    fields = preset_to_dict(PRESETS["tiny"]) | {"name": "mine", "num_kv_heads": 2}
    config = tmp_path / "mine.json"
    config.write_text(json.dumps(fields), encoding="utf-8")
    preset = resolve_preset(None, config)
    assert preset == ModelPreset(**fields)
    # Grouped-query attention still counts right.
    assert preset.parameter_count() < PRESETS["tiny"].parameter_count()


def test_config_file_uses_the_named_preset_as_base(tmp_path: Path) -> None:
    config = tmp_path / "deeper.toml"
    config.write_text("num_layers = 3\n", encoding="utf-8")
    preset = resolve_preset("nano", config)
    assert preset.num_layers == 3
    assert preset.hidden_size == PRESETS["nano"].hidden_size


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('base = "nano"\nwidth = 3\n', "unknown key 'width'"),
        ('base = "nano"\nhidden_size = "big"\n', "'hidden_size' must be a whole number, not 'big'"),
        ('base = "nano"\nnum_layers = 2.5\n', "'num_layers' must be a whole number"),
        ('base = "nano"\nnum_layers = true\n', "'num_layers' must be a whole number"),
        ('base = "nano"\nnum_layers = 0\n', "'num_layers' must be positive, not 0"),
        ('base = "nano"\nrms_norm_eps = -1.0\n', "'rms_norm_eps' must be positive"),
        ('base = "nano"\nrope_theta = "x"\n', "'rope_theta' must be a number"),
        ('base = "nano"\nhidden_size = 130\n', "hidden_size 130 is not divisible by num_heads 4"),
        ('base = "nano"\nnum_kv_heads = 3\n', "num_heads 4 is not divisible by num_kv_heads 3"),
        ('base = "nano"\nvocab_size = 100\n', "vocab_size 100 is too small"),
        ('base = "huge"\n', "unknown preset 'huge'"),
        ("base = 3\n", "'base' must be a preset name"),
        ("hidden_size = 64\n", "missing 'num_layers'"),
        ('base = "nano"\nname = ""\n', "'name' must be a non-empty string"),
        ("hidden_size = = 3\n", "not valid TOML"),
        pytest.param(
            "hidden_size = 1" + "0" * 4300 + "\n", "not valid TOML: a number of more than 4300 digits", id="huge-number"
        ),
        pytest.param("hidden_size = " + "[" * 100_000 + "\n", "not valid TOML: nested too deeply", id="deep"),
    ],
)
def test_bad_config_file_is_one_clear_line(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text, encoding="utf-8")
    with pytest.raises(TrainInputError) as err:
        resolve_preset(None, config)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such config file"),
        (b"[1, 2]", "expected an object"),
        (b"{", "not valid JSON"),
        pytest.param(
            b'{"hidden_size": 1' + b"0" * 4300 + b"}",
            "not valid JSON: a number of more than 4300 digits",
            id="huge-number",
        ),
        pytest.param(b'{"lr": 1e400}', "not valid JSON: a number too large to hold (1e400)", id="huge-float"),
        pytest.param(b"[" * 100_000, "not valid JSON: nested too deeply", id="deep"),
        (b'{"base": "nano", "hidden_size": "\xff"}', "not UTF-8 text"),
    ],
)
def test_bad_json_config_file(tmp_path: Path, content: bytes | None, message: str) -> None:
    config = tmp_path / "bad.json"
    if content is not None:
        config.write_bytes(content)
    with pytest.raises(TrainInputError) as err:
        resolve_preset(None, config)
    assert message in str(err.value)
    assert str(config) in str(err.value)


def test_config_path_that_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(TrainInputError, match="is a directory"):
        resolve_preset(None, tmp_path)


def test_a_config_that_is_endless_a_fifo_or_huge_is_one_line_not_memory(tmp_path: Path) -> None:
    import os

    endless = tmp_path / "endless.toml"
    endless.symlink_to("/dev/zero")
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)  # read without waiting for a writer
    huge = tmp_path / "huge.toml"
    with huge.open("wb") as handle:
        handle.truncate(20 << 30)  # sparse
    for path, reason in ((endless, "not a regular file"), (fifo, "not a regular file"), (huge, "longer than 1 MiB")):
        with pytest.raises(TrainInputError, match=f"{path}: cannot read: {reason}"):
            resolve_preset(None, path)


def test_preset_dict_round_trip() -> None:
    for preset in PRESETS.values():
        stored = json.loads(json.dumps(preset_to_dict(preset)))
        assert preset_from_dict(stored) == preset


def test_corrupt_stored_preset() -> None:
    with pytest.raises(TrainInputError, match=r"checkpoint/preset\.json: expected an object"):
        preset_from_dict([1], where="checkpoint/preset.json")
    broken = preset_to_dict(PRESETS["nano"])
    del broken["vocab_size"]
    with pytest.raises(TrainInputError, match="missing 'vocab_size'"):
        preset_from_dict(broken)


def test_a_stored_preset_keeps_the_vocabulary_a_small_corpus_gave() -> None:
    # A small corpus gives fewer pieces than the preset asked for (452 of nano's 2,000); the model
    # trained with them is complete, and SFT must start from it.
    stored = {**preset_to_dict(PRESETS["nano"]), "vocab_size": 452}
    assert preset_from_dict(stored).vocab_size == 452


def test_a_pretrained_model_with_a_small_vocabulary_is_a_base_for_sft(tmp_path: Path) -> None:
    from transformers import LlamaForCausalLM

    from engine.tinyllm.run_dir import write_marker
    from engine.tinyllm.train import _load_base

    preset = replace(PRESETS["nano"], vocab_size=452)
    LlamaForCausalLM(preset.llama_config()).save_pretrained(str(tmp_path))
    write_marker(tmp_path, {"stage": "pretrain", "status": "done", "preset": preset_to_dict(preset)})
    model, found = _load_base(tmp_path)
    assert found.vocab_size == model.config.vocab_size == 452
