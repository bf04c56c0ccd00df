"""The LoRA router: a PEFT adapter on a causal LM that scores the 28 candidate decisions.

The base is the TinyLLM checkpoint, or any local Hugging Face causal LM directory (a Qwen
checkpoint a user already has). Each sample becomes the chat prompt (system, ``Task: ...``) and,
as the assistant turn, the candidate's decision JSON without a reason, then the end of text; the
loss is on those answer tokens only. To route, the prompt runs once, its key/value cache is
copied to the 28 candidates, and each candidate's log-likelihood is summed over its tokens; the
softmax over the 28 sums is the router's probability of each, so the answer is always one of them
(the reason is templated from the probabilities).

With ``use_4bit`` the base is loaded in 4-bit NF4 by bitsandbytes (QLoRA); it trains and scores on
the CPU too. The adapter directory holds the adapter in PEFT format, the tokenizer files,
``router_lora_meta.json`` (base, data hashes, label sources, options, metrics, the command) and
``router.json``, so ``routeshell route --router DIR`` and profiles load it like any router.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from engine.bitsandbytes_gate import quantized_by_bitsandbytes, settle_bitsandbytes
from engine.errors import UsageError
from engine.events import EventSink
from engine.names import display_line, display_name
from engine.router.adapter_files import check_adapter_dir, check_adapter_weights, check_base_files
from engine.router.candidates import Candidate, candidates
from engine.router.labels import SYSTEM_PROMPT, LabelledTask
from engine.router.router_dir import ADAPTER_META, adapter_base, check_base_dir, read_adapter_meta
from engine.router.tasks import TASK_PREFIX
from engine.serve.model_dir import named

#: Every attention and MLP projection of a Llama or Qwen block.
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
IGNORE_INDEX = -100


@dataclass(frozen=True)
class LoraOptions:
    """How the adapter is trained: the original toolchain's options and defaults."""

    base: Path
    out: Path
    epochs: float = 1.0
    max_steps: int | None = None
    batch_size: int = 1
    grad_accum: int = 8
    lr: float = 1e-4
    weight_decay: float = 0.0
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] = DEFAULT_TARGETS
    max_length: int = 512
    save_steps: int = 200
    gradient_checkpointing: bool = False
    use_4bit: bool = False
    bf16: bool = False
    fp16: bool = False
    seed: int = 0


def decision_text(candidate: Candidate) -> str:
    """The assistant turn the adapter learns and scores: the candidate's decision JSON, no reason."""
    return json.dumps(candidate.document())


def _as_ids(encoded: Any) -> list[int]:
    if isinstance(encoded, dict) or hasattr(encoded, "keys"):
        encoded = encoded["input_ids"]
    return [int(token) for token in encoded]


class PromptEncoder:
    """Token ids of prompts and candidate answers for one tokenizer."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        if tokenizer.eos_token_id is None:
            raise UsageError("the base model's tokenizer has no end-of-text token; a router needs one")
        self.answers = {c.key: self.answer(c) for c in candidates()}

    def prompt(self, user: str, system: str = SYSTEM_PROMPT) -> list[int]:
        """The chat prompt up to where the assistant's answer starts."""
        # Text from files may hold lone surrogates, which a tokenizer cannot encode.
        user = user.encode("utf-8", "replace").decode("utf-8")
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        return _as_ids(self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True))

    def answer(self, candidate: Candidate) -> list[int]:
        """The candidate's answer tokens and the end of text."""
        ids = _as_ids(self.tokenizer(decision_text(candidate), add_special_tokens=False))
        return [*ids, int(self.tokenizer.eos_token_id)]


def training_rows(
    samples: Sequence[LabelledTask], encoder: PromptEncoder, max_length: int
) -> list[dict[str, list[int]]]:
    """Features of ``samples``: the prompt (cut from the left when too long) and the answer, with
    labels on the answer only."""
    rows = []
    for sample in samples:
        answer = encoder.answers[sample.label.key]
        prompt = encoder.prompt(TASK_PREFIX + sample.task.text, sample.system or SYSTEM_PROMPT)
        room = max_length - len(answer)
        if room < 1:
            raise UsageError(f"--max-length {max_length} leaves no room for a decision of {len(answer)} tokens")
        prompt = prompt[-room:]
        rows.append({"input_ids": prompt + answer, "labels": [IGNORE_INDEX] * len(prompt) + answer})
    return rows


def load_base(base: Path, *, use_4bit: bool = False, dtype: torch.dtype = torch.float32) -> tuple[Any, Any]:
    """Load the base model and its tokenizer from a local directory; one clear error when it cannot be
    (:class:`~engine.bitsandbytes_gate.BitsandbytesKeptOut` when it needs bitsandbytes, which this
    process keeps out)."""
    shown = display_name(str(base))
    check_base_dir(base)
    if use_4bit or quantized_by_bitsandbytes(base):
        settle_bitsandbytes(True, model=str(base))
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {"dtype": dtype}
    if use_4bit:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(  # type: ignore[no-untyped-call]
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype, bnb_4bit_use_double_quant=True
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(base), local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(str(base), local_files_only=True, **kwargs)
    except Exception as err:  # transformers, safetensors and bitsandbytes each raise their own kind
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UsageError(f"cannot load the base model in {shown}: {display_line(first[:200])}") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


class LoraModel:
    """A :class:`~engine.router.scored.CandidateModel` over a base with the router adapter."""

    kind = "lora"

    def __init__(self, model: Any, tokenizer: Any, meta: dict[str, Any]) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.encoder = PromptEncoder(tokenizer)
        self.meta = meta
        self.system = str(meta.get("system") or SYSTEM_PROMPT)
        # The 28 answers as a token trie: answers share most of their tokens ({"topology": ", the
        # roles, "max_rounds"), so each shared prefix is computed once. Node i holds one token; it
        # attends to the prompt and to its ancestors, at the position its depth gives it.
        nodes: dict[tuple[int, ...], int] = {}
        tokens: list[int] = []
        parents: list[int] = []
        depths: list[int] = []
        self._paths: list[list[int]] = []
        for c in candidates():
            answer = self.encoder.answers[c.key]
            path = []
            for depth in range(1, len(answer) + 1):
                prefix = tuple(answer[:depth])
                if prefix not in nodes:
                    nodes[prefix] = len(tokens)
                    tokens.append(answer[depth - 1])
                    parents.append(nodes[prefix[:-1]] if depth > 1 else -1)
                    depths.append(depth - 1)
                path.append(nodes[prefix])
            self._paths.append(path)
        count = len(tokens)
        ancestry = torch.zeros(count, count, dtype=torch.bool)  # (N, N): node i may attend to node j
        for i in range(count):
            j = i
            while j >= 0:
                ancestry[i, j] = True
                j = parents[j]
        self._tokens = torch.tensor([tokens])  # (1, N)
        self._parents = torch.tensor(parents)  # (N,)
        self._depths = torch.tensor(depths)  # (N,)
        self._ancestry = ancestry
        self._longest = max(depths) + 1

    @torch.inference_mode()
    def log_likelihoods(self, text: str) -> torch.Tensor:
        """The summed log-probability of each candidate's answer after the prompt of ``text``: (C,).

        One pass over the prompt, then one pass over the answers' token trie (a tree attention
        mask over the prompt's key/value cache).
        """
        from transformers import DynamicCache

        prompt = self.encoder.prompt(TASK_PREFIX + text, self.system)
        limit = int(getattr(self.model.config, "max_position_embeddings", 512)) - self._longest
        prompt = prompt[-limit:]
        # The inputs go where the model is: a router just trained on a GPU scores its held-out tasks there.
        device = self.model.get_input_embeddings().weight.device
        tokens, parents, depths = self._tokens.to(device), self._parents.to(device), self._depths.to(device)
        cache = DynamicCache(config=self.model.config)
        out = self.model(input_ids=torch.tensor([prompt], device=device), past_key_values=cache, use_cache=True)
        count = tokens.shape[1]
        seen = torch.ones(count, len(prompt), dtype=torch.bool, device=device)
        allowed = torch.cat([seen, self._ancestry.to(device)], dim=1)  # (N, P+N)
        blocked = torch.finfo(torch.float32).min
        mask = torch.zeros(allowed.shape, device=device).masked_fill(~allowed, blocked)[None, None]
        positions = (len(prompt) + depths)[None]  # (1, N)
        tree = self.model(input_ids=tokens, past_key_values=cache, attention_mask=mask,
                          position_ids=positions, use_cache=True)  # fmt: skip
        # The distribution each node's token was drawn from: its parent's output, or the prompt's last.
        before = torch.cat([out.logits[0, -1:], tree.logits[0]]).float()  # (1+N, V)
        log_p = torch.log_softmax(before[parents + 1], -1)  # (N, V)
        node_log_p = log_p.gather(1, tokens[0, :, None])[:, 0].cpu()  # (N,)
        return torch.stack([node_log_p[path].sum() for path in self._paths])

    def probabilities(self, texts: Sequence[str]) -> list[list[float]]:
        return [[float(p) for p in torch.softmax(self.log_likelihoods(text), -1)] for text in texts]

    @classmethod
    def load(cls, directory: Path, *, base: Path | None = None, use_4bit: bool | None = None) -> LoraModel:
        """Load the adapter in ``directory`` onto its base (``base`` overrides the recorded one)."""
        # What it needs is read before peft is imported (see engine.bitsandbytes_gate).
        meta = read_adapter_meta(directory)
        base_dir, quantized = adapter_base(meta, base=base, use_4bit=use_4bit)
        model, tokenizer = load_base(base_dir, use_4bit=quantized)
        from peft import PeftModel

        try:
            adapted = PeftModel.from_pretrained(model, str(directory), adapter_name="router")
        except Exception as err:  # peft raises ValueError, KeyError or safetensors' own errors
            raise UsageError(f"cannot load the router adapter in {display_name(str(directory))}: {err}") from None
        return cls(adapted, tokenizer, meta)


def train_lora_router(
    samples: Sequence[LabelledTask],
    options: LoraOptions,
    sink: EventSink,
    stop: Any,
    *,
    staging: Path,
    resume: Path | None = None,
) -> tuple[LoraModel | None, dict[str, Any]]:
    """Train the adapter on ``samples`` in ``staging``; write the adapter and the tokenizer there.

    Checkpoints go to ``staging/checkpoints`` every ``save_steps``; training continues the
    checkpoint ``resume`` when given (:func:`engine.router.router_dir.resume_point` finds it).
    Returns the trained router (None when ``stop`` ended the run: the checkpoint it left is what
    ``resume`` continues) and a summary (steps, last loss, seconds, options).
    """
    started = time.monotonic()
    torch.manual_seed(options.seed)
    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if options.bf16 else torch.float16 if options.fp16 and cuda else torch.float32
    model, tokenizer = load_base(options.base, use_4bit=options.use_4bit, dtype=dtype)
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments
    from transformers.trainer_callback import PrinterCallback

    from engine.tinyllm.progress import EventCallback

    if options.use_4bit:
        model = prepare_model_for_kbit_training(  # type: ignore[no-untyped-call]
            model, use_gradient_checkpointing=options.gradient_checkpointing
        )
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    targets = [name for name in options.target_modules if name in present]
    if not targets:
        raise UsageError(f"--target-modules {','.join(options.target_modules)}: the base has none of them")
    config = LoraConfig(r=options.lora_r, lora_alpha=options.lora_alpha, lora_dropout=options.lora_dropout,
                        target_modules=targets, task_type="CAUSAL_LM")  # fmt: skip
    model = get_peft_model(model, config)
    if options.gradient_checkpointing:
        model.enable_input_require_grads()
    rows = training_rows(samples, PromptEncoder(tokenizer), options.max_length)
    dataset = Dataset.from_dict({"input_ids": [r["input_ids"] for r in rows], "labels": [r["labels"] for r in rows]})
    max_steps = options.max_steps or max(1, math.ceil(len(rows) / (options.batch_size * options.grad_accum)
                                                      * options.epochs))  # fmt: skip
    checkpoints = staging / "checkpoints"
    args = TrainingArguments(
        output_dir=str(checkpoints), max_steps=max_steps, per_device_train_batch_size=options.batch_size,
        gradient_accumulation_steps=options.grad_accum, learning_rate=options.lr, weight_decay=options.weight_decay,
        warmup_steps=max(1, min(50, max_steps // 20)), lr_scheduler_type="cosine", logging_steps=1,
        save_strategy="steps", save_steps=options.save_steps, save_total_limit=1, bf16=options.bf16,
        fp16=options.fp16 and cuda, gradient_checkpointing=options.gradient_checkpointing and not options.use_4bit,
        seed=options.seed, data_seed=options.seed, use_cpu=not cuda, report_to="none", disable_tqdm=True,
        include_num_input_tokens_seen="non_padding", remove_unused_columns=False, log_level="error",
    )  # fmt: skip
    collator = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=IGNORE_INDEX)
    callback = EventCallback("router", sink, stop)
    trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=collator, callbacks=[callback])
    trainer.remove_callback(PrinterCallback)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    last = None if resume is None else str(resume)
    sink({"type": "train_start", "stage": "router", "preset": f"LoRA r={options.lora_r} on {options.base.name}",
          "out": str(options.out), "parameters": trainable, "max_steps": max_steps, "device": "cuda" if cuda else "cpu",
          "dtype": "nf4" if options.use_4bit else str(dtype).removeprefix("torch."), "world_size": 1,
          "resumed_from": last})  # fmt: skip
    trainer.train(resume_from_checkpoint=last)
    options_record = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()}
    summary = {"steps": trainer.state.global_step, "last_loss": callback.losses[-1][1] if callback.losses else None,
               "seconds": round(time.monotonic() - started, 1), "trainable_parameters": trainable,
               "training_samples": len(rows), "options": options_record}  # fmt: skip
    if callback.interrupted:
        return None, summary
    model.save_pretrained(str(staging))
    tokenizer.save_pretrained(str(staging))
    meta = {"base": str(options.base.absolute()), "system": SYSTEM_PROMPT, "options": options_record}
    return LoraModel(model, tokenizer, meta), summary


def write_meta(directory: Path, meta: dict[str, Any]) -> None:
    """Write ``router_lora_meta.json`` into ``directory``."""
    (directory / ADAPTER_META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def merged_base(base: Path | None, adapter: Path) -> Path:
    """The base ``adapter`` is merged into: ``base``, or the one its ``router_lora_meta.json`` records.

    Raises :class:`UsageError` (one line) for an adapter or base that cannot be read as it should
    (:mod:`engine.router.adapter_files`), before any library opens a file of either."""
    check_adapter_dir(adapter)
    if base is None:
        try:
            base, _ = adapter_base(read_adapter_meta(adapter))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            raise UsageError(f"{display_name(str(adapter))} does not record its base; give --base DIR") from None
    check_base_dir(base)
    check_base_files(base)
    return base


def merge_adapter(base: Path | None, adapter: Path, staging: Path) -> dict[str, Any]:
    """Merge the LoRA ``adapter`` into ``base`` and save the plain checkpoint into ``staging``.

    ``base`` defaults to the one the adapter's ``router_lora_meta.json`` records. The result loads
    with ``AutoModelForCausalLM.from_pretrained`` and needs no PEFT (vLLM and other servers load
    it). Raises :class:`UsageError` for an adapter or base that is damaged, and for merged weights
    that are not finite numbers (nothing is saved then). Returns what ``merged_from.json`` records.
    """
    base = merged_base(base, adapter)
    check_adapter_weights(adapter)
    model, tokenizer = load_base(base)
    from peft import PeftModel

    from engine.serve.finite_weights import first_not_finite

    try:
        merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    except Exception as err:  # peft raises ValueError, KeyError or safetensors' own errors
        raise UsageError(f"cannot apply the adapter in {display_name(str(adapter))} to {display_name(str(base))}: "
                         f"{display_line(str(err))[:200]}") from None  # fmt: skip
    # A finite adapter on a finite base can still overflow (a huge scale): such a model answers garbage.
    name = first_not_finite([*merged.named_parameters(), *merged.named_buffers()])
    if name is not None:
        raise UsageError(f"merging {display_name(str(adapter))} into {display_name(str(base))} gives values that "
                         f"are not finite numbers in {named(name)}; nothing was written")  # fmt: skip
    merged.save_pretrained(str(staging), safe_serialization=True)
    tokenizer.save_pretrained(str(staging))
    record = {"base": str(base.absolute()), "adapter": str(adapter.absolute()),
              "parameters": sum(p.numel() for p in merged.parameters())}  # fmt: skip
    (staging / "merged_from.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record
