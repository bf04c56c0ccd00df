"""bitsandbytes stays out of a process that settles it needs none, a 4-bit load after that is refused
in one line, and the need is read from a model's config.json, an adapter's record and a profile.

What settling does lasts for the life of a process, so each check of it runs in a fresh interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.bitsandbytes_gate import quantized_by_bitsandbytes
from engine.router.candidates import candidates
from engine.router.registry import ROUTERS, SHIPPED_ROUTER, needs_bitsandbytes
from engine.router.router_dir import ADAPTER_META, FORMAT_VERSION, META_FILE, adapter_needs_bitsandbytes
from engine.router.router_dir import needs_bitsandbytes as router_dir_needs


def run_python(code: str) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter; return the JSON object its last line prints."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    answer: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def model_dir(path: Path, quantization: object = None) -> Path:
    """A directory with only a ``config.json`` (with ``quantization_config`` when given)."""
    path.mkdir(parents=True)
    config = {"model_type": "llama"} if quantization is None else {"model_type": "llama",
                                                                   "quantization_config": quantization}  # fmt: skip
    (path / "config.json").write_text(json.dumps(config))
    return path


def test_a_process_that_needs_no_4bit_applies_an_adapter_without_bitsandbytes_and_refuses_4bit_after(
    tmp_path: Path,
) -> None:
    base = model_dir(tmp_path / "base")
    answer = run_python(f"""
import json, sys
from pathlib import Path
from engine.bitsandbytes_gate import settle_bitsandbytes
settle_bitsandbytes(False)
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM
config = LlamaConfig(vocab_size=99, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                     num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64)
get_peft_model(LlamaForCausalLM(config), LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
adapted = sys.modules.get("bitsandbytes") is not None
from engine.errors import RouteshellError
from engine.router.lora import load_base
try:
    load_base(Path({str(base)!r}), use_4bit=True)
    error = None
except RouteshellError as err:
    error = [type(err).__name__, str(err), int(err.exit_code)]
print(json.dumps({{"loaded": adapted or sys.modules.get("bitsandbytes") is not None, "error": error}}))
""")
    assert answer["loaded"] is False
    kind, message, code = answer["error"]  # type: ignore[misc]
    assert kind == "BitsandbytesKeptOut"
    assert code == 1
    assert "\n" not in message
    assert "base loads in 4-bit or 8-bit with bitsandbytes, which this process keeps out" in message


def test_the_first_answer_settles_it() -> None:
    answer = run_python("""
import json, sys
from engine.bitsandbytes_gate import kept_out, settle_bitsandbytes
settle_bitsandbytes(True)
settle_bitsandbytes(False)  # a 4-bit model is still to come: bitsandbytes stays loadable
first = kept_out()
print(json.dumps({"kept_out": first, "listed": "bitsandbytes" in sys.modules}))
""")
    assert answer == {"kept_out": False, "listed": False}


@pytest.mark.parametrize(
    ("quantization", "expected"),
    [
        (None, False),
        ({"quant_method": "bitsandbytes", "load_in_4bit": True}, True),
        ({"quant_method": "bitsandbytes_8bit"}, True),
        ({"load_in_8bit": True}, True),  # an older config, which names no method
        ({"quant_method": "gptq", "bits": 4}, False),
        ("nf4", False),
    ],
)
def test_a_model_is_quantized_by_bitsandbytes_when_its_config_says_so(
    tmp_path: Path, quantization: object, expected: bool
) -> None:
    assert quantized_by_bitsandbytes(model_dir(tmp_path / "m", quantization)) is expected


def test_an_unreadable_config_is_left_for_loading_to_report(tmp_path: Path) -> None:
    assert quantized_by_bitsandbytes(tmp_path) is False
    (tmp_path / "config.json").write_text("{not json")
    assert quantized_by_bitsandbytes(tmp_path) is False


def adapter(path: Path, base: Path, use_4bit: bool) -> Path:
    """A LoRA router directory: its ``router.json`` and adapter record (no weights: they are not read)."""
    path.mkdir()
    router = {"format": FORMAT_VERSION, "kind": "lora", "candidates": [c.key for c in candidates()]}
    (path / META_FILE).write_text(json.dumps(router))
    (path / ADAPTER_META).write_text(json.dumps({"base": str(base), "options": {"use_4bit": use_4bit}}))
    return path


def test_an_adapter_needs_bitsandbytes_in_4bit_or_on_a_base_quantized_by_it(tmp_path: Path) -> None:
    plain = model_dir(tmp_path / "plain")
    quantized = model_dir(tmp_path / "quantized", {"quant_method": "bitsandbytes", "load_in_4bit": True})
    assert adapter_needs_bitsandbytes(adapter(tmp_path / "a", plain, use_4bit=True)) is True
    assert adapter_needs_bitsandbytes(tmp_path / "a", use_4bit=False) is False  # export --merge loads it so
    assert adapter_needs_bitsandbytes(adapter(tmp_path / "b", plain, use_4bit=False)) is False
    assert adapter_needs_bitsandbytes(tmp_path / "b", base=quantized) is True
    assert adapter_needs_bitsandbytes(adapter(tmp_path / "c", quantized, use_4bit=False)) is True
    (tmp_path / "b" / ADAPTER_META).write_text("[]")
    assert adapter_needs_bitsandbytes(tmp_path / "b") is False  # loading it says what is wrong
    assert adapter_needs_bitsandbytes(tmp_path / "missing") is False


def test_a_routers_need_is_read_from_its_directory_and_its_profile_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = model_dir(tmp_path / "plain")
    four_bit = adapter(tmp_path / "four", plain, use_4bit=True)
    assert router_dir_needs(four_bit) is True
    assert router_dir_needs(SHIPPED_ROUTER) is False  # a tfidf router
    assert router_dir_needs(tmp_path / "missing") is False
    assert needs_bitsandbytes({"kind": "model", "model_dir": str(four_bit)}) is True
    assert needs_bitsandbytes({"kind": "model"}) is False
    assert needs_bitsandbytes({"kind": "heuristic"}) is False
    assert needs_bitsandbytes({"kind": "no-such-kind"}) is False  # it falls back to the heuristic router
    monkeypatch.setitem(ROUTERS, "from-a-plugin", lambda table: pytest.fail("not loaded here"))
    assert needs_bitsandbytes({"kind": "from-a-plugin"}) is True  # it may load anything
