"""The bridge from transformers' ``Trainer`` to routeshell's events, and the clean stop on Ctrl-C.

:class:`EventCallback` turns the trainer's logs, evaluations and saves into ``train_step``,
``train_eval`` and ``checkpoint`` events (on the main process only). :class:`StopRequest` is
set from a signal handler; the callback sees it after the current optimizer step and asks the
trainer to save a checkpoint there and stop, so ``--resume`` continues from exactly that step.
With several processes the request is shared through the process group, so that every rank
stops after the same step instead of waiting for each other forever.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

from engine.events import EventSink
from engine.model_events import CheckpointEvent, TrainEvalEvent, TrainStage, TrainStepEvent
from engine.tinyllm.stopping import StopRequest, perplexity

if TYPE_CHECKING:
    from transformers import TrainerControl, TrainerState, TrainingArguments


def _shared(flag: bool) -> bool:
    """Return whether any process of the group has ``flag`` set (just ``flag`` when alone)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return flag
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    value = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


class EventCallback(TrainerCallback):
    """Emit the events of one training stage and honour a :class:`StopRequest`."""

    def __init__(self, stage: TrainStage, sink: EventSink, stop: StopRequest) -> None:
        self.stage: TrainStage = stage
        self.sink = sink
        self.stop = stop
        self.interrupted = False
        self.losses: list[tuple[int, float]] = []
        self.evals: list[tuple[int, float]] = []
        self._started = time.monotonic()
        self._last_time = self._started
        self._last_tokens = 0
        self._first_step: int | None = None
        self._rate = 0.0

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any) -> None:
        self._started = self._last_time = time.monotonic()
        self._last_tokens = int(state.num_input_tokens_seen or 0)
        self._first_step = state.global_step
        self.stop.armed = True

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any) -> None:
        self.stop.armed = False

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any) -> None:
        if _shared(self.stop.is_set()):
            self.interrupted = True
            control.should_save = True
            control.should_training_stop = True

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, float] | None = None,
        **_: Any,
    ) -> None:
        if not logs or not state.is_world_process_zero:
            return
        if "eval_loss" in logs:
            loss = float(logs["eval_loss"])
            self.evals.append((state.global_step, loss))
            eval_event: TrainEvalEvent = {
                "type": "train_eval",
                "stage": self.stage,
                "step": state.global_step,
                "eval_loss": loss,
                "perplexity": perplexity(loss),
            }
            self.sink(eval_event)
            return
        if "loss" not in logs:
            return
        now = time.monotonic()
        tokens = int(state.num_input_tokens_seen or 0)
        if now > self._last_time and tokens > self._last_tokens:
            instant = (tokens - self._last_tokens) / (now - self._last_time)
            # A moving average: one slow step (an evaluation, a save) must not make the rate jump.
            self._rate = instant if self._rate == 0 else 0.8 * self._rate + 0.2 * instant
        self._last_time, self._last_tokens = now, tokens
        done = state.global_step - (self._first_step or 0)
        left = state.max_steps - state.global_step
        elapsed = now - self._started
        loss = float(logs["loss"])
        self.losses.append((state.global_step, loss))
        step_event: TrainStepEvent = {
            "type": "train_step",
            "stage": self.stage,
            "step": state.global_step,
            "max_steps": state.max_steps,
            "loss": loss,
            "lr": float(logs.get("learning_rate", 0.0)),
            "tokens_per_s": round(self._rate, 1),
            "elapsed_s": round(elapsed, 3),
            "eta_s": round(elapsed / done * left, 1) if done > 0 else None,
        }
        self.sink(step_event)

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any) -> None:
        if not state.is_world_process_zero:
            return
        event: CheckpointEvent = {
            "type": "checkpoint",
            "stage": self.stage,
            "step": state.global_step,
            "path": f"{args.output_dir}/checkpoint-{state.global_step}",
            "final": False,
        }
        self.sink(event)
