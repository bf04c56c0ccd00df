"""What a LoRA adapter directory and its base must hold before PEFT and transformers read them.

The libraries open files by name and read them whole: a FIFO there blocks forever. Each such file
is refused here in one line, naming it.
"""

from __future__ import annotations

from pathlib import Path

from engine.errors import UsageError
from engine.names import display_name
from engine.serve.model_dir import ABSENT, LIBRARY_READ_FILES, WEIGHTS, probe_file

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
PICKLED_ADAPTER = "adapter_model.bin"
#: The files of an adapter directory PEFT may open (the record beside it is read capped elsewhere).
ADAPTER_FILES = (ADAPTER_CONFIG, ADAPTER_WEIGHTS, PICKLED_ADAPTER)


def check_adapter_dir(adapter: Path) -> None:
    """Raise :class:`UsageError` (one line) unless ``adapter`` holds a PEFT adapter that can be read:
    ``adapter_config.json`` and ``adapter_model.safetensors`` as regular files. A pickle
    (``adapter_model.bin``) is refused: reading one can run code."""
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


def check_base_files(base: Path) -> None:
    """Raise :class:`UsageError` when a file of the model directory ``base`` that the libraries read
    whole is there but is not a regular file (a FIFO would block the load forever)."""
    for name in (*LIBRARY_READ_FILES, WEIGHTS, "tokenizer.model"):
        problem = probe_file(base / name)
        if problem not in (None, ABSENT):
            raise UsageError(f"--base {display_name(str(base))}: {name} {problem}")
