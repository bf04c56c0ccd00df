"""Hostile cases of the int8 kernels and of prompts prefilled together."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

# A bf16 stack of linear layers of widths a multiple of 8 but not of 16, run on a few rows.
WEIGHT_ONLY_WIDTHS = """
import torch
from engine.serve.quantize import quantize_int8
for width in (24, 40, 56, 72, 104, 120, 136):
    model = torch.nn.Sequential(torch.nn.Linear(width, 16, bias=False), torch.nn.Linear(16, width, bias=False))
    model = model.to(torch.bfloat16)
    quantize_int8(model, dynamic=False)
    with torch.inference_mode():
        assert model(torch.randn(3, width, dtype=torch.bfloat16)).shape == (3, width)
print("ok")
"""


def test_the_weight_only_kernel_never_gets_a_width_it_crashes_on() -> None:
    """``_weight_int8pack_mm`` crashes the process on widths that are a multiple of 8 but not of 16:
    quantize_int8 must leave those layers as they are, in its probe as in use. Run in a child,
    since the crash is a segmentation fault."""
    done = subprocess.run(
        [sys.executable, "-c", WEIGHT_ONLY_WIDTHS],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr[-2000:]
