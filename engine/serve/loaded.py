"""A model directory loaded for serving: weights in the chosen format, tokenizer, adapters, limits.

:func:`load_model` takes a directory that ``routeshell train`` finished (or any Llama-style
transformers model directory with a fast tokenizer) and returns a :class:`LoadedModel`. Every
problem a user can cause is a :class:`ModelLoadError`: one line, exit code 2. The directory is
checked before any model is built (:mod:`engine.serve.model_dir`): config.json must describe the
weights beside it, every tensor and no other.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from engine.bitsandbytes_gate import quantized_by_bitsandbytes, settle_bitsandbytes
from engine.names import display_name
from engine.serve.finite_weights import NOT_FINITE, check_finite_weights, first_not_finite
from engine.serve.model_dir import (
    MAX_META_BYTES,
    Shapes,
    check_loading_info,
    check_model_fits,
    checked_shapes,
    named,
    reason,
)
from engine.serve.model_dir import ModelLoadError as ModelLoadError
from engine.serve.tokenizer_file import tokenizer_problem
from engine.serve.types import ServeError
from engine.textfile import read_capped

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

DTypeName = Literal["auto", "fp32", "bf16", "int8"]
DTYPES: tuple[DTypeName, ...] = ("auto", "fp32", "bf16", "int8")
Markers = Literal["zh", "en"]

#: The adapter name PEFT uses for "no adapter" in a mixed batch.
BASE_ADAPTER = "__base__"
#: An adapter directory's weights file, and the pickle PEFT would read instead (refused).
ADAPTER_WEIGHTS = "adapter_model.safetensors"
PICKLED_ADAPTER = "adapter_model.bin"
#: The marker ``routeshell train`` leaves in a model directory.
TRAIN_MARKER = "routeshell-train.json"


@dataclass
class LoadedModel:
    """A model ready for the engine: the torch module (None when loaded without weights), its tokenizer
    and what the server needs to know.

    ``adapters`` are the names of the LoRA adapters loaded beside the base; each is also a model
    id of the server. ``eos_ids`` end a reply. ``reasoning`` is the answer markers of a model that
    was trained with reasoning SFT (its replies are split into reasoning and answer), else None.
    """

    name: str
    path: Path
    model: Any
    tokenizer: PreTrainedTokenizerBase
    context_length: int
    eos_ids: frozenset[int]
    dtype: str
    device: str
    reasoning: Markers | None = None
    adapters: tuple[str, ...] = ()
    _token_bytes: dict[int, bytes] = field(default_factory=dict, repr=False)

    @property
    def vocab_size(self) -> int:
        """The tokenizer's vocabulary size (the model's logits may be wider)."""
        return len(self.tokenizer)

    def model_ids(self) -> list[str]:
        """Every model id the server answers to: the base model first, then each adapter."""
        return [self.name, *self.adapters]

    def adapter_for(self, model_id: str) -> str | None:
        """Return the adapter that ``model_id`` names (None for the base model).

        Raises ServeError 404 for an id the server does not serve."""
        if model_id == self.name:
            return None
        if model_id in self.adapters:
            return model_id
        served = ", ".join(self.model_ids())
        shown = repr(model_id) if len(model_id) <= 80 else f"{model_id[:80]!r}... ({len(model_id)} characters)"
        raise ServeError(
            f"the model {shown} does not exist here; this server serves: {served}",
            status=404,
            kind="not_found_error",
            param="model",
            code="model_not_found",
        )

    def chat_ids(self, messages: Sequence[Mapping[str, str]]) -> list[int]:
        """Return the prompt token ids of ``messages`` in the model's chat template, ready for a reply."""
        try:
            ids = self.tokenizer.apply_chat_template(
                [dict(message) for message in messages], add_generation_prompt=True, tokenize=True, return_dict=False
            )
        except Exception as err:  # a template error is the request's fault (a role it does not know)
            raise ServeError(f"the messages do not fit the model's chat template: {err}", param="messages") from err
        return [int(token) for token in cast("list[int]", ids)]

    def text_ids(self, text: str) -> list[int]:
        """Return the token ids of a plain-text prompt (beginning-of-sequence first, as in training)."""
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        bos = self.tokenizer.bos_token_id
        return ([bos] if bos is not None else []) + [int(token) for token in ids]

    def token_bytes(self, token: int) -> bytes:
        """The bytes that ``token`` stands for (a byte-fallback piece is its one byte; a special
        token, ``<pad>`` or an end token, none: it is no text of a reply, as the decoded text says)."""
        known = self._token_bytes.get(token)
        if known is None:
            piece = self.tokenizer.convert_ids_to_tokens(token)
            if token in self.tokenizer.all_special_ids:
                known = b""
            elif isinstance(piece, str) and len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
                known = bytes([int(piece[3:5], 16)])
            elif isinstance(piece, str):
                known = piece.replace("\u2581", " ").encode("utf-8")
            else:
                known = b""
            self._token_bytes[token] = known
        return known


#: The CPU flags (``/proc/cpuinfo``) of native bf16 arithmetic: x86 and Arm.
BF16_FLAGS = frozenset(("avx512_bf16", "amx_bf16", "bf16"))


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16, AMX or Arm's BF16); without it bf16 is
    slower than fp32. Read from the kernel's CPU flags, so that a server's HTTP process, which
    never loads weights, needs no torch to name the format its engine uses; where there are no
    such flags to read, torch's own check."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return not BF16_FLAGS.isdisjoint(value.split())
    import torch

    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_dtype(requested: DTypeName, device: str, *, adapters: bool = False) -> str:
    """Return the weight format ``auto`` stands for here.

    On a CPU, int8 (decoding reads every weight once per token, and int8 reads the fewest bytes:
    bench/bench_serve.py measured it fastest, with the greedy output of a trained model unchanged
    on most prompts), or with adapters, which need float layers, bf16 where the CPU has it.
    On a GPU, bf16 where it has it. Otherwise fp32."""
    if requested != "auto":
        return requested
    if device == "cuda":
        import torch

        # (A GPU that only emulates bf16, such as a T4 or a V100, is slower in it than in fp32.)
        return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp32"
    if not adapters:
        return "int8"
    return "bf16" if cpu_has_bf16() else "fp32"


#: Where ``--device`` may put the model: the CPU, a CUDA GPU, or ``auto`` (CUDA where torch sees one).
DEVICES = ("cpu", "cuda", "auto")


def pick_device(requested: str) -> str:
    """The device ``requested`` stands for (``cpu`` or ``cuda``). Only ``cuda`` and ``auto`` import
    torch, to ask whether it sees a CUDA device. Raises ModelLoadError for ``cuda`` where there is none."""
    if requested == "cpu":
        return "cpu"
    if requested not in DEVICES:
        raise ModelLoadError(f"--device {requested!r}: expected one of {', '.join(DEVICES)}")
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if requested == "cuda":
        raise ModelLoadError("--device cuda: torch sees no CUDA device here; use --device cpu (or auto)")
    return "cpu"


def _marker(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(read_capped(path / TRAIN_MARKER, MAX_META_BYTES))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _reasoning_markers(path: Path) -> Markers | None:
    marker = _marker(path)
    if marker.get("stage") != "reasoning":
        return None
    return "en" if marker.get("markers") == "en" else "zh"


def _eos_ids(path: Path, tokenizer: PreTrainedTokenizerBase) -> frozenset[int]:
    ids: set[int] = set()
    try:
        generation = json.loads(read_capped(path / "generation_config.json", MAX_META_BYTES))
    except (OSError, ValueError):
        generation = {}
    raw = generation.get("eos_token_id") if isinstance(generation, dict) else None
    for value in raw if isinstance(raw, list) else [raw]:
        if isinstance(value, int) and 0 <= value < len(tokenizer):
            ids.add(value)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return frozenset(ids)


def load_model(
    path: Path,
    *,
    dtype: DTypeName = "auto",
    adapters: Mapping[str, Path] | None = None,
    name: str | None = None,
    device: str = "cpu",
    weights: bool = True,
) -> LoadedModel:
    """Load the model directory ``path`` for serving and return it.

    ``dtype``: ``fp32``, ``bf16`` (weights in bf16), ``int8`` (int8 weights of the linear layers:
    :mod:`engine.serve.quantize`) or ``auto`` (see :func:`resolve_dtype`).
    ``device`` is ``cpu``, ``cuda`` or ``auto`` (:func:`pick_device`; ``auto`` with int8 is the CPU);
    the loaded model's ``device`` is the one it stands for, except without weights off the CPU, where
    the device and an ``auto`` dtype stay as asked until the engine process has loaded the weights
    (:meth:`~engine.serve.engine_process.EngineProcess.start` sets them then).
    ``adapters`` maps served ids to PEFT LoRA adapter directories.
    ``name`` is the base model's id (default: the directory's name). With ``weights=False`` the
    weights stay on disk and ``model`` is None: the tokenizer, limits and ids are what the HTTP
    layer of a server needs, whose engine loads the weights in a process of its own
    (:mod:`engine.serve.engine_process`).
    Raises ModelLoadError with one line for anything the user can fix.
    """
    adapters = dict(adapters or {})
    # Before anything is built: config.json's sizes, bounded by the weights it must describe.
    shapes = checked_shapes(path)
    if device == "auto" and dtype == "int8":
        device = "cpu"  # int8 runs on the CPU only
    # Without weights (the HTTP layer of a server) CUDA is never touched: the engine process, which
    # loads the weights, finds the device and the weight format, and the server takes them from it.
    device = pick_device(device) if weights else device
    for where in (path, *adapters.values()):
        if not _utf8(str(where)):  # the libraries take paths as UTF-8 text only
            raise ModelLoadError(f"{display_name(str(where))}: the path is not UTF-8; rename it or link to it")
    served = name or path.resolve().name or "model"
    for adapter, adapter_dir in adapters.items():
        if adapter in (served, BASE_ADAPTER) or not adapter:
            raise ModelLoadError(f"--adapter {adapter!r}: an adapter needs a name of its own")
        if not (adapter_dir / "adapter_config.json").is_file():
            raise ModelLoadError(
                f"--adapter {adapter}={display_name(str(adapter_dir))}: "
                "no adapter_config.json there (a PEFT adapter directory)"
            )
        if not (adapter_dir / ADAPTER_WEIGHTS).is_file() and (adapter_dir / PICKLED_ADAPTER).is_file():
            # (PEFT would read it with torch.load: a pickle, refused as a model's is.)
            raise ModelLoadError(
                f"--adapter {adapter}={display_name(str(adapter_dir))}: its weights are {PICKLED_ADAPTER}, a "
                "pickle, which can run code as it is read and is never loaded; where you trust the file, save "
                f"the adapter again with PEFT's save_pretrained, which writes {ADAPTER_WEIGHTS}"
            )
    # ("auto" stays so, without weights on a GPU, until the engine process says.)
    resolved = resolve_dtype(dtype, device, adapters=bool(adapters)) if weights or device == "cpu" else dtype
    if resolved == "int8" and adapters:
        raise ModelLoadError("--dtype int8 does not go with adapters; serve adapters with --dtype bf16 or fp32")
    if resolved == "int8" and device != "cpu":
        raise ModelLoadError("--dtype int8 runs on the CPU only; use bf16 on a GPU")

    from transformers import PreTrainedTokenizerFast
    from transformers.utils import logging as transformers_logging

    # The server's log is its own: no progress bars or advice from the loader.
    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    transformers_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    try:
        # tokenizer.json is required, so the fast tokenizer reads it whatever class the directory
        # names; AutoTokenizer and AutoConfig would import torch, seconds of each server start.
        tokenizer = PreTrainedTokenizerFast.from_pretrained(str(path), local_files_only=True)
    except Exception as err:  # a malformed tokenizer.json: the library's KeyError or TypeError says little
        problem = tokenizer_problem(path) or reason(err)
        raise ModelLoadError(f"{display_name(str(path))}: the tokenizer cannot be loaded: {problem}") from err
    try:
        context = _context_length(path)
    except Exception as err:  # a config.json of the wrong shape: the directory's fault
        raise ModelLoadError(f"{display_name(str(path))}: the model cannot be loaded: {reason(err)}") from err
    model = _weights(path, shapes, resolved, device, adapters) if weights else None
    rows = None if model is None else int(model.get_input_embeddings().num_embeddings)
    if rows is not None and len(tokenizer) > rows:
        # A token past the embeddings fails every request it is in (on a GPU, it breaks the device).
        raise ModelLoadError(
            f"{display_name(str(path))}: the tokenizer has {len(tokenizer)} tokens but the model embeds "
            f"only {rows}; resize the model's embeddings or use the tokenizer it was trained with"
        )
    if context <= 0:
        raise ModelLoadError(f"{display_name(str(path))}: config.json gives no max_position_embeddings")
    if tokenizer.chat_template is None:
        raise ModelLoadError(f"{display_name(str(path))}: the tokenizer has no chat template")
    _check_chat_template(path, tokenizer)
    return LoadedModel(
        name=served,
        path=path,
        model=model,
        tokenizer=tokenizer,
        context_length=context,
        eos_ids=_eos_ids(path, tokenizer),
        dtype=resolved,
        device=device,
        reasoning=_reasoning_markers(path),
        adapters=tuple(adapters),
    )


def _context_length(path: Path) -> int:
    """The context length ``path``'s config.json gives (0 when none); a config that nests it (a
    multimodal model's ``text_config``) is read by transformers' own class for it."""
    data = json.loads(read_capped(path / "config.json", MAX_META_BYTES))
    if not isinstance(data, dict):
        raise ValueError("config.json is not a JSON object")
    value = data.get("max_position_embeddings")
    if value is None:
        from transformers import AutoConfig

        value = getattr(AutoConfig.from_pretrained(str(path), local_files_only=True), "max_position_embeddings", 0)
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"max_position_embeddings is {value!r}, not a whole number")
    return value


def _weights(path: Path, shapes: Shapes, dtype: str, device: str, adapters: Mapping[str, Path]) -> Any:
    """The model of ``path`` in ``dtype`` on ``device``, ready for inference, with ``adapters``; the
    weights (``shapes``) must be the model config.json describes, every tensor of it and no other."""
    import torch
    from transformers import AutoModelForCausalLM

    if dtype == "int8":
        from engine.serve.quantize import float_dtype

        load_dtype = float_dtype()
    else:
        load_dtype = torch.bfloat16 if dtype == "bf16" else torch.float32
    check_model_fits(path, shapes)
    if quantized_by_bitsandbytes(path):
        settle_bitsandbytes(True, model=str(path))
    try:
        # (A tensor of the wrong shape is in the loading info, as a missing one is, instead of an error
        # that points at a report the quiet loader never shows.)
        loaded: Any = AutoModelForCausalLM.from_pretrained(
            str(path), local_files_only=True, dtype=load_dtype, output_loading_info=True, ignore_mismatched_sizes=True
        )
    except Exception as err:  # a truncated safetensors file, a config.json of the wrong shape: the directory's fault
        said = reason(err)
        if "above report" in said:  # a weight transformers cannot convert: its report is a log line, never shown
            said = "its weights cannot be converted to the model config.json describes"
        raise ModelLoadError(f"{display_name(str(path))}: the model cannot be loaded: {said}") from err
    model, info = loaded
    check_loading_info(path, info)
    model.to(device)
    model.eval()
    check_finite_weights(path, model)  # before int8 quantization, which fails on a NaN at every request
    if dtype == "int8":
        from engine.serve.quantize import quantize_int8

        quantize_int8(model)
        from engine.serve.attention import use_decode_attention

        use_decode_attention(model)
    if adapters:
        model = _with_adapters(model, adapters, device)
    return model


def _check_chat_template(path: Path, tokenizer: Any) -> None:
    """Raise ModelLoadError when the chat template renders neither a lone user message nor one after a
    system message: every chat request would fail."""
    conversations = (
        [{"role": "user", "content": "hi"}],
        [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
    )
    problem: BaseException | None = None
    for messages in conversations:
        try:
            tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        except Exception as err:  # jinja errors, a raise_exception() in the template
            problem = problem or err
        else:
            return
    assert problem is not None
    raise ModelLoadError(f"{display_name(str(path))}: the tokenizer's chat template does not render: {reason(problem)}")


def _with_adapters(model: Any, adapters: Mapping[str, Path], device: str) -> Any:
    """``model`` with PEFT LoRA ``adapters`` (served id: directory) loaded on ``device``. Raises
    ModelLoadError for an adapter that does not load or whose weights are not all finite numbers."""
    from peft import PeftModel

    peft_model: Any = None
    # (PEFT wraps the base model's tensors, which are checked already: only each adapter's own are new.)
    seen = {id(tensor) for tensor in [*model.parameters(), *model.buffers()]}
    for adapter, adapter_dir in adapters.items():
        try:
            # (PEFT would load an adapter's weights onto a GPU whenever there is one, whatever the device.)
            if peft_model is None:
                peft_model = PeftModel.from_pretrained(
                    model, str(adapter_dir), adapter_name=adapter, is_trainable=False, torch_device=device
                )
            else:
                peft_model.load_adapter(str(adapter_dir), adapter_name=adapter, is_trainable=False, torch_device=device)
        except Exception as err:  # a junk adapter_config.json: KeyError, TypeError, ValueError...
            raise ModelLoadError(f"an adapter cannot be loaded: {reason(err)}") from err
        new = [
            (name, tensor)
            for name, tensor in [*peft_model.named_parameters(), *peft_model.named_buffers()]
            if id(tensor) not in seen
        ]
        seen.update(id(tensor) for _, tensor in new)
        name = first_not_finite(new)
        if name is not None:
            raise ModelLoadError(
                f"--adapter {adapter}={display_name(str(adapter_dir))}: the adapter cannot be loaded: "
                + NOT_FINITE.format(named(name))
            )
    peft_model.eval()
    return peft_model


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def weight_bytes(loaded: LoadedModel) -> int:
    """The bytes of weights one decode step reads: every matrix but the input embedding, of which it
    reads one row per token (what bounds decoding speed by memory bandwidth)."""
    model = loaded.model
    embedding = model.get_input_embeddings().weight
    # int8 layers prepacked for FBGEMM hold their weights outside parameters and buffers
    total = sum(int(getattr(module, "weight_bytes", 0)) for module in model.modules())
    for tensor in [*model.parameters(), *model.buffers()]:
        if tensor is not embedding and tensor.dim() >= 1 and (tensor.is_floating_point() or tensor.dtype.itemsize == 1):
            total += tensor.numel() * tensor.element_size()
    return total
