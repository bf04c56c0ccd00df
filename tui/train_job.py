"""The training job behind the Train pane: its command line, its event stream, its end and its models.

The pane never imports the training libraries: it runs ``routeshell train ... --events`` as a
subprocess (``python -m tui train``) and reads one JSON event a line from its stdout. This module
holds what does not need a widget: checking the form (:func:`parse_form`), the command
(:meth:`TrainRequest.argv`), reading a line (:func:`parse_event_line`), running and stopping the
process (:class:`TrainJob`), saying how it ended (:func:`ending_line`) and finding the finished
models it left (:func:`find_models`, :func:`read_model_card`).
"""

from __future__ import annotations

import json
import shlex
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from engine.child_process import guarded_argv
from engine.errors import ExitCode
from engine.names import display_name, shell_line
from engine.serve.launcher import is_model_dir
from tui.process_job import ProcessJob
from tui.process_job import parse_event_line as parse_job_line

#: What ``routeshell train`` can run; ``all`` chains tokenizer, pretrain and sft.
STAGES: tuple[str, ...] = ("all", "tokenizer", "pretrain", "sft", "reasoning")
PRESETS: tuple[str, ...] = ("nano", "tiny", "small")
#: ``--data`` words that name a built-in corpus rather than a path.
DATA_WORDS = frozenset({"stdlib", "builtin"})
#: The events of ``routeshell train --events`` that the pane shows.
TRAIN_EVENTS = frozenset(
    {"data_filter", "data_ready", "train_start", "train_step", "train_eval", "checkpoint", "train_done", "error"}
)
#: How long a job has after SIGINT to write its checkpoint and exit, before it is killed.
GRACE_S = 20.0
#: A model card bigger than this is shown cut.
MAX_CARD = 64 * 1024


class FormError(ValueError):
    """The form cannot start a job: ``str(err)`` is one line saying what to fix."""


@dataclass(frozen=True)
class TrainRequest:
    """One ``routeshell train`` job as the form describes it; paths are absolute."""

    stage: str
    preset: str
    out: Path
    data: tuple[str, ...] = ()  # absolute paths, or words of DATA_WORDS
    max_steps: int | None = None

    def words(self, *, resume: bool = False) -> list[str]:
        """Return the arguments after ``routeshell``: ``train STAGE --out DIR ... --events``."""
        words = ["train", self.stage, "--out", str(self.out), "--preset", self.preset]
        for path in self.data:
            words += ["--data", path]
        if self.max_steps is not None:
            words += ["--max-steps", str(self.max_steps)]
        if resume:
            words.append("--resume")
        return [*words, "--events"]

    def argv(self, *, resume: bool = False) -> list[str]:
        """Return the command that runs this job with the same Python and the same routeshell as the app.

        It runs through the orphan guard: if the app dies, however it dies, the job gets SIGINT (it
        writes its checkpoint and stops), as it would from Ctrl-C."""
        return guarded_argv(signal.SIGINT, *self.words(resume=resume))

    def shown(self, *, resume: bool = False) -> str:
        """Return the job as a ``routeshell train`` line that works when pasted into a POSIX shell."""
        return shell_line(["routeshell", *self.words(resume=resume)])


def parse_form(stage: str, preset: str, data: str, max_steps: str, out: str, *, base: Path) -> TrainRequest:
    """Return the job the form asks for, with relative paths taken from ``base`` (the workspace).

    ``data`` is zero or more paths (or the words ``stdlib`` and ``builtin``), split like a shell line
    (quote a path with spaces);
    ``max_steps`` is empty (the preset's default) or a positive integer. Raises :class:`FormError`
    with one line for anything that cannot start a job.
    """
    if stage not in STAGES:
        raise FormError(f"choose a stage: {', '.join(STAGES)}")
    if preset not in PRESETS:
        raise FormError(f"choose a preset: {', '.join(PRESETS)}")
    if not out.strip():
        raise FormError("the output directory is empty: type where the models go, e.g. models/tinyllm")
    steps: int | None = None
    if max_steps.strip():
        try:
            steps = int(max_steps.strip())
        except ValueError:
            steps = 0
        if steps <= 0:
            raise FormError(f"max steps must be a positive whole number, not {display_name(max_steps.strip())!r}")
    try:
        paths = shlex.split(data)
    except ValueError as exc:
        raise FormError(f"the data paths do not parse ({exc}): quote a path that holds spaces") from None
    return TrainRequest(
        stage=stage,
        preset=preset,
        out=base / Path(out.strip()).expanduser(),
        data=tuple(path if path in DATA_WORDS else str(base / Path(path).expanduser()) for path in paths),
        max_steps=steps,
    )


def parse_event_line(line: str) -> tuple[dict[str, Any] | None, str | None]:
    """Return ``(event, None)`` for a line holding a valid training event, else ``(None, why)``.

    ``why`` is None for a line that is simply not JSON (shown as it is), and a reason for JSON that
    breaks the event contract (shown with the line, so a mismatch between the pane and the job shows).
    """
    return parse_job_line(line, TRAIN_EVENTS, "training")


def ending_line(code: int, error: str | None, stderr_tail: str | None, interrupted: bool) -> str:
    """Return one line (not yet escaped) saying how a job that exited with ``code`` ended.

    ``error`` is the message of its ``error`` event, ``stderr_tail`` the last line it wrote on
    stderr, ``interrupted`` whether it reported an interrupted stop.
    """
    if code == ExitCode.OK:
        return "done"
    if code == ExitCode.INTERRUPTED or interrupted:
        return f"interrupted (exit {code}): its checkpoint is kept; Resume (ctrl+r) continues from it"
    reason = error or stderr_tail
    if code in (ExitCode.FAILED, ExitCode.USAGE):
        what = "stopped on bad input" if code == ExitCode.USAGE else "failed"
        return f"{what} (exit {code}): {reason}" if reason else f"{what} (exit {code})"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        died = f"the job died: killed by {name} (exit code {code})"
    else:
        died = f"the job died with exit code {code}"
    return f"{died}: {reason}" if reason else died


class TrainJob(ProcessJob):
    """One running ``routeshell train --events`` process, in its own process group (see :class:`ProcessJob`),
    started through the orphan guard (:meth:`TrainRequest.argv`)."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        super().__init__(argv, cwd, guarded=True)

    async def stop(self, grace: float = GRACE_S) -> int | None:
        """Interrupt the job (it writes its checkpoint), kill it if still running after ``grace`` seconds."""
        return await super().stop(grace)


# -- finished models ---------------------------------------------------------------------------


def find_models(out: Path, *, limit: int = 200) -> list[Path]:
    """Return the finished model directories at ``out`` and one level below it, sorted. Touches the disk.

    ``train all --out DIR`` leaves ``DIR/pretrain`` and ``DIR/sft``; a single stage leaves ``DIR`` itself.
    A directory that cannot be read is skipped; at most ``limit`` are returned.
    """
    found: list[Path] = []
    if is_model_dir(out):
        found.append(out)
    try:
        children = sorted(out.iterdir())
    except OSError:
        return found
    for child in children:
        if len(found) >= limit:
            break
        try:
            if child.is_dir() and not child.is_symlink() and is_model_dir(child):
                found.append(child)
        except OSError:
            continue
    return found


def read_model_card(model: Path) -> str:
    """Return the model card (``README.md``) of ``model`` as text, not yet escaped, or a note why there is none.

    Reads at most :data:`MAX_CARD` bytes; bytes that are not UTF-8 are kept as surrogates (escaped when shown).
    """
    card = model / "README.md"
    try:
        with open(card, "rb") as handle:
            data = handle.read(MAX_CARD + 1)
    except FileNotFoundError:
        return "(no model card: README.md is missing)"
    except OSError as exc:
        return f"(cannot read the model card: {exc.strerror or exc})"
    text = data[:MAX_CARD].decode("utf-8", "surrogateescape")
    return text + "\n… (cut)" if len(data) > MAX_CARD else text


def no_validation(event: Mapping[str, Any]) -> str:
    """Return the note a ``data_ready`` event with an empty validation split gets, else ''."""
    if cast(dict[str, int], event["tokens"]).get("validation", 0):
        return ""
    return "; the validation split is empty (too little data), so training runs without validation"


def event_summary(event: dict[str, Any]) -> str:
    """Return one log line (not yet escaped) for a training event."""
    kind = event["type"]
    stage = event.get("stage", "")
    if kind == "data_filter":
        return f"{stage}: filter {event['filter']} removed {event['removed']:,}, kept {event['kept']:,}"
    if kind == "data_ready":
        docs = ", ".join(f"{k} {v:,}" for k, v in cast(dict[str, int], event["documents"]).items())
        tokens = ", ".join(f"{k} {v:,}" for k, v in cast(dict[str, int], event["tokens"]).items())
        cached = " (cached)" if event["cached"] else ""
        return (
            f"{stage}: data ready{cached} in {event['seconds']:.1f}s: documents {docs}; tokens {tokens}"
            f"{no_validation(event)}"
        )
    if kind == "train_start":
        resumed = f", resumed from {event['resumed_from']}" if event.get("resumed_from") else ""
        return (
            f"{stage}: start, preset {event['preset']}, {event['parameters']:,} parameters, "
            f"{event['max_steps']:,} steps on {event['device']} ({event['dtype']}){resumed}"
        )
    if kind == "train_step":
        return f"{stage}: step {event['step']}/{event['max_steps']} loss {event['loss']:.4f}"
    if kind == "train_eval":
        loss, perplexity = event["eval_loss"], event["perplexity"]
        return f"{stage}: eval at step {event['step']}: loss {loss:.4f}, perplexity {perplexity:.2f}"
    if kind == "checkpoint":
        what = "final model" if event["final"] else "checkpoint"
        return f"{stage}: {what} at step {event['step']}: {event['path']}"
    if kind == "train_done":
        how = "interrupted" if event["interrupted"] else "done"
        loss = f", eval loss {event['eval_loss']:.4f}" if event.get("eval_loss") is not None else ""
        return f"{stage}: {how} after {event['steps']:,} steps in {event['elapsed_s']:.1f}s{loss}: {event['path']}"
    if kind == "error":
        return f"error (exit {event['exit_code']}): {event['message']}"
    return json.dumps(event)
