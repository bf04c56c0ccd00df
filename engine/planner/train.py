"""The planner adapter: a PEFT LoRA adapter on the shipped base that writes plans.

Each generated training case (held-out ids never) becomes the chat prompt (system, then the
workspace view and the request) and, as the assistant turn, the gold plan in canonical compact
JSON and the end of text; the loss is on the answer only. Training runs under the transformers
``Trainer`` (so ``torchrun`` and ``accelerate launch`` scale it out), in bfloat16 autocast on a
CPU that has it, and stops cleanly so that the whole command (making the cases, training, saving)
ends within ``--time-limit`` minutes with the adapter saved: the documented command fits its
budget on a slow machine too. The output layer runs only where an answer token is predicted.

Besides the low-rank matrices of every attention and MLP projection, the adapter trains the
token embeddings and the output layer in full (PEFT's ``modules_to_save``): the base learned its
vocabulary on Python sources, and plans lean on tokens (file names, JSON keys) it rarely saw. The
adapter is saved in bfloat16.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from engine.errors import UsageError
from engine.events import EventSink
from engine.planner.cases import DEFAULT_COUNT, Case, generate_case, held_out
from engine.planner.prompt import SYSTEM_PROMPT, answer_text, entries_from_fixture, user_message, workspace_view
from engine.router.router_dir import RUN_FILE

PLANNER_META = "planner_meta.json"
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
FULL_MODULES = ("embed_tokens", "lm_head")
IGNORE_INDEX = -100
#: Seconds kept back from ``--time-limit`` for saving the adapter.
SAVE_MARGIN_S = 15.0


@dataclass(frozen=True)
class PlannerOptions:
    """How the planner adapter is trained."""

    base: Path
    out: Path
    count: int = DEFAULT_COUNT
    seed: int = 0
    max_steps: int | None = None
    epochs: float = 1.0
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 1e-3
    lora_r: int = 32
    lora_alpha: int = 64
    lora_dropout: float = 0.0
    full_embeddings: bool = True
    max_length: int = 1024
    time_limit_min: float | None = None
    save_steps: int = 200
    #: bfloat16 autocast; None: where the device multiplies in it natively (:func:`bf16_is_native`).
    bf16: bool | None = None


def bf16_is_native() -> bool:
    """Whether this machine multiplies in bfloat16 natively: a CUDA device that supports it, or a CPU
    with AVX-512 BF16 or AMX. Elsewhere (a CPU with AVX2 only) PyTorch emulates it, many times slower
    than float32, and training runs in float32."""
    if torch.cuda.is_available():
        return bool(torch.cuda.is_bf16_supported())
    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(bool(probe()) for probe in probes if callable(probe))


def case_prompt(case: Case) -> str:
    """The user turn of ``case``: its workspace view and its request."""
    return user_message(workspace_view(entries_from_fixture(case.fixture, case.today), case.today), case.request)


def training_cases(count: int, seed: int) -> Iterator[Case]:
    """The first ``count`` cases of ``seed`` that are not held out."""
    index = made = 0
    while made < count:
        case_id = f"plan_s{seed}_{index:05d}"
        if not held_out(case_id):
            yield generate_case(index, seed=seed)
            made += 1
        index += 1


def encode_prompt(tokenizer: Any, user: str) -> list[int]:
    """The chat prompt up to where the assistant's answer starts."""
    user = user.encode("utf-8", "replace").decode("utf-8")
    messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]
    encoded = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    ids = encoded["input_ids"] if isinstance(encoded, dict) or hasattr(encoded, "keys") else encoded
    return [int(i) for i in ids]


def encode_case(tokenizer: Any, case: Case, max_length: int) -> dict[str, list[int]] | None:
    """Input ids and labels (answer only) of ``case``; None when it does not fit ``max_length``."""
    prompt = encode_prompt(tokenizer, case_prompt(case))
    answer = [int(i) for i in tokenizer(answer_text(case.plan), add_special_tokens=False)["input_ids"]]
    answer.append(int(tokenizer.eos_token_id))
    if len(prompt) + len(answer) > max_length:
        return None
    return {"input_ids": prompt + answer, "labels": [IGNORE_INDEX] * len(prompt) + answer}


def _answer_trainer(schedule: ClockCosine | None = None) -> type:
    """A ``Trainer`` whose loss computes the output layer on answer positions only.

    A prompt is several times longer than its answer (about 7x on generated cases) and carries no
    loss, yet the output layer (vocabulary by hidden size) is a large share of a small model's work
    per token: the model is asked for the logits of the positions that predict an answer token
    (``logits_to_keep``), and the loss is their cross-entropy, normalised like the ``Trainer``'s
    own (by the answer tokens of the whole accumulated batch, across processes). Measured here,
    a step takes about 10% less time.
    """
    from transformers import Trainer

    class AnswerLossTrainer(Trainer):
        loss_is_scaled_for_ga = True

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:  # fmt: skip
            inputs = dict(inputs)
            labels = inputs.pop("labels")
            target = labels[:, 1:]
            # Position t predicts token t + 1: keep the positions some row of the batch has an answer after.
            keep = (target != IGNORE_INDEX).any(dim=0).nonzero().squeeze(-1)
            outputs = model(**inputs, logits_to_keep=keep)
            logits = outputs.logits.float()
            chosen = target[:, keep]
            total = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), chosen.reshape(-1), ignore_index=IGNORE_INDEX, reduction="sum"
            )
            if num_items_in_batch is None:
                count = (chosen != IGNORE_INDEX).sum().clamp(min=1)
                loss = total / count / getattr(self, "current_gradient_accumulation_steps", 1)
            else:
                loss = total / num_items_in_batch
                if self.args.average_tokens_across_devices:
                    loss = loss * self.accelerator.num_processes
            return (loss, outputs) if return_outputs else loss

        def create_scheduler(self, num_training_steps: int, optimizer: Any = None) -> Any:
            chosen = optimizer if optimizer is not None else self.optimizer
            if schedule is None or self.lr_scheduler is not None or chosen is None:
                return super().create_scheduler(num_training_steps, optimizer)
            # A plain function, so that a checkpoint keeps no state of the schedule: a resumed run
            # follows its own clock (its own --time-limit), from the step it resumes at.
            self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(chosen, lambda step: schedule(step))
            self._created_lr_scheduler = True
            return self.lr_scheduler

    return AnswerLossTrainer


class ClockCosine:
    """The learning-rate factor of a step: a linear warm-up, then a cosine down to zero at the end of
    the steps or at ``deadline`` (a ``clock`` time), whichever is further along.

    Without a deadline this is the ``Trainer``'s own ``cosine`` schedule. With one, a run that the
    time limit will end before its last step still ends annealed, on a slow machine as on a fast
    one: its rate follows the clock once the clock is ahead of the steps, and reaches zero when the
    limit stops the run. Only the steps after the warm-up follow the clock.
    """

    def __init__(
        self, warmup: int, total: int, deadline: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.warmup = max(0, warmup)
        self.total = max(total, self.warmup + 1)
        self.deadline = deadline
        self.clock = clock
        self.decay_started: float | None = None
        #: The step from which the clock has been ahead of the steps, if it is (None while the steps lead).
        self.by_clock_at: int | None = None

    def progress(self, step: int) -> float:
        """How far along the cosine ``step`` is, from 0 to 1."""
        by_steps = (step - self.warmup) / (self.total - self.warmup)
        if self.deadline is None:
            return min(1.0, by_steps)
        now = self.clock()
        if self.decay_started is None:
            self.decay_started = now
        span = self.deadline - self.decay_started
        by_clock = 1.0 if span <= 0 else (now - self.decay_started) / span
        # The clock leads when it is more than a step ahead; by_clock_at is where its last lead began.
        if by_clock <= by_steps + 1 / (self.total - self.warmup):
            self.by_clock_at = None
        elif self.by_clock_at is None:
            self.by_clock_at = step
        return min(1.0, max(by_steps, by_clock))

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return step / self.warmup
        return 0.5 * (1.0 + math.cos(math.pi * self.progress(step)))


class _TimeLimit:
    """A trainer callback that ends training at ``deadline`` (a ``time.monotonic`` time; the adapter is still saved)."""

    def __init__(self, deadline: float | None) -> None:
        from transformers import TrainerCallback

        class Callback(TrainerCallback):
            hit = False

            def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
                if deadline is not None and time.monotonic() > deadline:
                    Callback.hit = True
                    control.should_training_stop = True
                return control

        self.callback = Callback()

    @property
    def hit(self) -> bool:
        return bool(self.callback.hit)


def resume_settings(options: PlannerOptions) -> dict[str, Any]:
    """What the checkpoints of a run depend on, by the option that sets each: a run is resumed only
    with the same (:func:`engine.router.router_dir.resume_point`)."""
    return {"stage": "planner", "--base": str(options.base.absolute()), "--count": options.count,
            "--seed": options.seed, "--batch-size": options.batch_size, "--grad-accum": options.grad_accum,
            "--lr": options.lr, "--lora-r": options.lora_r, "--lora-alpha": options.lora_alpha,
            "--lora-dropout": options.lora_dropout, "--max-length": options.max_length}  # fmt: skip


def train_planner(
    options: PlannerOptions, sink: EventSink, stop: Any, *, staging: Path, command: str = "", resume: Path | None = None
) -> dict[str, Any]:
    """Train the adapter into ``staging`` (from the checkpoint ``resume``); return a summary (steps,
    loss, seconds, rows, options).

    Checkpoints go to ``staging/checkpoints``. When ``stop`` ends the run, the trainer saves one
    there and nothing else is written: the summary says ``interrupted`` and names it
    (``checkpoint``). ``command`` (the command line that ran it) is kept in ``planner_meta.json``
    with the summary."""
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import DataCollatorForSeq2Seq, TrainingArguments
    from transformers.trainer_callback import PrinterCallback

    from engine.router.lora import load_base
    from engine.tinyllm.progress import EventCallback

    started = time.monotonic()
    torch.manual_seed(options.seed)
    cuda = torch.cuda.is_available()
    bf16 = bf16_is_native() if options.bf16 is None else options.bf16
    model, tokenizer = load_base(options.base, dtype=torch.float32)
    if tokenizer.eos_token_id is None:
        raise UsageError("the base model's tokenizer has no end-of-text token; a planner needs one")
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    targets = [name for name in DEFAULT_TARGETS if name in present]
    full = [name for name in FULL_MODULES if name in present] if options.full_embeddings else None
    config = LoraConfig(r=options.lora_r, lora_alpha=options.lora_alpha, lora_dropout=options.lora_dropout,
                        target_modules=targets, modules_to_save=full, task_type="CAUSAL_LM")  # fmt: skip
    model = get_peft_model(model, config)
    rows, skipped = [], 0
    for case in training_cases(options.count, options.seed):
        row = encode_case(tokenizer, case, options.max_length)
        if row is None:
            skipped += 1
        else:
            rows.append(row)
    if not rows:
        raise UsageError(f"no training case fits --max-length {options.max_length}")
    dataset = Dataset.from_dict({"input_ids": [r["input_ids"] for r in rows], "labels": [r["labels"] for r in rows]})
    per_step = options.batch_size * options.grad_accum
    max_steps = options.max_steps or max(1, math.ceil(len(rows) / per_step * options.epochs))
    warmup = max(1, min(50, max_steps // 20))
    args = TrainingArguments(
        output_dir=str(staging / "checkpoints"), max_steps=max_steps, per_device_train_batch_size=options.batch_size,
        gradient_accumulation_steps=options.grad_accum, learning_rate=options.lr, weight_decay=0.0,
        warmup_steps=warmup, lr_scheduler_type="cosine", logging_steps=1,
        save_strategy="steps", save_steps=options.save_steps, save_total_limit=1, bf16=bf16,
        seed=options.seed, data_seed=options.seed, use_cpu=not cuda, report_to="none", disable_tqdm=True,
        train_sampling_strategy="group_by_length", include_num_input_tokens_seen="non_padding",
        remove_unused_columns=False,
        log_level="error",
    )  # fmt: skip
    collator = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=IGNORE_INDEX)
    events = EventCallback("planner", sink, stop)
    # The limit holds for the whole command: what making the cases took is spent, and saving needs a moment.
    deadline = started + options.time_limit_min * 60 - SAVE_MARGIN_S if options.time_limit_min else None
    limit = _TimeLimit(deadline)
    schedule = ClockCosine(warmup, max_steps, deadline)
    trainer = _answer_trainer(schedule)(model=model, args=args, train_dataset=dataset, data_collator=collator,
                                        callbacks=[events, limit.callback])  # fmt: skip
    trainer.remove_callback(PrinterCallback)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    sink({"type": "train_start", "stage": "planner", "preset": f"LoRA r={options.lora_r} on {options.base.name}",
          "out": str(options.out), "parameters": trainable, "max_steps": max_steps, "device": "cuda" if cuda else "cpu",
          "dtype": "bfloat16" if bf16 else "float32", "world_size": 1,
          "resumed_from": None if resume is None else str(resume)})  # fmt: skip
    trainer.train(resume_from_checkpoint=None if resume is None else str(resume))
    record = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()}
    summary = {
        "steps": trainer.state.global_step,
        "planned_steps": max_steps,
        "stopped_by_time_limit": limit.hit,
        "schedule_followed_the_clock_from_step": schedule.by_clock_at,  # to the end; None: the steps led
        "interrupted": events.interrupted,
        "last_loss": events.losses[-1][1] if events.losses else None,
        "seconds": round(time.monotonic() - started, 1),
        "trainable_parameters": trainable,
        "dtype": "bfloat16" if bf16 else "float32",
        "training_cases": len(rows),
        "skipped_too_long": skipped,
        "options": record,
    }
    if events.interrupted:
        # The trainer saved a checkpoint at this step: that is what --resume continues.
        summary["checkpoint"] = str(staging / "checkpoints" / f"checkpoint-{trainer.state.global_step}")
        return summary
    model = model.to(torch.bfloat16)
    model.save_pretrained(str(staging))
    tokenizer.save_pretrained(str(staging))
    # The adapter is all that ships: no optimizer state, and no card of PEFT's (ours is written from this run).
    shutil.rmtree(staging / "checkpoints", ignore_errors=True)
    (staging / RUN_FILE).unlink(missing_ok=True)
    (staging / "README.md").unlink(missing_ok=True)
    meta = {
        "kind": "planner",
        "base": str(options.base),
        "system": SYSTEM_PROMPT,
        "command": command,
        "summary": summary,
    }
    (staging / PLANNER_META).write_text(json.dumps(meta, indent=2) + "\n")
    return summary
