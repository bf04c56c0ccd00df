"""What one ``routeshell train`` command asks for, checked before torch loads.

:class:`TrainOptions` holds every option; :func:`check_options` refuses bad input in a fraction
of a second (the preset, the data paths, the output directory, ``--base`` and ``--tokenizer``);
:func:`pick_device` chooses CPU or CUDA and bf16; :func:`disk_problem` recognises a full or
read-only disk behind the errors the libraries raise.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from engine.config.xdg import cache_dir
from engine.model_events import TrainStage
from engine.names import display_name
from engine.tinyllm.cleaning import CleaningConfig
from engine.tinyllm.errors import TrainInputError
from engine.tinyllm.presets import preset_to_dict, resolve_preset
from engine.tinyllm.run_dir import check_out_dir
from engine.tinyllm.sft_data import Markers
from engine.tinyllm.stage_data import DataSpec, default_cleaning, default_sources

Device = Literal["auto", "cpu", "cuda"]
#: The original design's learning rates: 3e-4 to pretrain, 1e-4 for SFT.
DEFAULT_LR: dict[TrainStage, float] = {"tokenizer": 0.0, "pretrain": 3e-4, "sft": 1e-4, "reasoning": 1e-4}
#: The original design pretrains at 256 tokens, then 512: the first is the default here.
PRETRAIN_SEQ_LEN = 256


@dataclass
class TrainOptions:
    """Everything one ``routeshell train`` command sets; None means the stage's default."""

    stage: TrainStage
    out: Path
    preset: str | None = None
    config: Path | None = None
    data: tuple[str, ...] = ()
    tokenizer: Path | None = None
    base: Path | None = None
    max_steps: int | None = None
    epochs: float = 1.0
    batch_size: int = 8
    grad_accum: int = 1
    lr: float | None = None
    seq_len: int | None = None
    eval_every: int = 50
    save_every: int = 200
    seed: int = 0
    resume: bool = False
    device: Device = "auto"
    markers: Markers = "zh"
    min_chars: int | None = None
    max_chars: int | None = None
    dedup_threshold: float | None = None
    command: str = "routeshell train"
    cache: Path = field(default_factory=lambda: cache_dir() / "features")

    def data_spec(self, stage: TrainStage) -> DataSpec:
        """Return the data of ``stage``: ``--data`` or the stage's default, cleaned as asked."""
        base = default_cleaning(stage)
        cleaning = CleaningConfig(
            min_chars=base.min_chars if self.min_chars is None else self.min_chars,
            max_chars=base.max_chars if self.max_chars is None else self.max_chars,
            near_duplicate_threshold=(
                base.near_duplicate_threshold if self.dedup_threshold is None else self.dedup_threshold
            ),
            num_perm=base.num_perm,
        )
        sources = self.data or default_sources(stage)
        return DataSpec(sources=tuple(sources), cleaning=cleaning, markers=self.markers, seed=self.seed)


def check_options(options: TrainOptions, *, command_stage: str | None = None) -> None:
    """Refuse bad input before torch and transformers load, so that a typo costs no waiting.

    Checks the preset or config, that every ``--data`` path exists, the output directory (with
    ``--resume``: that it holds a run of ``command_stage``, "all" for ``train all``, default the
    stage's own, and of the same model shape), and that ``--base`` and ``--tokenizer`` look like
    what they should be. Raises
    :class:`TrainInputError` with one line.
    """
    stage: TrainStage = "pretrain" if options.stage == "tokenizer" else options.stage
    for flag, path in (("--out", options.out), ("--base", options.base), ("--tokenizer", options.tokenizer)):
        try:
            str(path).encode("utf-8")
        except UnicodeEncodeError:
            # The tokenizers library (Rust) reads and writes only UTF-8 paths.
            raise TrainInputError(
                f"{flag} {display_name(str(path))} is not a UTF-8 path, which the tokenizer files cannot be "
                "written to or read from (choose a directory whose name is UTF-8)"
            ) from None
    asked = None if options.base is not None else preset_to_dict(resolve_preset(options.preset, options.config))
    options.data_spec(stage).paths()
    # ``train all`` runs with the tokenizer's options; its OUT is marked "all" and holds no model itself.
    check_out_dir(options.out, resume=options.resume, stage=command_stage or options.stage,
                  preset=asked if options.stage == "pretrain" and command_stage != "all" else None)  # fmt: skip
    check_base(options.stage, options.base)
    if options.tokenizer is not None and not (options.tokenizer / "tokenizer.json").is_file():
        raise TrainInputError(
            f"--tokenizer {display_name(str(options.tokenizer))} is not a tokenizer "
            "(no tokenizer.json; train one with 'train tokenizer')"
        )


def check_base(stage: TrainStage, base: Path | None) -> None:
    """Refuse a missing ``--base`` for SFT and reasoning, and a ``--base`` that holds no trained model."""
    if base is None and stage in ("sft", "reasoning"):
        raise TrainInputError(f"train {stage} needs --base DIR, the model to start from (made by 'train pretrain')")
    if base is not None and not (base / "config.json").is_file():
        raise TrainInputError(
            f"--base {display_name(str(base))} is not a trained model (no config.json; train one with 'train pretrain')"
        )


def pick_device(requested: Device) -> tuple[str, bool]:
    """Return the device to train on and whether bf16 autocast runs there.

    Raises :class:`TrainInputError` when CUDA is asked for and there is none.
    """
    import torch

    if requested == "cuda" and not torch.cuda.is_available():
        raise TrainInputError("--device cuda: no CUDA device is available here (use --device cpu)")
    if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        return "cuda", torch.cuda.is_bf16_supported()
    return "cpu", bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


#: What a failed write says, by errno, in the words of ``strerror``.
DISK_ERRORS = {
    errno.ENOSPC: "No space left on device",
    errno.EROFS: "Read-only file system",
    errno.EDQUOT: "Disk quota exceeded",
}


def disk_problem(err: BaseException) -> str | None:
    """Return the disk failure behind ``err`` ("No space left on device", ...), or None for anything else.

    The libraries wrap the ``OSError`` of a failed write in errors of their own (safetensors says
    "I/O error: No space left on device"), so the cause chain and the message are both read.
    """
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in DISK_ERRORS:
            return DISK_ERRORS[seen.errno]
        for words in DISK_ERRORS.values():
            if words in str(seen):
                return words
        seen = seen.__cause__ or seen.__context__
    return None
