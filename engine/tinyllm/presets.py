"""The model presets (nano, tiny, small) and ``--config FILE``, as one typed, frozen shape.

A preset says everything needed to build a stock ``LlamaForCausalLM``: widths, depth, heads,
vocabulary and context. It is stored beside the weights (``preset_to_dict``) so that a checkpoint
says what it is without guessing from tensor shapes.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.tinyllm.errors import TrainInputError

if TYPE_CHECKING:
    from transformers import LlamaConfig

# The tokenizer keeps 256 byte tokens (byte fallback), 8 special tokens and the 95 printable
# ASCII characters and tab, so a vocabulary smaller than this has hardly any room left for merges.
# It bounds the vocabulary one asks for; a small corpus can still give fewer pieces (fewer merges),
# and a model trained with those is complete.
MIN_VOCAB_SIZE = 512

PAD_TOKEN_ID = 0
BOS_TOKEN_ID = 1
EOS_TOKEN_ID = 2
UNK_TOKEN_ID = 3


@dataclass(frozen=True)
class ModelPreset:
    """The shape of one Llama model: what ``llama_config`` turns into a transformers config."""

    name: str
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    vocab_size: int
    context_length: int
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.hidden_size // self.num_heads

    def llama_config(self) -> LlamaConfig:
        """Return the ``LlamaConfig`` of this preset: RMSNorm, rotary positions, SiLU MLP,
        untied LM head, SDPA attention and the token ids pad 0, bos 1, eos 2."""
        # Lazy: transformers takes seconds to import and `routeshell --help` must not pay for it.
        from transformers import LlamaConfig

        config = LlamaConfig(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_layers,
            num_attention_heads=self.num_heads,
            num_key_value_heads=self.num_kv_heads,
            hidden_act="silu",
            max_position_embeddings=self.context_length,
            rms_norm_eps=self.rms_norm_eps,
            rope_parameters={"rope_type": "default", "rope_theta": self.rope_theta},
            pad_token_id=PAD_TOKEN_ID,
            bos_token_id=BOS_TOKEN_ID,
            eos_token_id=EOS_TOKEN_ID,
            tie_word_embeddings=False,
            attention_bias=False,
            mlp_bias=False,
        )
        config._attn_implementation = "sdpa"
        return config

    def parameter_count(self) -> int:
        """Return the number of parameters of the model this preset builds, without building it."""
        kv_width = self.num_kv_heads * self.head_dim
        attention = 2 * self.hidden_size * self.hidden_size + 2 * self.hidden_size * kv_width
        mlp = 3 * self.hidden_size * self.intermediate_size
        norms = 2 * self.hidden_size
        layer = attention + mlp + norms
        embeddings = self.vocab_size * self.hidden_size
        lm_head = self.vocab_size * self.hidden_size  # untied
        return embeddings + self.num_layers * layer + self.hidden_size + lm_head


PRESETS: dict[str, ModelPreset] = {
    # About 0.9M parameters: for tests, trains in seconds.
    "nano": ModelPreset(
        name="nano",
        hidden_size=128,
        num_layers=2,
        num_heads=4,
        num_kv_heads=4,
        intermediate_size=384,
        vocab_size=2000,
        context_length=256,
    ),
    # About 8M parameters: the default, trains on a laptop CPU in minutes.
    "tiny": ModelPreset(
        name="tiny",
        hidden_size=256,
        num_layers=6,
        num_heads=4,
        num_kv_heads=4,
        intermediate_size=512,
        vocab_size=8000,
        context_length=512,
    ),
    # The original design: dim 512, 8 layers, 8 heads, FFN 2048, vocab 16,000, context 512. The
    # untied 16k embeddings bring it to about 50M parameters.
    "small": ModelPreset(
        name="small",
        hidden_size=512,
        num_layers=8,
        num_heads=8,
        num_kv_heads=8,
        intermediate_size=2048,
        vocab_size=16000,
        context_length=512,
    ),
}

DEFAULT_PRESET = "tiny"

_INT_FIELDS = (
    "hidden_size",
    "num_layers",
    "num_heads",
    "num_kv_heads",
    "intermediate_size",
    "vocab_size",
    "context_length",
)
_FLOAT_FIELDS = ("rope_theta", "rms_norm_eps")
_FIELD_NAMES = tuple(f.name for f in fields(ModelPreset))


def _preset_choices() -> str:
    names = list(PRESETS)
    return ", ".join(names[:-1]) + " or " + names[-1]


def preset_named(name: str) -> ModelPreset:
    """Return the built-in preset ``name``; raise ``TrainInputError`` for an unknown one."""
    preset = PRESETS.get(name)
    if preset is None:
        raise TrainInputError(f"unknown preset {name!r} (choose {_preset_choices()}, or --config FILE)")
    return preset


def resolve_preset(name: str | None, config_file: Path | None) -> ModelPreset:
    """Return the preset to train: the built-in ``name`` (default ``DEFAULT_PRESET``), or the one
    described by ``config_file``.

    The file is JSON (``.json``) or TOML (anything else) with ``ModelPreset``'s field names. With
    ``"base": "<preset>"`` (or, failing that, a ``name`` argument) it only overrides the fields it
    gives; without a base it must give every size. Raises ``TrainInputError`` with one line for a
    missing or unreadable file, unknown keys, wrong types, non-positive sizes and heads that do
    not divide."""
    if config_file is None:
        return preset_named(name or DEFAULT_PRESET)
    data = _read_config_file(config_file)
    where = str(config_file)
    base_name = data.pop("base", None)
    if base_name is not None and not isinstance(base_name, str):
        raise TrainInputError(f"{where}: 'base' must be a preset name ({_preset_choices()})")
    base_name = base_name or name
    values: dict[str, Any] = {}
    if base_name is not None:
        values = asdict(preset_named(base_name))
    values["name"] = config_file.stem
    values.update(data)
    return _preset_from_values(values, where)


def preset_to_dict(preset: ModelPreset) -> dict[str, Any]:
    """Return ``preset`` as a JSON-ready dict (for the checkpoint beside the weights)."""
    return asdict(preset)


def preset_from_dict(data: object, *, where: str = "preset") -> ModelPreset:
    """Return the preset stored by ``preset_to_dict``; raise ``TrainInputError`` naming ``where``
    when ``data`` is not a complete, valid preset.

    A stored preset is the shape of a model that was trained: its ``vocab_size`` is what the
    tokenizer made, which a small corpus leaves below the :data:`MIN_VOCAB_SIZE` one may ask for
    (the byte, special and ASCII pieces are all there; fewer merges were learned). It is taken as
    it is, so that SFT starts from any pretrained model."""
    if not isinstance(data, dict):
        raise TrainInputError(f"{where}: expected an object with the preset's fields")
    return _preset_from_values(dict(data), where, min_vocab=1)


#: The most bytes a --config file may hold (a preset is a few hundred).
MAX_CONFIG_BYTES = 1 << 20


def _read_config_file(path: Path) -> dict[str, Any]:
    from engine.textfile import read_capped

    try:
        raw = read_capped(path, MAX_CONFIG_BYTES)
    except FileNotFoundError:
        raise TrainInputError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise TrainInputError(f"{path}: is a directory, not a config file") from None
    except OSError as exc:
        raise TrainInputError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise TrainInputError(f"{path}: not UTF-8 text") from None
    from engine.jsonl import NumberTooLong, decode_error_reason, parse_json

    kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
    try:
        data: object = parse_json(text) if kind == "JSON" else tomllib.loads(text)
    except json.JSONDecodeError as exc:
        raise TrainInputError(f"{path}: not valid JSON: {decode_error_reason(exc)} at line {exc.lineno}") from None
    except tomllib.TOMLDecodeError as exc:
        raise TrainInputError(f"{path}: not valid TOML: {exc}") from None
    except NumberTooLong as exc:
        raise TrainInputError(f"{path}: not valid {kind}: {exc}") from None
    except ValueError:
        # What is left: an integer longer than Python reads (tomllib's own error is a bare ValueError).
        raise TrainInputError(f"{path}: not valid {kind}: {NumberTooLong()}") from None
    except RecursionError:
        raise TrainInputError(f"{path}: not valid {kind}: nested too deeply") from None
    if not isinstance(data, dict):
        raise TrainInputError(f"{path}: expected an object of preset fields")
    return data


def _preset_from_values(values: dict[str, Any], where: str, *, min_vocab: int = MIN_VOCAB_SIZE) -> ModelPreset:
    unknown = sorted(str(key) for key in values if key not in _FIELD_NAMES)
    if unknown:
        raise TrainInputError(
            f"{where}: unknown key {unknown[0]!r} (the fields are {', '.join(_FIELD_NAMES)}, and 'base')"
        )
    missing = [key for key in _INT_FIELDS if key not in values]
    if missing:
        raise TrainInputError(f"{where}: missing {missing[0]!r}; give it, or name a 'base' preset to start from")
    name = values.get("name", "custom")
    if not isinstance(name, str) or not name.strip():
        raise TrainInputError(f"{where}: 'name' must be a non-empty string")
    for key in _INT_FIELDS:
        value = values[key]
        # bool is an int in Python; `true` for a width is a mistake, not 1.
        if isinstance(value, bool) or not isinstance(value, int):
            raise TrainInputError(f"{where}: {key!r} must be a whole number, not {value!r}")
        if value <= 0:
            raise TrainInputError(f"{where}: {key!r} must be positive, not {value}")
    for key in _FLOAT_FIELDS:
        value = values.get(key, getattr(ModelPreset, key))
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TrainInputError(f"{where}: {key!r} must be a number, not {value!r}")
        if value <= 0:
            raise TrainInputError(f"{where}: {key!r} must be positive, not {value}")
        values[key] = float(value)
    if values["hidden_size"] % values["num_heads"]:
        raise TrainInputError(
            f"{where}: hidden_size {values['hidden_size']} is not divisible by num_heads {values['num_heads']}"
        )
    if values["num_heads"] % values["num_kv_heads"]:
        raise TrainInputError(
            f"{where}: num_heads {values['num_heads']} is not divisible by num_kv_heads {values['num_kv_heads']}"
        )
    if (values["hidden_size"] // values["num_heads"]) % 2:
        raise TrainInputError(
            f"{where}: hidden_size / num_heads must be even for rotary positions, not "
            f"{values['hidden_size'] // values['num_heads']}"
        )
    if values["vocab_size"] < min_vocab:
        raise TrainInputError(
            f"{where}: vocab_size {values['vocab_size']} is too small; the tokenizer needs at least {min_vocab}"
        )
    values["name"] = name
    return ModelPreset(**values)
