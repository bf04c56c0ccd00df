"""What a LoRA adapter directory and its base must hold before PEFT and transformers read them.

The libraries open files by name and read them whole: a FIFO there blocks forever, and a NaN in the
adapter (its ``lora_alpha`` or a weight left by a training that diverged) is merged into every
weight it touches without a word. Each is refused here in one line, naming the file, key or tensor.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.errors import UsageError
from engine.names import display_line, display_name
from engine.serve.model_dir import ABSENT, LIBRARY_READ_FILES, WEIGHTS, named, probe_file
from engine.textfile import read_capped

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
PICKLED_ADAPTER = "adapter_model.bin"
#: The most bytes ``adapter_config.json`` may hold (a few hundred; a link to /dev/zero is refused).
MAX_ADAPTER_CONFIG_BYTES = 1 << 20
#: The files of an adapter directory PEFT may open (the record beside it is read capped elsewhere).
ADAPTER_FILES = (ADAPTER_CONFIG, ADAPTER_WEIGHTS, PICKLED_ADAPTER)


def check_adapter_dir(adapter: Path) -> None:
    """Raise :class:`UsageError` (one line) unless ``adapter`` holds a PEFT adapter that can be read:
    ``adapter_config.json`` and ``adapter_model.safetensors`` as regular files, every number of the
    config finite. A pickle (``adapter_model.bin``) is refused: reading one can run code."""
    shown = display_name(str(adapter))
    for name in ADAPTER_FILES:
        problem = probe_file(adapter / name)
        if problem not in (None, ABSENT):
            raise UsageError(f"--adapter {shown}: {name} {problem}")
    if probe_file(adapter / ADAPTER_CONFIG) is not None:
        raise UsageError(f"--adapter {shown} is not a PEFT adapter (no {ADAPTER_CONFIG})")
    if probe_file(adapter / ADAPTER_WEIGHTS) is not None:
        if probe_file(adapter / PICKLED_ADAPTER) is None:
            raise UsageError(
                f"--adapter {shown}: its weights are {PICKLED_ADAPTER}, a pickle, which can run code as it is "
                f"read and is never loaded; where you trust the file, save the adapter again with PEFT's "
                f"save_pretrained, which writes {ADAPTER_WEIGHTS}"
            )
        raise UsageError(f"--adapter {shown} has no weights ({ADAPTER_WEIGHTS} is not there)")
    try:
        config = json.loads(read_capped(adapter / ADAPTER_CONFIG, MAX_ADAPTER_CONFIG_BYTES).decode("utf-8"))
    except (OSError, ValueError) as err:
        why = err.strerror if isinstance(err, OSError) and err.strerror else "not JSON"
        raise UsageError(f"--adapter {shown}: {ADAPTER_CONFIG} cannot be read: {why}") from None
    for key, value in _numbers(config):
        if not math.isfinite(value):
            raise UsageError(f"--adapter {shown}: {ADAPTER_CONFIG} gives {named(key)} = {value}, not a finite "
                             "number; train the adapter again or correct the file")  # fmt: skip


def check_adapter_weights(adapter: Path) -> None:
    """Raise :class:`UsageError` naming the first tensor of the adapter's weights that holds a NaN or
    an infinity: merged, it would make every weight it touches one too."""
    from safetensors import safe_open

    from engine.serve.finite_weights import first_not_finite

    shown = display_name(str(adapter))
    try:
        with safe_open(str(adapter / ADAPTER_WEIGHTS), framework="pt") as weights:
            # (safe_open's handle has keys() but cannot be iterated itself)
            name = first_not_finite((key, weights.get_tensor(key)) for key in weights.keys())  # noqa: SIM118
    except Exception as err:  # safetensors raises its own error for a damaged header
        raise UsageError(
            f"--adapter {shown}: {ADAPTER_WEIGHTS} cannot be read: {display_line(str(err))[:200]}"
        ) from None
    if name is not None:
        raise UsageError(f"--adapter {shown}: {ADAPTER_WEIGHTS} holds values that are not finite numbers in "
                         f"{named(name)}; train the adapter again (a lower learning rate)")  # fmt: skip


def check_base_files(base: Path) -> None:
    """Raise :class:`UsageError` when a file of the model directory ``base`` that the libraries read
    whole is there but is not a regular file (a FIFO would block the load forever)."""
    for name in (*LIBRARY_READ_FILES, WEIGHTS, "tokenizer.model"):
        problem = probe_file(base / name)
        if problem not in (None, ABSENT):
            raise UsageError(f"--base {display_name(str(base))}: {name} {problem}")


def _numbers(value: Any, key: str = "") -> Iterator[tuple[str, float]]:
    """Each float in the parsed JSON ``value``, with its dotted key (``lora_alpha``, ``alpha_pattern.q``)."""
    if isinstance(value, float):
        yield key, value
    elif isinstance(value, dict):
        for name, item in value.items():
            yield from _numbers(item, f"{key}.{name}" if key else str(name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _numbers(item, f"{key}[{index}]")
