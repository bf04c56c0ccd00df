"""Pretraining and SFT of TinyLLM through transformers' ``Trainer``.

One function per verb: :func:`train_tokenizer_stage`, :func:`train_model_stage` (pretrain, sft,
reasoning) and :func:`train_all`, which chains tokenizer, pretraining and SFT. The trainer does
the loop, so the same code runs on one CPU, under ``torchrun`` or ``accelerate launch`` on many
processes, and on a GPU in bf16. Every stage reports through an :data:`EventSink` and stops
cleanly when its :class:`StopRequest` is set, leaving a checkpoint that ``resume`` continues
from exactly (the trainer restores the optimizer, scheduler, RNG and data position).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.events import EventSink
from engine.model_events import CheckpointEvent, TrainDoneEvent, TrainStage, TrainStartEvent
from engine.names import display_line, display_name
from engine.tinyllm.errors import TrainFailure, TrainInputError
from engine.tinyllm.options import DEFAULT_LR, PRETRAIN_SEQ_LEN, TrainOptions, check_base, disk_problem, pick_device
from engine.tinyllm.presets import ModelPreset, preset_from_dict, preset_to_dict, resolve_preset
from engine.tinyllm.run_dir import (
    CHECKPOINTS,
    ModelCard,
    check_checkpoint_shape,
    last_checkpoint,
    prepare_out_dir,
    read_marker,
    render_model_card,
    write_atomic,
    write_marker,
)
from engine.tinyllm.stage_data import DataSpec, pretraining_splits, stage_features
from engine.tinyllm.stopping import StopRequest, perplexity

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, TrainingArguments

TOKENIZER_DIR = "tokenizer"
#: How many validation sequences each evaluation reads, and test sequences the final one reads.
EVAL_SEQUENCES = 128
TEST_SEQUENCES = 512


@dataclass(frozen=True)
class StageOutcome:
    """How a stage ended: where its model (or last checkpoint) is, and whether it was interrupted."""

    stage: TrainStage
    path: Path
    interrupted: bool


def end_process_group() -> None:
    """Leave the process group of a multi-process run, if this process joined one.

    Without it a worker can abort at exit ("terminate called without an active exception") while
    the gloo threads are torn down, and the launcher reports the whole run as failed.
    """
    import sys

    if "torch" not in sys.modules:
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


# -- the tokenizer ---------------------------------------------------------------------------------


def train_tokenizer_stage(options: TrainOptions, sink: EventSink, out: Path | None = None) -> StageOutcome:
    """Train the SentencePiece tokenizer on the pretraining corpus into ``out`` (default ``--out``)."""
    from engine.tinyllm.tokenizer import train_tokenizer

    started = time.monotonic()
    target = out or options.out
    preset = resolve_preset(options.preset, options.config)
    prepare_out_dir(target, resume=options.resume and read_marker(target) is not None, stage="tokenizer")
    splits = pretraining_splits(options.data_spec("tokenizer"), "tokenizer", sink)
    summary = train_tokenizer((doc.text for doc in splits.train), target, vocab_size=preset.vocab_size)
    write_marker(target, {"stage": "tokenizer", "status": "done", "vocab_size": summary.vocab_size})
    _final(sink, "tokenizer", 0, target)
    _done(sink, "tokenizer", target, 0, None, None, time.monotonic() - started, interrupted=False)
    return StageOutcome("tokenizer", target, interrupted=False)


def _final(sink: EventSink, stage: TrainStage, step: int, path: Path) -> None:
    event: CheckpointEvent = {"type": "checkpoint", "stage": stage, "step": step, "path": str(path), "final": True}
    sink(event)


def _done(
    sink: EventSink,
    stage: TrainStage,
    path: Path,
    steps: int,
    train_loss: float | None,
    eval_loss: float | None,
    seconds: float,
    *,
    interrupted: bool,
) -> None:
    event: TrainDoneEvent = {
        "type": "train_done",
        "stage": stage,
        "path": str(path),
        "steps": steps,
        "train_loss": train_loss,
        "eval_loss": eval_loss,
        "perplexity": None if eval_loss is None else perplexity(eval_loss),
        "elapsed_s": round(seconds, 3),
        "interrupted": interrupted,
    }
    sink(event)


# -- pretraining and SFT ---------------------------------------------------------------------------


def _load_tokenizer(path: Path) -> PreTrainedTokenizerBase:
    from engine.tinyllm.tokenizer import load_tokenizer

    return load_tokenizer(path)


def _load_base(base: Path) -> tuple[PreTrainedModel, ModelPreset]:
    """Load the model an SFT stage starts from; a corrupt or foreign directory is one clear line."""
    from transformers import AutoModelForCausalLM

    shown = display_name(str(base))
    marker = read_marker(base) or {}
    try:
        model = AutoModelForCausalLM.from_pretrained(str(base))
    except Exception as err:  # safetensors, torch and transformers each raise their own kind for a bad file
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TrainInputError(
            f"cannot load the model in {shown}: {display_line(first[:200])} (is it a complete checkpoint?)"
        ) from err
    preset = preset_from_dict(marker["preset"]) if isinstance(marker.get("preset"), dict) else None
    if preset is None:
        config = model.config
        preset = ModelPreset(
            name="custom",
            hidden_size=config.hidden_size,
            num_layers=config.num_hidden_layers,
            num_heads=config.num_attention_heads,
            num_kv_heads=config.num_key_value_heads,
            intermediate_size=config.intermediate_size,
            vocab_size=config.vocab_size,
            context_length=config.max_position_embeddings,
        )
    return model, preset


def _spread(dataset: Any, count: int) -> Any:
    """Return at most ``count`` rows of ``dataset``, evenly spaced, the same ones on every run."""
    size = len(dataset)
    return dataset if size <= count else dataset.select([i * size // count for i in range(count)])


def _training_args(options: TrainOptions, device: str, bf16: bool, world: int) -> TrainingArguments:
    """Return the trainer's arguments for a stage; ``max_steps`` is set once the data is known."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(options.out / CHECKPOINTS),
        max_steps=1,
        per_device_train_batch_size=options.batch_size,
        per_device_eval_batch_size=options.batch_size,
        gradient_accumulation_steps=options.grad_accum,
        learning_rate=options.lr or DEFAULT_LR[options.stage],
        weight_decay=0.01,
        max_grad_norm=1.0,
        lr_scheduler_type="cosine",
        logging_steps=1,
        eval_strategy="steps",
        eval_steps=options.eval_every,
        eval_on_start=True,  # the chart starts from the untrained model's validation loss
        save_strategy="steps",
        save_steps=options.save_every,
        save_total_limit=2,
        bf16=bf16,
        optim="adamw_torch_fused",
        seed=options.seed,
        data_seed=options.seed,
        use_cpu=device == "cpu",
        ddp_backend="gloo" if device == "cpu" and world > 1 else None,
        report_to="none",
        disable_tqdm=True,
        include_num_input_tokens_seen="non_padding",
        dataloader_num_workers=0,
        remove_unused_columns=False,
        log_level="error",
        log_level_replica="error",
        ddp_find_unused_parameters=False,
    )


def train_model_stage(options: TrainOptions, sink: EventSink, stop: StopRequest) -> StageOutcome:
    """Run one pretraining, SFT or reasoning stage into ``options.out``; return how it ended.

    Pretraining builds a fresh model from the preset (or continues ``--base``); SFT and
    reasoning start from ``--base``. The tokenizer comes from ``--tokenizer``, the base model, or
    ``OUT/tokenizer`` (trained there first when missing).
    """
    import torch
    from transformers import DataCollatorForSeq2Seq, LlamaForCausalLM, Trainer, default_data_collator
    from transformers.trainer_callback import PrinterCallback
    from transformers.trainer_utils import IntervalStrategy

    from engine.tinyllm.progress import EventCallback

    stage = options.stage
    started = time.monotonic()
    out = options.out
    check_base(stage, options.base)
    device, bf16 = pick_device(options.device)
    world = _world_size()
    args = _training_args(options, device, bf16, world)
    # The shape asked for, checked against a run to resume before anything is written.
    asked = None if options.base is not None else preset_to_dict(resolve_preset(options.preset, options.config))
    # The main process prepares (directory, tokenizer, cached features) while the others wait, then
    # they load what it made: the trainer's own barrier, a no-op with one process.
    with args.main_process_first(desc="output directory"):
        resume_from = (
            prepare_out_dir(out, resume=options.resume, stage=stage, preset=asked) if _is_main_process() else None
        )
        if _is_main_process() and read_marker(out) is None:
            # Marked before anything is written, so that a run stopped while preparing can resume.
            write_marker(out, {"stage": stage, "status": "preparing", "command": options.command})
    if resume_from is None and options.resume and not _is_main_process():
        resume_from = last_checkpoint(out)
    torch.manual_seed(options.seed)
    if options.base is not None:
        model, preset = _load_base(options.base)
        tokenizer_dir = options.tokenizer or options.base
    else:
        preset = resolve_preset(options.preset, options.config)
        tokenizer_dir = options.tokenizer or out / TOKENIZER_DIR
    with args.main_process_first(desc="tokenizer"):
        if options.base is None and options.tokenizer is None and not (tokenizer_dir / "tokenizer.json").is_file():
            train_tokenizer_stage(replace(options, resume=True), sink, out=tokenizer_dir)
        tokenizer = _load_tokenizer(tokenizer_dir)
    if options.base is None:
        preset = replace(preset, vocab_size=len(tokenizer))
        model = LlamaForCausalLM(preset.llama_config())
    context = preset.context_length
    seq_len = options.seq_len or (min(PRETRAIN_SEQ_LEN, context) if stage == "pretrain" else context)
    if seq_len > context:
        raise TrainInputError(f"--seq-len {seq_len} is longer than the model's context of {context} tokens")

    spec = options.data_spec(stage)
    with args.main_process_first(desc="features"):
        features = stage_features(stage, spec, tokenizer, tokenizer_dir, seq_len, options.cache, sink)
    train_set = features["train"]
    # Evaluations see a fixed sample of the held-out splits: the whole validation split of a
    # large corpus would cost more than the training steps between two evaluations.
    validation = _spread(features["validation"], EVAL_SEQUENCES)
    test = _spread(features["test"], TEST_SEQUENCES)

    per_step = options.batch_size * options.grad_accum * world
    steps_per_epoch = max(1, math.ceil(len(train_set) / per_step))
    max_steps = options.max_steps or max(1, math.ceil(steps_per_epoch * options.epochs))
    args.max_steps = max_steps
    args.warmup_steps = max(1, min(100, max_steps // 20))
    if not len(validation):
        # Too little data for a validation split (data_ready shows it): train without validation,
        # the start evaluation included, rather than fail on a missing eval set.
        args.eval_strategy = IntervalStrategy.NO
        args.eval_on_start = False
    checkpoints = out / CHECKPOINTS
    collator = (
        default_data_collator
        if stage == "pretrain"
        else DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100, pad_to_multiple_of=8)
    )
    callback = EventCallback(stage, sink, stop)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=validation if len(validation) else None,
        data_collator=collator,
        callbacks=[callback],
    )
    # Our events replace the trainer's own printing of every log line on stdout.
    trainer.remove_callback(PrinterCallback)
    parameters = sum(p.numel() for p in model.parameters())
    if resume_from is not None:
        check_checkpoint_shape(resume_from, model.config.to_dict())
    if _is_main_process():
        _mark(out, stage, "running", preset, options)
        begin: TrainStartEvent = {
            "type": "train_start",
            "stage": stage,
            "preset": preset.name,
            "out": str(out),
            "parameters": parameters,
            "max_steps": max_steps,
            "device": device,
            "dtype": "bfloat16" if bf16 else "float32",
            "world_size": world,
            "resumed_from": None if resume_from is None else str(resume_from),
        }
        sink(begin)
    try:
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    except Exception as err:
        problem = disk_problem(err)
        if problem is None:
            raise
        raise TrainFailure(
            f"training stopped: {problem} while writing under {display_name(str(out))} "
            "(make room, then run the same command with --resume)"
        ) from err
    steps = trainer.state.global_step
    last_loss = callback.losses[-1][1] if callback.losses else None
    if callback.interrupted:
        if _is_main_process():
            _mark(out, stage, "interrupted", preset, options)
        last_eval = callback.evals[-1][1] if callback.evals else None
        stopped_at = checkpoints / f"checkpoint-{steps}"
        _done(sink, stage, stopped_at, steps, last_loss, last_eval, time.monotonic() - started, interrupted=True)
        return StageOutcome(stage, stopped_at, interrupted=True)

    # The held-out score: the test split, or the validation split when the data is too small for a test split.
    held_out = test if len(test) else validation
    test_loss = float(trainer.evaluate(held_out, metric_key_prefix="test")["test_loss"]) if len(held_out) else None
    if _is_main_process():
        _save_final(
            trainer, tokenizer, out, options, preset, parameters, callback, test_loss, spec, started, device, bf16
        )
        _final(sink, stage, steps, out)
    _done(sink, stage, out, steps, last_loss, test_loss, time.monotonic() - started, interrupted=False)
    return StageOutcome(stage, out, interrupted=False)


def _mark(out: Path, stage: TrainStage, status: str, preset: ModelPreset, options: TrainOptions) -> None:
    data = {"stage": stage, "status": status, "preset": preset_to_dict(preset), "command": options.command}
    if stage == "reasoning":
        # The server splits a reasoning model's answers at these markers.
        data["markers"] = options.markers
    write_marker(out, data)


def _save_final(
    trainer: Any,
    tokenizer: PreTrainedTokenizerBase,
    out: Path,
    options: TrainOptions,
    preset: ModelPreset,
    parameters: int,
    callback: Any,
    test_loss: float | None,
    spec: DataSpec,
    started: float,
    device: str,
    bf16: bool,
) -> None:
    """Write the finished model, tokenizer, generation defaults, arguments and model card into ``out``."""
    from engine.tinyllm.tokenizer import stop_token_ids

    model = trainer.model
    generation = model.generation_config
    generation.eos_token_id = stop_token_ids(tokenizer)
    generation.pad_token_id = tokenizer.pad_token_id
    # The original design's sampling defaults.
    generation.do_sample, generation.temperature, generation.top_k, generation.top_p = True, 0.7, 40, 0.9
    try:
        trainer.save_model(str(out))
        tokenizer.save_pretrained(str(out))
        # The SentencePiece model travels too, for tools that read it rather than tokenizer.json.
        spm = Path(str(getattr(tokenizer, "name_or_path", ""))) / "tokenizer.model"
        if spm.is_file() and spm.parent.resolve() != out.resolve():
            shutil.copyfile(spm, out / "tokenizer.model")
    except Exception as err:
        problem = disk_problem(err)
        if problem is None:
            raise
        raise TrainFailure(
            f"cannot save the model into {display_name(str(out))}: {problem} "
            "(make room, then run the same command with --resume)"
        ) from err
    write_atomic(out / "training_args.json", trainer.args.to_json_string())
    card = ModelCard(
        stage=options.stage,
        command=options.command,
        preset=preset_to_dict(preset),
        parameters=parameters,
        data={key: json.dumps(value) for key, value in spec.fingerprint().items() if value is not None},
        steps=trainer.state.global_step,
        tokens=int(trainer.state.num_input_tokens_seen or 0),
        train_losses=callback.losses,
        eval_losses=callback.evals,
        test_loss=test_loss,
        test_perplexity=None if test_loss is None else perplexity(test_loss),
        seconds=time.monotonic() - started,
        device=device,
        dtype="bfloat16 autocast" if bf16 else "float32",
        world_size=_world_size(),
    )
    write_atomic(out / "README.md", render_model_card(card))
    _mark(out, options.stage, "done", preset, options)


# -- all stages --------------------------------------------------------------------------------------


def train_all(options: TrainOptions, sink: EventSink, stop: StopRequest) -> StageOutcome:
    """Train the tokenizer, pretrain, then SFT: ``OUT/tokenizer``, ``OUT/pretrain`` and ``OUT/sft``.

    With ``resume``, finished stages are kept and the first unfinished one continues.
    """
    out = options.out
    if _is_main_process():
        prepare_out_dir(out, resume=options.resume, stage="all")
        write_marker(out, {"stage": "all", "status": "running", "command": options.command})
    stages: list[tuple[TrainStage, Path]] = [
        ("tokenizer", out / TOKENIZER_DIR),
        ("pretrain", out / "pretrain"),
        ("sft", out / "sft"),
    ]
    outcome = StageOutcome("tokenizer", out / TOKENIZER_DIR, interrupted=False)
    for stage, path in stages:
        if (read_marker(path) or {}).get("status") == "done":
            outcome = StageOutcome(stage, path, interrupted=False)
            continue
        resume = path.is_dir() and any(path.iterdir())
        if stage == "tokenizer":
            outcome = train_tokenizer_stage(replace(options, stage=stage, out=path, resume=resume), sink)
            continue
        staged = replace(
            options,
            stage=stage,
            out=path,
            resume=resume,
            tokenizer=out / TOKENIZER_DIR,
            base=None if stage == "pretrain" else out / "pretrain",
            data=options.data if stage == "pretrain" else (),
        )
        outcome = train_model_stage(staged, sink, stop)
        if outcome.interrupted:
            return outcome
    if _is_main_process():
        write_marker(out, {"stage": "all", "status": "done", "command": options.command})
    return outcome
