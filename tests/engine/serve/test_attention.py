"""The int8 model's attention: ``sdpa``'s numbers, with the native kernel and without it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from engine.serve.attention import NAME, decode_attention
from engine.serve.batch import BatchCache
from engine.serve.engine import Stream
from engine.serve.loaded import LoadedModel, load_model
from engine.serve.types import GenerationRequest, SamplingParams
from tests.engine.serve.test_engine import PROMPTS

ROOT = Path(__file__).resolve().parents[3]


class _Module(torch.nn.Module):
    is_causal = True


def test_one_position_attends_as_sdpa_does_with_a_gapped_cache_and_padding() -> None:
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    torch.manual_seed(0)
    buffer = torch.randn(3, 4, 40, 16)
    key, value = buffer[:, :, :29], torch.randn(3, 4, 40, 16)[:, :, :29]  # views of a cache with room
    query = torch.randn(3, 4, 1, 16)
    mask = torch.ones(3, 1, 1, 29, dtype=torch.bool)
    mask[0, ..., :7] = False  # a left-padded row
    for attention_mask in (mask, None):
        want, _ = sdpa_attention_forward(_Module(), query, key, value, attention_mask, scaling=0.25)
        # An fp32 cache (PyTorch's products), and a bf16 one (the native kernel where there is one).
        for k, v in ((key, value), (key.bfloat16(), value.bfloat16())):
            got, _ = decode_attention(_Module(), query, k, v, attention_mask, scaling=0.25)
            assert got.shape == want.shape == (3, 1, 4, 16)
            tolerance = 1e-5 if k.dtype == torch.float32 else 2e-2
            torch.testing.assert_close(got, want, rtol=tolerance, atol=tolerance)


def prompt_mask(lengths: list[int], positions: int) -> torch.Tensor:
    """transformers' mask of left-padded prompts: each real position sees its row's real positions up
    to itself; a padding position sees itself."""
    mask = torch.zeros(len(lengths), 1, positions, positions, dtype=torch.bool)
    for row, length in enumerate(lengths):
        start = positions - length
        mask[row, 0, start:, start:] = torch.ones(length, length, dtype=torch.bool).tril()
        mask[row, 0, range(start), range(start)] = True
    return mask


def test_left_padded_prompts_attend_each_as_it_does_alone_and_other_masks_as_sdpa_does() -> None:
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    torch.manual_seed(0)
    query, key, value = (torch.randn(3, 9, 4, 16).transpose(1, 2) for _ in range(3))  # as the model's views
    lengths = [9, 2, 5]
    got, _ = decode_attention(_Module(), query, key, value, prompt_mask(lengths, 9), scaling=0.25)
    for row, length in enumerate(lengths):
        start = 9 - length
        alone, _ = sdpa_attention_forward(_Module(), query[row : row + 1, :, start:], key[row : row + 1, :, start:],
                                          value[row : row + 1, :, start:], None, scaling=0.25)  # fmt: skip
        assert torch.equal(got[row, start:], alone[0]), row  # the same numbers, not a rounding apart
    # A mask with a gap, or positions before these (a cache), is attended as sdpa attends it.
    gapped = prompt_mask(lengths, 9)
    gapped[0, 0, 5:, 3] = False
    cached = torch.ones(3, 1, 9, 12, dtype=torch.bool)
    more = torch.randn(3, 4, 12, 16)
    for mask, k, v in ((gapped, key, value), (cached, more, more)):
        want, _ = sdpa_attention_forward(_Module(), query, k, v, mask, scaling=0.25)
        got, _ = decode_attention(_Module(), query, k, v, mask, scaling=0.25)
        assert torch.equal(got, want)


def padded_batch_logits(model: LoadedModel) -> list[torch.Tensor]:
    """Each step's last logits for four prompts of several lengths (a padded batch), greedy."""
    batch = BatchCache(model)
    greedy = SamplingParams(max_tokens=9, temperature=0.0)
    streams = [
        Stream(GenerationRequest(str(i), tuple(model.text_ids(p)), greedy), lambda: None)
        for i, p in enumerate(PROMPTS[:4])
    ]
    seen: list[torch.Tensor] = []
    forward = batch._forward

    def recorded(rows: list, **inputs: object) -> object:
        out = forward(rows, **inputs)
        seen.append(out.logits[:, -1].clone())
        return out

    batch._forward = recorded  # type: ignore[method-assign]
    with torch.inference_mode():
        batch.add([(stream, 0) for stream in streams])
        for _ in range(6):
            batch.decode()
    return seen


def test_the_int8_model_decodes_a_padded_batch_close_to_fp32_on_either_path(pretrained: tuple, tmp_path: Path) -> None:
    from engine.serve.native import kernel_status

    int8 = load_model(pretrained[0], dtype="int8")
    assert int8.model.config._attn_implementation == NAME
    fp32 = padded_batch_logits(load_model(pretrained[0], dtype="fp32"))
    native = padded_batch_logits(int8)
    # PyTorch's path alone, in a process where the native kernels are switched off.
    out = tmp_path / "logits.pt"
    code = (
        "import sys, torch; from pathlib import Path; from engine.serve.loaded import load_model; "
        "from engine.serve.native import kernel_status; "
        "from tests.engine.serve.test_attention import padded_batch_logits; "
        "torch.set_num_threads(1); print(kernel_status()); "
        "torch.save(padded_batch_logits(load_model(Path(sys.argv[1]), dtype='int8')), sys.argv[2])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(pretrained[0]), str(out)],
        capture_output=True,
        text=True,
        env=os.environ | {"ROUTESHELL_NATIVE": "0"},
        cwd=ROOT,
        check=True,
    )
    assert result.stdout.startswith("PyTorch's"), result.stdout
    alone = torch.load(out)
    assert len(native) == len(alone) == len(fp32) == 7, kernel_status()
    # The prefill and three decode steps, before any greedy choice parts from fp32's (int8 moves
    # these logits by about 0.01 on either path; a wrong attention, by far more).
    for step in range(4):
        for path, logits in (("native", native), ("PyTorch's", alone)):
            difference = float((logits[step] - fp32[step]).abs().max())
            assert difference < 0.03, f"{path} path, step {step}: {difference}"
