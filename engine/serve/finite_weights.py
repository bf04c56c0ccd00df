"""Weights that are not finite numbers: a NaN or an infinity left by a training that diverged makes
every reply garbage, or, with int8 weights, fails every request as the layer is quantized. Checked
once the weights are loaded (torch is needed to read them), before they are quantized.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from engine.names import display_name
from engine.serve.model_dir import ModelLoadError, named, shard_of

#: What to do with weights that hold a NaN or an infinity.
NOT_FINITE = (
    "its weights hold values that are not finite numbers ({}); train it again (a lower learning rate), "
    "or use a checkpoint saved before its loss diverged"
)


def check_finite_weights(path: Path, model: Any) -> None:
    """Raise ModelLoadError, naming the first such tensor (and the shard that holds it, where the
    weights are in shards), when a parameter or buffer of ``model`` (the torch module loaded from
    ``path``) holds a NaN or an infinity: every reply would be garbage, or, with int8 weights, every
    request would fail as the layer is quantized."""
    tensors = [*model.named_parameters(), *model.named_buffers()]
    name = first_not_finite(tensors)
    if name is not None:
        shard = shard_of(path, name)
        what = NOT_FINITE.format(named(name) + (f" in {shard}" if shard else ""))
        raise ModelLoadError(f"{display_name(str(path))}: the model cannot be loaded: {what}")


def first_not_finite(tensors: Iterable[tuple[str, Any]]) -> str | None:
    """The name of the first of ``tensors`` (name and torch tensor, on one device) of a floating dtype
    that holds a NaN or an infinity; None when every value is a finite number. The device is waited
    for once, not once a tensor."""
    import torch

    named = [(name, tensor.detach()) for name, tensor in tensors if tensor.is_floating_point() and tensor.numel()]
    if not named:
        return None
    flags = torch.stack([_finite(tensor) for _, tensor in named])
    if bool(flags.all()):
        return None
    return named[int((~flags).nonzero()[0, 0])][0]


def _finite(tensor: Any) -> Any:
    """Whether every value of ``tensor`` (not empty) is a finite number, as a tensor on its device.
    Its least and greatest values say so, a NaN anywhere making both NaN: one pass, with no scratch
    (``isfinite(tensor).all()`` writes a byte an element, and took 12 times as long on a CPU)."""
    import torch

    try:
        ends = torch.stack(torch.aminmax(tensor))
    except (RuntimeError, NotImplementedError):  # a dtype without the kernel (float8 on a CPU)
        return torch.isfinite(tensor.float()).all()
    return torch.isfinite(ends).all()
