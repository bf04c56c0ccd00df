"""The native decode attention: PyTorch's numbers from a bf16 cache, and a fallback that always works."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.serve.attention import decode_attention, native_fits
from engine.serve.native import DecodeKernel, decode_kernel, kernel_status

ROOT = Path(__file__).resolve().parents[3]


class _Module(torch.nn.Module):
    is_causal = True


@pytest.fixture(scope="module")
def kernel() -> DecodeKernel:
    found = decode_kernel()
    if found is None:  # `make system-deps` installs a compiler where it can
        pytest.skip(f"no native kernel here: {kernel_status()}")
    return found


def reference(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None, scale: float
) -> torch.Tensor:
    """Attention in fp64 over the cache widened from bf16, key heads repeated for grouped queries:
    (rows, 1, heads, size)."""
    heads = query.shape[1]
    group = heads // key.shape[1]
    key = key.double().repeat_interleave(group, dim=1)
    value = value.double().repeat_interleave(group, dim=1)
    scores = query.double() @ key.transpose(-1, -2) * scale
    if mask is not None:
        scores = scores.masked_fill(~mask, -math.inf)
    return (torch.softmax(scores, dim=-1) @ value).transpose(1, 2).float()


CASES = [
    # rows, heads, kv heads, length, size, room: a gapped view of a cache with room to grow
    (8, 8, 8, 192, 64, 64),
    (1, 4, 4, 1, 16, 0),  # one position
    (3, 8, 2, 37, 24, 5),  # grouped queries, a width that is no multiple of a vector
    (2, 6, 3, 130, 40, 0),
]


@pytest.mark.parametrize(("rows", "heads", "kv_heads", "length", "size", "room"), CASES)
@pytest.mark.parametrize("masked", [False, True])
def test_it_gives_the_attention_of_the_widened_cache(
    kernel: DecodeKernel, rows: int, heads: int, kv_heads: int, length: int, size: int, room: int, masked: bool
) -> None:
    generator = torch.Generator().manual_seed(rows * 1000 + length)
    buffers = torch.randn(2, rows, kv_heads, length + room, size, generator=generator).to(torch.bfloat16)
    key, value = buffers[0][:, :, :length], buffers[1][:, :, :length]
    query = torch.randn(rows, heads, 1, size, generator=generator)
    mask = None
    if masked:
        mask = torch.ones(rows, 1, 1, length, dtype=torch.bool)
        mask[0, ..., : length // 2] = False  # a left-padded row
        mask[-1, ..., : max(length - 2, 0)] = False
    assert native_fits(query, key, value, mask)
    got, _ = decode_attention(_Module(), query, key, value, mask, scaling=size**-0.5)
    torch.testing.assert_close(got, reference(query, key, value, mask, size**-0.5), rtol=2e-5, atol=2e-5)


def test_it_keeps_its_accuracy_over_a_wide_range_of_scores(kernel: DecodeKernel) -> None:
    # Scores 100 apart: every weight but the largest few underflows, and exp must not misbehave.
    query = torch.full((2, 2, 1, 16), 3.0)
    key = (torch.linspace(-4, 4, 2 * 2 * 50 * 16).view(2, 2, 50, 16)).to(torch.bfloat16)
    value = torch.randn(2, 2, 50, 16).to(torch.bfloat16)
    got, _ = decode_attention(_Module(), query, key, value, None, scaling=1.0)
    torch.testing.assert_close(got, reference(query, key, value, None, 1.0), rtol=2e-5, atol=2e-5)
    # A mask given for one row applies to every row.
    shared = torch.ones(1, 1, 1, 50, dtype=torch.bool)
    shared[..., :10] = False
    got, _ = decode_attention(_Module(), query, key, value, shared, scaling=1.0)
    torch.testing.assert_close(got, reference(query, key, value, shared, 1.0), rtol=2e-5, atol=2e-5)


def test_tensors_it_cannot_take_go_to_pytorch() -> None:
    query = torch.randn(2, 4, 1, 16)
    key = torch.randn(2, 4, 10, 16).to(torch.bfloat16)
    value = key.clone()
    assert native_fits(query, key, value, None)
    assert native_fits(query, key, value, torch.ones(1, 1, 1, 10, dtype=torch.bool))  # one row's, for all
    assert not native_fits(query, key.float(), value.float(), None)  # an fp32 cache
    assert not native_fits(query.bfloat16(), key, value, None)
    assert not native_fits(torch.randn(2, 4, 3, 16), key, value, None)  # a prompt
    assert not native_fits(query, key.transpose(2, 3).contiguous().transpose(2, 3), value, None)
    assert not native_fits(query, key[:, :3], value[:, :3], None)  # 4 heads over 3
    assert not native_fits(query, key, value[:, :, :9], None)
    assert not native_fits(query, key, value, torch.zeros(2, 1, 1, 10))  # additive
    assert not native_fits(query, key, value, torch.ones(2, 4, 1, 10, dtype=torch.bool))  # per head
    # Those go to PyTorch, with its numbers.
    for k, v in ((key.float(), value.float()), (key.transpose(2, 3).contiguous().transpose(2, 3), value)):
        got, _ = decode_attention(_Module(), query, k, v, None, scaling=0.25)
        torch.testing.assert_close(got, reference(query, k, v, None, 0.25), rtol=1e-4, atol=1e-4)


def _status(env: dict[str, str]) -> str:
    """kernel_status() in a fresh process with ``env`` added (it is decided once per process)."""
    code = "from engine.serve.native import kernel_status; print(kernel_status())"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=os.environ | env, cwd=ROOT, check=True
    )
    return result.stdout.strip()


def test_it_is_built_once_and_found_in_the_cache_after(kernel: DecodeKernel, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = _status({"XDG_CACHE_HOME": str(cache)})
    assert first.startswith("native (decode_attention-"), first
    (built,) = (cache / "routeshell" / "kernels").glob("decode_attention-*.so")
    assert oct(built.parent.stat().st_mode & 0o777) == "0o700"
    assert _status({"XDG_CACHE_HOME": str(cache)}) == first
    # A damaged library in the cache is built again, not loaded.
    built.write_bytes(b"not a library")
    assert _status({"XDG_CACHE_HOME": str(cache)}) == first
    assert built.read_bytes()[:4] == b"\x7fELF"
    # One that others could have written is not trusted: built again too.
    built.write_bytes(b"planted")
    built.chmod(0o666)
    assert _status({"XDG_CACHE_HOME": str(cache)}) == first
    assert built.read_bytes()[:4] == b"\x7fELF"
    assert not built.stat().st_mode & 0o022


def test_a_cache_it_cannot_write_gets_a_kernel_built_elsewhere(kernel: DecodeKernel, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.write_text("a file where the cache directory should be")
    assert _status({"XDG_CACHE_HOME": str(cache)}).startswith("native (decode_attention-")
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob("routeshell-kernel-*/decode_attention-*"))


def test_without_a_compiler_or_when_switched_off_decoding_keeps_pytorchs_path(tmp_path: Path) -> None:
    cache = str(tmp_path / "cache")
    missing = _status({"XDG_CACHE_HOME": cache, "CC": "no-such-compiler"})
    assert missing == "PyTorch's (the native kernel is unavailable: no C compiler 'no-such-compiler' on PATH)"
    broken = tmp_path / "broken-cc"
    broken.write_text('#!/bin/sh\n[ "$1" = --version ] && echo broken 1.0 && exit 0\necho "error: nope" >&2\nexit 1\n')
    broken.chmod(0o755)
    assert _status({"XDG_CACHE_HOME": cache, "CC": str(broken)}) == (
        f"PyTorch's (the native kernel is unavailable: {broken} could not compile decode_attention.c: error: nope)"
    )
    assert not list((tmp_path / "cache" / "routeshell" / "kernels").iterdir())  # no half-built file left
    assert _status({"XDG_CACHE_HOME": cache, "ROUTESHELL_NATIVE": "0"}) == (
        "PyTorch's (the native kernel is unavailable: ROUTESHELL_NATIVE=0)"
    )
