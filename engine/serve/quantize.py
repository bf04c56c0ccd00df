"""Int8 weights for decoding on the CPU: each linear layer's weights in int8 with one scale per
output channel.

Decoding one token reads every weight once, so its speed is bounded by memory bandwidth, and
int8 reads a quarter of the bytes of fp32. Two of PyTorch's own kernels do the multiplication:

- :class:`DynamicInt8Linear` (x86): FBGEMM's ``quantized::linear_dynamic``, the kernel behind
  ``torch.ao.quantization.quantize_dynamic``. Activations stay fp32 between layers and are
  quantized per call, per tensor (8-bit where FBGEMM has a VNNI kernel, else 7-bit:
  :func:`reduce_range`). Measured here on the ``small`` preset it decoded one stream about 1.35x
  faster than the weight-only kernel below, scaled much better over a batch (8 rows cost under
  twice one), and prefilled a 64-token prompt 3-4x faster. FBGEMM quantizes a call's whole input
  with one scale; with the native kernels each row is first scaled to its own range, so that a
  row's output does not depend on its batch (without them, it can).
- :class:`Int8Linear` (elsewhere, e.g. ARM): weight-only int8 with bf16 activations through
  ``aten::_weight_int8pack_mm``.

torchao's ``Int8WeightOnlyConfig`` stores what :class:`Int8Linear` stores but dispatches every
call through a tensor subclass; it decoded more slowly than plain bf16 here.
"""

from __future__ import annotations

import warnings
from functools import cache
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from engine.serve.native import Kernels


def _channel_scales(weight: torch.Tensor) -> torch.Tensor:
    return weight.abs().amax(dim=1).clamp(min=1e-8) / 127.0


def _prepacked(weight: torch.Tensor) -> tuple[Any, torch.Tensor]:
    """``weight`` (fp32) in int8 with one scale per output channel, prepacked for FBGEMM; and the scales."""
    scale = _channel_scales(weight)
    zero_points = torch.zeros(weight.shape[0], dtype=torch.long)
    with warnings.catch_warnings():  # quantized tensors are deprecated; the pinned torch has them
        warnings.simplefilter("ignore", UserWarning)
        quantized = torch.quantize_per_channel(weight, scale.double(), zero_points, 0, torch.qint8)
        return torch.ops.quantized.linear_prepack(quantized, None), scale


@cache
def reduce_range() -> bool:
    """Whether FBGEMM's dynamic kernel needs 7-bit activations on this CPU.

    Without a VNNI kernel FBGEMM sums pairs of u8*s8 products in 16 bits, which 8-bit activations
    can saturate: there they are quantized to 7 bits, as ``quantize_dynamic`` does. With one the
    sums are 32-bit and the full 8 bits keep greedy output closer to fp32 (bench/bench_serve.py's
    guard). The CPU's flags do not tell which: FBGEMM has VNNI kernels for AVX-512 only, not for
    AVX-VNNI, and ``FBGEMM_ENABLE_INSTRUCTIONS`` can hold it to AVX2. So a product that overflows
    16 bits is tried."""
    try:
        weight = torch.ones(16, 64)
        packed, _ = _prepacked(weight)
        x = torch.ones(1, 64)
        x[0, 0] = -0.01  # a zero point near 0: the other activations quantize to 255
        with torch.inference_mode():
            got = torch.ops.quantized.linear_dynamic(x, packed, False)
    except RuntimeError:  # no FBGEMM here: the 7 bits that are always safe
        return True
    exact = x @ weight.T
    return not bool(((got - exact).abs() <= 0.05 * exact.abs()).all())


def _direct(overload: Any) -> Any:
    """The C++ callable behind an operator overload, where there is one.

    Calling ``OpOverload`` on a script object (the prepacked weights) first checks in Python for
    fake script objects, which only tracing creates: 7 us of a 34 us call measured here on a
    512-wide layer, 57 times per decoded token on the ``small`` preset. ``_op`` is the operator
    the overload dispatches to."""
    op = getattr(overload, "_op", None)
    return op if callable(op) else overload


class DynamicInt8Linear(nn.Module):
    """A drop-in for a bias-free fp32 ``nn.Linear``: int8 weights prepacked for FBGEMM, fp32 in and out.

    With ``kernels`` (:func:`engine.serve.native.native_kernels`), each row of the input is first
    scaled to a largest magnitude of 1 and given two more columns, -1 and 1, which the matrix
    multiplies by two columns of zeros: FBGEMM's one scale for the whole input is then the same
    at every call, and the product of each row is scaled back. Each row is thus quantized by its
    own range: its output does not depend on the other rows (the tokens of a sequence, on the
    batch it shares), and a row of small values keeps its precision (one of eight rows a
    twentieth the size of the others came out with 34% error with one scale for all, 0.9% with
    its own). Columns rather than a row: FBGEMM took 9% longer for nine rows than for eight, and
    about 1% longer for two more columns."""

    def __init__(self, linear: nn.Linear, kernels: Kernels | None = None) -> None:
        super().__init__()
        weight = linear.weight.detach().float()
        self.in_features = linear.in_features
        self.out_features = linear.out_features
        # The C function itself, and scratch for the scaled rows of small calls (decode steps):
        # every torch call costs microseconds here, and a decode step makes 33 of these calls.
        self._unit_rows = kernels.unit_rows_function if kernels is not None else None
        self._scratch: dict[int, tuple[torch.Tensor, torch.Tensor, int, int]] = {}
        packed_weight = weight
        if self._unit_rows is not None:
            packed_weight = torch.cat([weight, weight.new_zeros(weight.shape[0], 2)], dim=1)
        self._packed, scale = _prepacked(packed_weight)
        # what one call reads: the int8 matrix and its scales (not a buffer: FBGEMM owns the packing)
        self.weight_bytes = packed_weight.numel() + scale.numel() * 4
        self._kernel = _direct(torch.ops.quantized.linear_dynamic.default)
        self._reduce_range = reduce_range()

    @property
    def rows_scaled(self) -> bool:
        """Whether each input row is quantized by its own range (see the class)."""
        return self._unit_rows is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Not for concurrent calls from several threads (their scratch is shared), as no model's
        decoding is: one engine thread owns the model."""
        unit_rows = self._unit_rows
        if unit_rows is None:
            out: torch.Tensor = self._kernel(x.float(), self._packed, self._reduce_range)
            return out
        width = self.in_features
        shape = x.shape
        if shape[-1] != width:
            raise ValueError(f"an input of width {shape[-1]} for a layer of width {width}")
        if x.dtype != torch.float32 or not x.is_contiguous():
            x = x.float().contiguous()
        count = x.numel() // width
        unit, scales, unit_at, scales_at = self._scratch.get(count) or self._new_scratch(count)
        if unit_rows(count, width, x.data_ptr(), width, unit_at, scales_at):
            raise ValueError(f"the native row scaling refused {count} rows of {width}")
        out = self._kernel(unit, self._packed, self._reduce_range)
        return out.mul_(scales).view((*shape[:-1], self.out_features))

    def _new_scratch(self, count: int) -> tuple[torch.Tensor, torch.Tensor, int, int]:
        unit, scales = torch.empty((count, self.in_features + 2)), torch.empty((count, 1))
        scratch = (unit, scales, unit.data_ptr(), scales.data_ptr())
        if count <= SCRATCH_ROWS:  # kept for the next call of this size; a prompt's rows are not
            self._scratch[count] = scratch
        return scratch


#: Calls of up to this many rows (a decode step's batch) keep their scratch between calls.
SCRATCH_ROWS = 16


class Int8Linear(nn.Module):
    """A drop-in for a bias-free bf16 ``nn.Linear``: symmetric per-channel int8 weights, bf16 in and out."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        weight = linear.weight.detach().float()
        scale = _channel_scales(weight)
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


def dynamic_kernel_available() -> bool:
    """Whether FBGEMM's dynamic int8 kernel is here (PyTorch's x86 quantized engine)."""
    return torch.backends.quantized.engine in ("x86", "fbgemm")


def float_dtype(dynamic: bool | None = None) -> torch.dtype:
    """The dtype the rest of an int8 model keeps: fp32 around FBGEMM's kernel, bf16 around the other."""
    if dynamic is None:
        dynamic = dynamic_kernel_available()
    return torch.float32 if dynamic else torch.bfloat16


def _weight_only_takes(in_features: int) -> bool:
    """Whether ``_weight_int8pack_mm`` takes this width: with other widths it crashes the process
    (a segmentation fault, not an exception) once it gets more than one row, as measured on
    PyTorch 2.13 with AVX-512, where widths a multiple of 8 but not of 16 (24, 40, 120...) crash
    too."""
    return in_features >= 16 and in_features % 16 == 0


def _works(layer: DynamicInt8Linear | Int8Linear, dtype: torch.dtype) -> bool:
    if isinstance(layer, Int8Linear) and not _weight_only_takes(layer.in_features):
        return False
    try:
        with torch.inference_mode():
            layer(torch.zeros(2, layer.in_features, dtype=dtype))
    except RuntimeError:  # a shape or a build the kernel does not take
        return False
    return True


#: Sibling projections of one input, as transformers' attention and MLP blocks name them.
FUSED_GROUPS = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))


class _SharedProduct:
    """The product of one input with the sibling projections' stacked matrix, kept until every
    sibling has taken its slice."""

    def __init__(self, layer: nn.Module, widths: list[int]) -> None:
        self.layer = layer
        self.bounds: list[tuple[int, int]] = []
        start = 0
        for width in widths:
            self.bounds.append((start, start + width))
            start += width
        self._input: torch.Tensor | None = None
        self._output: torch.Tensor | None = None
        self._unserved: set[int] = set()

    def slice(self, x: torch.Tensor, index: int) -> torch.Tensor:
        # Inference tensors keep no version counter: a sibling is trusted to read its input
        # unchanged, as every attention and MLP block in transformers does.
        if x is not self._input or index not in self._unserved:
            self._input = x
            self._output = self.layer(x)
            self._unserved = set(range(len(self.bounds)))
        assert self._output is not None
        start, end = self.bounds[index]
        out = self._output[..., start:end]
        self._unserved.discard(index)
        if not self._unserved:  # every sibling has its part: hold no tensors between steps
            self._input = self._output = None
        return out


class Int8Projection(nn.Module):
    """One of sibling projections (``q_proj``/``k_proj``/``v_proj``, ``gate_proj``/``up_proj``)
    whose int8 matrices are stacked into one layer.

    The model calls the siblings one after the other on the same input: the first call runs the
    stacked layer and each sibling returns its slice of that one product. One call instead of three
    (or two) quantizes the input once and reads one larger matrix: measured here on the ``small``
    preset, a decode step's matrix products took about 10% less time. Rows of the stacked matrix
    keep their own scales and the input's scale is the same for every sibling, so the output is
    the same as the separate layers'. A call with another input, or a second call of one sibling,
    runs the stacked layer again."""

    def __init__(self, shared: _SharedProduct, index: int, in_features: int) -> None:
        super().__init__()
        self.layer = shared.layer  # the same module under each sibling: counted and moved once
        self._shared = shared
        self._index = index
        start, end = shared.bounds[index]
        self.in_features = in_features
        self.out_features = end - start

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._shared.slice(x, self._index)


def _int8(
    kind: type[DynamicInt8Linear | Int8Linear], linear: nn.Linear, kernels: Kernels | None
) -> DynamicInt8Linear | Int8Linear:
    return DynamicInt8Linear(linear, kernels) if kind is DynamicInt8Linear else kind(linear)


def _fuse_siblings(
    module: nn.Module,
    names: tuple[str, ...],
    kind: type[DynamicInt8Linear | Int8Linear],
    dtype: torch.dtype,
    kernels: Kernels | None,
) -> int:
    """Replace the sibling linear layers ``names`` of ``module`` by :class:`Int8Projection` views of
    one stacked int8 layer; return how many were replaced (0 when they are not all plain, bias-free
    linear layers of one input width, or the kernel refuses the stacked layer)."""
    children = [getattr(module, name, None) for name in names]
    linears = [child for child in children if isinstance(child, nn.Linear) and getattr(child, "bias", None) is None]
    if len(linears) != len(names) or len({linear.in_features for linear in linears}) != 1:
        return 0
    in_features = linears[0].in_features
    stacked = nn.Linear(in_features, sum(linear.out_features for linear in linears), bias=False)
    with torch.no_grad():
        stacked.weight.copy_(torch.cat([linear.weight.detach().float() for linear in linears]))
    layer = _int8(kind, stacked, kernels)
    if not _works(layer, dtype):
        return 0
    shared = _SharedProduct(layer, [linear.out_features for linear in linears])
    for index, name in enumerate(names):
        setattr(module, name, Int8Projection(shared, index, in_features))
    return len(names)


def quantize_int8(model: Any, *, dynamic: bool | None = None, fuse: bool = True) -> int:
    """Replace every bias-free linear layer of ``model`` by an int8 one, in place.

    ``dynamic`` picks :class:`DynamicInt8Linear` (the model must be fp32) or :class:`Int8Linear`
    (the model must be bf16); by default, the dynamic kernel where it exists (see
    :func:`float_dtype`). With ``fuse``, sibling projections of one input (:data:`FUSED_GROUPS`)
    share one stacked layer (:class:`Int8Projection`). Dynamic layers quantize each input row by
    its own range where the native kernels can be had (see :class:`DynamicInt8Linear`). Return how
    many layers were replaced; a layer the kernel refuses stays as it was."""
    if dynamic is None:
        dynamic = dynamic_kernel_available()
    kind: type[DynamicInt8Linear | Int8Linear] = DynamicInt8Linear if dynamic else Int8Linear
    dtype = float_dtype(dynamic)
    kernels = None
    if dynamic:
        from engine.serve.native import native_kernels

        kernels = native_kernels()
    replaced = 0
    modules: list[nn.Module] = list(model.modules())
    for module in modules:
        if fuse:
            for names in FUSED_GROUPS:
                replaced += _fuse_siblings(module, names, kind, dtype, kernels)
        for name, child in list(module.named_children()):
            if isinstance(child, nn.Linear) and getattr(child, "bias", None) is None:
                layer = _int8(kind, child, kernels)
                if _works(layer, dtype):
                    setattr(module, name, layer)
                    replaced += 1
    return replaced
