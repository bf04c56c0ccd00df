"""The output directory of a training stage: what may be in it, its marker, its checkpoints, its card.

A stage writes into ``--out``: Trainer checkpoints under ``checkpoints/checkpoint-N`` while it
runs, then the finished model at the top (``config.json``, ``model.safetensors``, the tokenizer
files, ``training_args.json`` and the model card ``README.md``), so ``--out`` itself is what
``AutoModelForCausalLM.from_pretrained`` loads. ``routeshell-train.json`` marks the directory as
a routeshell run; a directory holding anything else is refused, never written into.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.names import display_name, shell_line
from engine.textfile import read_capped, replace_text
from engine.tinyllm.errors import TrainFailure, TrainInputError

MARKER = "routeshell-train.json"
CHECKPOINTS = "checkpoints"
#: What a Trainer checkpoint needs to be resumed exactly: weights, optimizer, scheduler, state.
RESUME_FILES = ("trainer_state.json", "optimizer.pt", "scheduler.pt")
#: The most bytes the marker may hold (a few hundred); a longer one, or one that is no regular file
#: (a link to ``/dev/zero``), reads as no marker rather than filling the memory.
MAX_MARKER_BYTES = 1 << 20
#: The most bytes a checkpoint's ``trainer_state.json`` may hold: it logs every step (about 200
#: bytes each), so a million steps fit; a longer one, or no regular file, counts as unreadable.
MAX_TRAINER_STATE_BYTES = 256 << 20


@contextmanager
def out_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on the directory ``out`` (created) while the block runs.

    Two runs writing into one directory would mix their checkpoints; the second is refused with
    one line instead. The lock is the kernel's (``flock`` on the directory), so it goes away with
    the process, even after ``kill -9``.
    """
    shown = display_name(str(out))
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as err:
        raise TrainFailure(f"cannot create {shown}: {err.strerror or err}") from err
    try:
        _take_lock(fd, shown)
        yield
    finally:
        os.close(fd)


def lock_file(out: Path) -> Path:
    """The lock file of ``out`` for :func:`out_lock_beside`: ``.OUT.lock``, beside it."""
    return out.with_name(f".{out.name}.lock")


@contextmanager
def out_lock_beside(out: Path, *, holder: str = "routeshell train") -> Iterator[None]:
    """Hold an exclusive lock on ``out`` while the block runs, by the file ``.OUT.lock`` beside it.

    For the runs that make ``out`` in ``.OUT.partial`` and rename it into place (``train router``,
    ``train planner``): ``out`` is replaced, so it cannot carry the lock itself, and a lock file
    in ``.OUT.partial`` would end up in the finished ``out``. A second run is refused with one
    line, as :func:`out_lock` refuses one. The lock is the kernel's (``flock``), so it goes away
    with the process, even after ``kill -9``: the file such a run leaves is no lock, and the next
    run takes it. The file is removed when the block ends. ``holder`` is what the refusal calls the
    run that holds the lock (``routeshell export`` takes it too).
    """
    shown = display_name(str(out))
    path = lock_file(out)
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as err:
            raise TrainFailure(f"cannot write {shown}: {err.strerror or err}") from err
        try:
            _take_lock(fd, shown, holder)
            held = os.fstat(fd)
            try:
                now = os.stat(path, follow_symlinks=False)
            except FileNotFoundError:
                now = None
        except BaseException:
            os.close(fd)
            raise
        if now is not None and (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
            break
        # A run that ended between our open and our lock removed that file: its lock is no one's.
        os.close(fd)
    try:
        yield
    finally:
        # Removed while still locked: a run that opened it meanwhile is refused, or tries again.
        with suppress(OSError):
            path.unlink()
        os.close(fd)


def _take_lock(fd: int, shown: str, holder: str = "routeshell train") -> None:
    """Take the kernel's exclusive lock on ``fd`` now, or refuse the run in one line."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise TrainFailure(f"another {holder} is writing into {shown} (wait for it to end, or stop it first)") from None


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: all of it or nothing.

    Raises :class:`TrainFailure` (one line) when the directory refuses it or the disk is full."""
    try:
        replace_text(path, text)
    except OSError as err:
        raise TrainFailure(f"cannot write {display_name(str(path))}: {err.strerror or err}") from err


def read_marker(out: Path) -> dict[str, Any] | None:
    """Return the marker of a routeshell run in ``out``, or None when there is none or it is unreadable."""
    try:
        data = json.loads(read_capped(out / MARKER, MAX_MARKER_BYTES).decode("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_marker(out: Path, data: dict[str, Any]) -> None:
    write_atomic(out / MARKER, json.dumps(data, indent=2, sort_keys=True) + "\n")


def prepare_out_dir(out: Path, *, resume: bool, stage: str, preset: dict[str, Any] | None = None) -> Path | None:
    """Check that ``out`` may receive this run and create it; return the checkpoint to resume from.

    Raises :class:`TrainInputError` (see :func:`check_out_dir`) or :class:`TrainFailure`.
    """
    check_out_dir(out, resume=resume, stage=stage, preset=preset)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise TrainFailure(f"cannot create {display_name(str(out))}: {err.strerror or err}") from err
    return last_checkpoint(out) if resume else None


def check_out_dir(out: Path, *, resume: bool, stage: str, preset: dict[str, Any] | None = None) -> None:
    """Check, without writing anything, that ``out`` may receive a run of ``stage`` ("all" for ``train all``).

    ``out`` must be new, empty, or a routeshell run. Without ``resume`` a previous run there is
    refused; with it, a run of another stage is, one of another model shape than ``preset`` (the
    model asked for, when known before anything loads), and a corrupt last checkpoint. Raises
    :class:`TrainInputError` with one line saying what to do.
    """
    shown = display_name(str(out))
    if out.exists() and not out.is_dir():
        raise TrainInputError(f"--out {shown} is a file, not a directory (choose a new directory)")
    if out.is_dir():
        entries = [entry.name for entry in out.iterdir()]
        marker = read_marker(out)
        if entries and marker is None:
            raise TrainInputError(
                f"--out {shown} holds files that are not a routeshell training run (choose a new or empty directory)"
            )
        if entries and not resume:
            raise TrainInputError(
                f"--out {shown} already holds a training run (add --resume to continue it, or choose a new directory)"
            )
        if entries and marker is not None:
            _check_same_run(shown, marker, stage, preset)
        if resume:
            last_checkpoint(out)


#: The fields of a preset that make the model's shape; the vocabulary is the tokenizer's, checked on the checkpoint.
SHAPE_FIELDS = ("hidden_size", "num_layers", "num_heads", "num_kv_heads", "intermediate_size", "context_length",
                "rope_theta", "rms_norm_eps")  # fmt: skip


def _check_same_run(shown: str, marker: dict[str, Any], stage: str, preset: dict[str, Any] | None) -> None:
    """Refuse to resume a run of another stage, or of another model shape than ``preset``."""
    held = marker.get("stage")
    if held != stage:
        raise TrainInputError(
            f"--out {shown} holds a 'train {display_name(str(held or '?'))}' run, not a 'train {stage}' run "
            "(--resume continues a run of the same stage; choose a new directory)"
        )
    was = marker.get("preset")
    if preset is None or not isinstance(was, dict):
        return
    if differ := _differences(was, preset, SHAPE_FIELDS):
        old, new = differ
        raise TrainInputError(
            f"--out {shown} holds a {display_name(str(was.get('name', 'other')))} model ({old}), not the "
            f"{preset.get('name')} one asked for ({new}) (resume with the --preset or --config it was started with, "
            "or choose a new directory)"
        )


#: The fields of a model's ``config.json`` that its weights' shapes follow.
CONFIG_SHAPE = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                "intermediate_size", "max_position_embeddings", "model_type")  # fmt: skip


def check_checkpoint_shape(checkpoint: Path, config: dict[str, Any]) -> None:
    """Refuse to resume ``checkpoint`` into a model of another shape (``config``, the model built for
    this run: another --base, --tokenizer, --preset or --config than the run was started with)."""
    try:
        held = json.loads(read_capped(checkpoint / "config.json", MAX_MARKER_BYTES).decode("utf-8"))
    except (OSError, ValueError):
        return  # an adapter's checkpoint has none; a damaged one fails to load, in one line too
    if not isinstance(held, dict):
        return
    if differ := _differences(held, config, CONFIG_SHAPE):
        old, new = differ
        raise TrainInputError(
            f"--resume: checkpoint {display_name(str(checkpoint))} is of another model ({old}) than the one asked "
            f"for ({new}) (give the --base, --tokenizer, --preset or --config it was started with, "
            "or choose a new directory)"
        )


def _differences(held: dict[str, Any], wanted: dict[str, Any], keys: Sequence[str]) -> tuple[str, str] | None:
    """The ``keys`` that ``held`` (read from disk) has and ``wanted`` does not match, as what each
    says ("hidden_size 64, vocab_size 452"), or None where they agree."""
    differ = [key for key in keys if key in held and held[key] != wanted.get(key)]
    if not differ:
        return None
    return (", ".join(f"{key} {display_name(str(held[key]))}" for key in differ),
            ", ".join(f"{key} {wanted.get(key)}" for key in differ))  # fmt: skip


def last_checkpoint(out: Path) -> Path | None:
    """Return the newest complete checkpoint under ``out/checkpoints``, or None when there is none.

    A checkpoint missing a file that exact resumption needs, or holding one that is cut off or
    damaged (:func:`_whole`), is refused with one line, rather than silently restarting, resuming
    with a fresh optimizer, or failing inside the Trainer with a traceback.
    """
    root = out / CHECKPOINTS
    if not root.is_dir():
        return None
    steps = sorted(
        (int(entry.name.removeprefix("checkpoint-")), entry)
        for entry in root.iterdir()
        if entry.is_dir() and entry.name.startswith("checkpoint-") and entry.name[11:].isdigit()
    )
    if not steps:
        return None
    newest = steps[-1][1]
    missing = [name for name in RESUME_FILES if not (newest / name).exists()]
    if not any(newest.glob("model*.safetensors")) and not (newest / "adapter_model.safetensors").is_file():
        missing.append("model.safetensors")  # (an adapter's checkpoint: adapter_model.safetensors)
    damaged = [
        display_name(path.name) for path in sorted(newest.iterdir()) if path.name not in missing and not _whole(path)
    ]
    if missing or damaged:
        # Not "checkpoint-N.broken": the Trainer's rotation deletes every checkpoint-* directory but the newest.
        aside = newest.with_name(f"broken-{newest.name}")
        why = "; ".join(
            f"{what} {', '.join(names)}" for what, names in (("no", missing), ("damaged", damaged)) if names
        )
        raise TrainInputError(
            f"checkpoint {display_name(str(newest))} is incomplete or corrupt ({why}); "
            f"move it aside to resume from the one before: {shell_line(['mv', str(newest), str(aside)])}"
        )
    return newest


def _whole(path: Path) -> bool:
    """Whether the checkpoint file ``path`` looks whole, checked without loading it: a JSON file
    parses, a safetensors file's header covers the file exactly, and a torch file (``optimizer.pt``,
    ``rng_state.pth``) is a zip archive with its central directory (which a cut-off copy lacks).
    Other files and directories are not checked. Only headers are read: the Trainer loads the files next."""
    if path.suffix not in (".json", ".safetensors", ".pt", ".pth"):
        return True
    if not path.is_file():  # a FIFO or a link to /dev/zero would hang or fill the memory
        return False
    from safetensors import SafetensorError, safe_open

    try:
        if path.suffix == ".json":
            json.loads(read_capped(path, MAX_TRAINER_STATE_BYTES).decode("utf-8"))
        elif path.suffix == ".safetensors":
            with safe_open(str(path), framework="numpy") as header:
                header.keys()
        else:
            with zipfile.ZipFile(path) as archive:
                archive.namelist()
    except (OSError, ValueError, RecursionError, zipfile.BadZipFile, SafetensorError):
        return False
    return True


@dataclass
class ModelCard:
    """What the model card of a finished stage records."""

    stage: str
    command: str
    preset: dict[str, Any]
    parameters: int
    data: dict[str, Any]
    steps: int
    tokens: int
    train_losses: list[tuple[int, float]]
    eval_losses: list[tuple[int, float]]
    test_loss: float | None
    test_perplexity: float | None
    seconds: float
    device: str
    dtype: str
    world_size: int
    interrupted: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def hardware() -> str:
    """Return a one-line description of this machine for the model card."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}"


def render_model_card(card: ModelCard) -> str:
    """Return the ``README.md`` of a finished model: front matter, then what, how and how well."""
    first = f"{card.train_losses[0][1]:.4f} (step {card.train_losses[0][0]})" if card.train_losses else "n/a"
    last = f"{card.train_losses[-1][1]:.4f} (step {card.train_losses[-1][0]})" if card.train_losses else "n/a"
    evals = ", ".join(f"step {step}: {loss:.4f}" for step, loss in card.eval_losses[-5:]) or "none"
    held_out = (
        f"{card.test_loss:.4f} loss, perplexity {card.test_perplexity:.2f}"
        if card.test_loss is not None and card.test_perplexity is not None
        else "not measured (no test split)"
    )
    preset = ", ".join(f"{key} {value}" for key, value in card.preset.items())
    data = "\n".join(f"- {key}: {value}" for key, value in card.data.items())
    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: text-generation",
        "tags: [routeshell, tinyllm, llama]",
        "---",
        "",
        f"# TinyLLM ({card.stage})",
        "",
        "A LlamaForCausalLM trained from scratch by routeshell. Load it with "
        "`AutoModelForCausalLM.from_pretrained(dir)` and `AutoTokenizer.from_pretrained(dir)`.",
        "",
        "## Training",
        f"- command: `{card.command}`",
        f"- stage: {card.stage}{' (interrupted; resume with --resume)' if card.interrupted else ''}",
        f"- model: {preset}; {card.parameters:,} parameters",
        f"- steps: {card.steps}; tokens seen: {card.tokens:,}",
        f"- time: {card.seconds:.1f} s on {card.device} ({card.dtype}), {card.world_size} process(es)",
        f"- hardware: {hardware()}",
        "",
        "## Data",
        data,
        "",
        "## Results",
        f"- training loss: first {first}, last {last}",
        f"- validation loss: {evals}",
        f"- held-out test: {held_out}",
        "",
    ]
    lines += [f"- {key}: {value}" for key, value in card.extra.items()]
    return "\n".join(lines).rstrip("\n") + "\n"
