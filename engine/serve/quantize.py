"""Weight-only int8 for decoding on the CPU: each linear layer's weights in int8 with one bf16 scale per
output channel, multiplied by PyTorch's own int8 kernel (``aten::_weight_int8pack_mm``).

Decoding one token reads every weight once, so its speed is bounded by memory bandwidth: int8
weights read half the bytes of bf16. torchao's ``Int8WeightOnlyConfig`` stores the same thing
but dispatches each call through a tensor subclass; measured here on the ``small`` preset it
decoded more slowly than plain bf16, while this module, calling the same kernel directly, was
faster than both (``bench/bench_serve.py`` prints the comparison).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Int8Linear(nn.Module):
    """A drop-in for a bias-free ``nn.Linear``: symmetric per-channel int8 weights, bf16 in and out."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        weight = linear.weight.detach().float()
        scale = weight.abs().amax(dim=1).clamp(min=1e-8) / 127.0
        quantized = (weight / scale[:, None]).round().clamp(-127, 127).to(torch.int8)
        self.in_features = linear.in_features
        self.out_features = linear.out_features
        self.register_buffer("weight_int8", quantized.contiguous())
        self.register_buffer("scale", scale.to(torch.bfloat16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(-1, shape[-1]).to(torch.bfloat16)
        out: torch.Tensor = torch.ops.aten._weight_int8pack_mm(flat, self.weight_int8, self.scale)
        return out.reshape(*shape[:-1], self.out_features)


def _works(layer: Int8Linear) -> bool:
    try:
        with torch.inference_mode():
            layer(torch.zeros(1, layer.in_features, dtype=torch.bfloat16))
    except RuntimeError:  # a shape or a build the kernel does not take
        return False
    return True


def quantize_int8(model: Any) -> int:
    """Replace every bias-free linear layer of ``model`` (a bf16 model) by an :class:`Int8Linear`, in place.

    Return how many layers were replaced; a layer the kernel refuses stays as it was."""
    replaced = 0
    modules: list[nn.Module] = list(model.modules())
    for module in modules:
        for name, child in list(module.named_children()):
            if isinstance(child, nn.Linear) and getattr(child, "bias", None) is None:
                layer = Int8Linear(child)
                if _works(layer):
                    setattr(module, name, layer)
                    replaced += 1
    return replaced
