"""The terminal display of ``routeshell train``: a rich progress bar fed by the training events."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from engine.names import display_line
from tui.train_job import no_validation


class TrainProgress:
    """Draws one progress bar per stage on stderr and prints data reports, evaluations and checkpoints."""

    def __init__(self) -> None:
        self.console = Console(stderr=True, highlight=False)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
        )
        self.tasks: dict[str, Any] = {}
        self.filters: list[str] = []

    def start(self) -> None:
        self.progress.start()

    def stop(self) -> None:
        self.progress.stop()

    def _say(self, text: str) -> None:
        self.progress.console.print(text)

    def show(self, event: Any) -> None:
        """Render one event."""
        kind = event.get("type")
        stage = event.get("stage", "")
        if kind == "data_filter":
            # One line per stage, every filter named, even those that removed nothing.
            self.filters.append(f"{event['filter'].replace('_', ' ')} {event['removed']}")
            if event["filter"] == "near_duplicate":
                self._say(f"{stage}: cleaning removed: {', '.join(self.filters)}; kept {event['kept']}")
                self.filters = []
        elif kind == "data_ready":
            docs = ", ".join(f"{name} {count}" for name, count in event["documents"].items())
            tokens = ", ".join(f"{name} {count:,}" for name, count in event["tokens"].items())
            source = "from the cache" if event["cached"] else f"in {event['seconds']:.1f} s"
            self._say(f"{stage}: data ready {source}: documents {docs}; tokens {tokens}{no_validation(event)}")
        elif kind == "train_start":
            resumed = f", resumed from {escape(display_line(event['resumed_from']))}" if event["resumed_from"] else ""
            self._say(
                f"{stage}: {event['preset']} model, {event['parameters']:,} parameters, on {event['device']} "
                f"({event['dtype']}), {event['world_size']} process(es){resumed}"
            )
            self.tasks[stage] = self.progress.add_task(stage, total=event["max_steps"], status="")
        elif kind == "train_step" and stage in self.tasks:
            status = f"loss {event['loss']:.3f}  lr {event['lr']:.2e}  {event['tokens_per_s']:,.0f} tok/s"
            self.progress.update(self.tasks[stage], completed=event["step"], total=event["max_steps"], status=status)
        elif kind == "train_eval":
            loss, perplexity = event["eval_loss"], event["perplexity"]
            self._say(f"{stage}: step {event['step']}: validation loss {loss:.4f}, perplexity {perplexity:.2f}")
        elif kind == "checkpoint":
            what = "model" if event["final"] else "checkpoint"
            self._say(f"{stage}: {what} saved: {escape(display_line(event['path']))}")
        elif kind == "train_done":
            if event["interrupted"]:
                steps = event["steps"]
                self._say(f"{stage}: interrupted at step {steps}; add --resume to the same command to continue")
            elif event["perplexity"] is not None:
                self._say(f"{stage}: done, {event['steps']} steps; held-out perplexity {event['perplexity']:.2f}")
            else:
                self._say(f"{stage}: done: {escape(display_line(event['path']))}")
        elif kind == "label_start":
            cached = f", {event['cached']} from the cache" if event["cached"] else ""
            pool = f", {event['concurrency']} at once" if event["labeler"] == "teacher" else ""
            source = escape(display_line(event["source"]))
            self._say(f"labels: {event['tasks']} {source} tasks by {event['labeler']}{cached}{pool}")
            self.tasks["labels"] = self.progress.add_task("labels", total=event["tasks"], status="")
        elif kind == "label_task" and "labels" in self.tasks:
            if event["status"] == "dropped":
                problem = escape(display_line(event["problem"] or "no valid answer"))
                self._say(f"labels: dropped {escape(display_line(event['task_id']))}: {problem}")
            self.progress.update(self.tasks["labels"], completed=event["done"], status=event["status"])
        elif kind == "label_done":
            dropped = f"; {event['dropped']} dropped" if event["dropped"] else ""
            invalid = f"; {event['invalid_answers']} invalid answers" if event["invalid_answers"] else ""
            self._say(f"labels: wrote {event['samples']} samples to {escape(display_line(event['out']))}"
                      f"{dropped}{invalid}")  # fmt: skip
