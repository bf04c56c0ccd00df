"""Whether this process loads bitsandbytes: only a model quantized by it (QLoRA's 4-bit base) needs it.

peft, the first time it applies an adapter, and transformers, when it loads a quantized model,
look for bitsandbytes with ``importlib.util.find_spec`` and remember the answer for the life of the
process. When it is installed, peft imports it, and bitsandbytes imports torch's compiler: about
1.5 s of CPU in every process that trains or serves an adapter. A command that knows, before it
loads anything, that none of its models is quantized by bitsandbytes keeps it out here: ``None`` in
``sys.modules`` makes ``find_spec`` answer that there is none, and both libraries skip their parts
for it.

The libraries remember that answer, so it cannot be taken back: the first call settles it for the
process, and a 4-bit load in a process that kept bitsandbytes out is refused in one line. The
commands read what each of their models needs (their options, the adapter's metadata, the model's
``config.json``) before they settle it, so none of theirs is refused. A process that settles nothing
(the app, an agent session) loads bitsandbytes whenever a library asks for it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from engine.errors import RouteshellError
from engine.names import display_name
from engine.textfile import read_capped

#: The most bytes a model's ``config.json`` is read for (a few KiB in practice).
MAX_CONFIG_BYTES = 1 << 20

#: The process's answer, once :func:`settle_bitsandbytes` has given it.
_needed: bool | None = None


class BitsandbytesKeptOut(RouteshellError):
    """A model quantized by bitsandbytes asked for in a process that kept bitsandbytes out."""


def settle_bitsandbytes(needed: bool, *, model: str = "") -> None:
    """Say whether this process loads a model quantized by bitsandbytes; call it before peft or
    transformers load one. The first call settles it: not ``needed``, bitsandbytes is kept out for
    the life of the process (unless something loaded it already); a later ``needed`` raises
    :class:`BitsandbytesKeptOut`, naming ``model``, when it was kept out."""
    global _needed
    if _needed is None:
        _needed = needed
        if not needed:
            sys.modules.setdefault("bitsandbytes", None)  # type: ignore[arg-type]
    elif needed and kept_out():
        what = f"the model in {display_name(model)}" if model else "a 4-bit model"
        raise BitsandbytesKeptOut(f"{what} loads in 4-bit or 8-bit with bitsandbytes, which this process "
                                  "keeps out for the models it started with: load it with a routeshell command "
                                  "of its own")  # fmt: skip


def kept_out() -> bool:
    """Whether this process keeps bitsandbytes out."""
    return "bitsandbytes" in sys.modules and sys.modules["bitsandbytes"] is None


def quantized_by_bitsandbytes(model_dir: Path) -> bool:
    """Whether the ``config.json`` of ``model_dir`` says its weights are quantized by bitsandbytes
    (a checkpoint saved in 4-bit or 8-bit, which transformers loads only with it). False when the
    file cannot be read: loading the model then says what is wrong."""
    try:
        config = json.loads(read_capped(model_dir / "config.json", MAX_CONFIG_BYTES).decode("utf-8"))
    except (OSError, ValueError):
        return False
    quantization = config.get("quantization_config") if isinstance(config, dict) else None
    if not isinstance(quantization, dict):
        return False
    method = quantization.get("quant_method")
    if method is None:  # transformers' older configs name no method: the bitsandbytes flags say it
        return bool(quantization.get("load_in_4bit") or quantization.get("load_in_8bit"))
    return str(method).startswith("bitsandbytes")
