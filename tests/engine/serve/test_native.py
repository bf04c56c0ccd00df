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
from engine.serve.native import Kernels, kernel_status, native_kernels
from engine.serve.quantize import reduce_range

ROOT = Path(__file__).resolve().parents[3]


class _Module(torch.nn.Module):
    is_causal = True


@pytest.fixture(scope="module")
def kernel() -> Kernels:
    found = native_kernels()
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
    kernel: Kernels, rows: int, heads: int, kv_heads: int, length: int, size: int, room: int, masked: bool
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


def test_it_keeps_its_accuracy_over_a_wide_range_of_scores(kernel: Kernels) -> None:
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


def test_it_is_built_once_and_found_in_the_cache_after(kernel: Kernels, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    kernels = cache / "routeshell" / "kernels"
    kernels.mkdir(parents=True, mode=0o700)
    # What a build killed mid-way leaves: removed once old, kept while it may be another's build.
    stale, fresh = kernels / ".build-killed.so", kernels / ".build-running.so"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"half")
    os.utime(stale, (1, 1))
    first = _status({"XDG_CACHE_HOME": str(cache)})
    assert not stale.exists()
    assert fresh.exists()
    fresh.unlink()
    assert first.startswith("native (kernels-"), first
    (built,) = kernels.glob("kernels-*.so")
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


def test_a_cache_it_cannot_write_gets_a_kernel_built_elsewhere(kernel: Kernels, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.write_text("a file where the cache directory should be")
    assert _status({"XDG_CACHE_HOME": str(cache)}).startswith("native (kernels-")
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob("routeshell-kernel-*/kernels-*"))


def test_without_a_compiler_or_when_switched_off_decoding_keeps_pytorchs_path(tmp_path: Path) -> None:
    cache = str(tmp_path / "cache")
    missing = _status({"XDG_CACHE_HOME": cache, "CC": "no-such-compiler"})
    assert missing == "PyTorch's (the native kernels are unavailable: no C compiler 'no-such-compiler' on PATH)"
    broken = tmp_path / "broken-cc"
    # As gcc on a full disk: the error first, then a line that says nothing of why.
    says = 'echo "fatal error: No space left on device" >&2\necho "compilation terminated." >&2'
    broken.write_text(f'#!/bin/sh\n[ "$1" = --version ] && echo broken 1.0 && exit 0\n{says}\nexit 1\n')
    broken.chmod(0o755)
    assert _status({"XDG_CACHE_HOME": cache, "CC": str(broken)}) == (
        f"PyTorch's (the native kernels are unavailable: {broken} could not compile kernels.c: "
        "fatal error: No space left on device)"
    )
    kernels = tmp_path / "cache" / "routeshell" / "kernels"
    assert not list(kernels.iterdir())  # no half-built file left
    assert kernels.stat().st_mode & 0o777 == 0o700  # made for this user alone
    assert _status({"XDG_CACHE_HOME": cache, "ROUTESHELL_NATIVE": "0"}) == (
        "PyTorch's (the native kernels are unavailable: ROUTESHELL_NATIVE=0)"
    )


def test_an_int8_row_is_quantized_by_its_own_range_whatever_shares_its_batch(kernel: Kernels) -> None:
    from engine.serve.quantize import DynamicInt8Linear

    torch.manual_seed(3)
    linear = torch.nn.Linear(96, 40, bias=False)
    scaled, shared = DynamicInt8Linear(linear, kernel), DynamicInt8Linear(linear)
    assert scaled.rows_scaled
    assert not shared.rows_scaled
    # Rows of very different sizes, one of zeros, a 3-d input as the model gives.
    x = torch.randn(6, 1, 96) * torch.tensor([0.01, 1.0, 30.0, 0.0, 2.0, 0.2])[:, None, None]
    with torch.inference_mode():
        together = scaled(x)
        alone = torch.cat([scaled(x[i : i + 1]) for i in range(6)])
        assert torch.equal(together, alone)
        assert together.shape == (6, 1, 40)
        exact = linear(x)
        assert torch.equal(together[3], torch.zeros(1, 40))
        error = (together - exact).norm(dim=-1) / exact.norm(dim=-1).clamp(min=1e-9)
        assert float(error[[0, 1, 2, 4, 5]].max()) < 0.03, error
        # One scale for all: the smallest row loses most of its precision.
        crushed = (shared(x) - exact).norm(dim=-1) / exact.norm(dim=-1).clamp(min=1e-9)
        assert float(crushed[0]) > 5 * float(error[0])
        # A strided input gives the same as its contiguous copy; one of another width is refused.
        wide = torch.randn(4, 192)[:, ::2]
        torch.testing.assert_close(scaled(wide), scaled(wide.contiguous()), rtol=0, atol=0)
        with pytest.raises(ValueError, match="an input of width 97 for a layer of width 96"):
            scaled(torch.randn(2, 97))


def test_the_int8_model_decodes_each_prompt_alike_alone_and_in_any_batch(pretrained: tuple, kernel: Kernels) -> None:
    from engine.serve.batch import BatchCache
    from engine.serve.engine import Stream, collect
    from engine.serve.loaded import load_model
    from engine.serve.types import GenerationRequest, SamplingParams
    from tests.engine.serve.test_engine import PROMPTS

    int8 = load_model(pretrained[0], dtype="int8")
    greedy = SamplingParams(max_tokens=16, temperature=0.0)

    def run(groups: list[list[str]]) -> tuple[dict[str, tuple[int, ...]], dict[str, list[torch.Tensor]]]:
        """Each prompt's tokens, and its logits at every step, prefilling ``groups`` in turn."""
        batch = BatchCache(int8)
        streams: list[Stream] = []
        logits: dict[str, list[torch.Tensor]] = {prompt: [] for prompt in PROMPTS}
        forward = batch._forward

        def recorded(rows: list, **inputs: object) -> object:
            out = forward(rows, **inputs)
            for row, row_logits in zip(rows, out.logits[:, -1], strict=True):
                logits[row.stream.request.request_id].append(row_logits.clone())
            return out

        batch._forward = recorded  # type: ignore[method-assign]
        with torch.inference_mode():
            for group in groups:
                made = [Stream(GenerationRequest(p, tuple(int8.text_ids(p)), greedy), lambda: None) for p in group]
                batch.add([(stream, 0) for stream in made])
                streams += made
                batch.decode()  # the next group joins a running batch
            while batch.rows:
                batch.decode()
        return {stream.request.request_id: collect(stream).token_ids for stream in streams}, logits

    alone_tokens, alone_logits = run([[prompt] for prompt in PROMPTS])
    for groups in ([PROMPTS[:4], PROMPTS[4:]], [PROMPTS[::-1]]):  # padded groups; a batch joined
        tokens, logits = run(groups)
        assert tokens == alone_tokens
        for prompt in PROMPTS:  # not only the same choices: the same numbers
            assert len(logits[prompt]) == len(alone_logits[prompt])
            for step, (got, want) in enumerate(zip(logits[prompt], alone_logits[prompt], strict=True)):
                # (Where FBGEMM has no VNNI kernel, on a CPU without AVX-512, its 7-bit kernel sums
                # a batch's products in another order: the same choices, numbers a rounding apart.)
                same = torch.equal(got, want) if not reduce_range() else torch.allclose(got, want, atol=0.05, rtol=0)
                assert same, f"{prompt!r} step {step}: {float((got - want).abs().max())}"
