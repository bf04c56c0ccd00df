"""The terminal display of ``routeshell eval judge``: a progress bar while it runs, then tables.

Everything a model wrote (answers, the judge's reasons) and every path is shown through
:func:`engine.names.display_line` inside rich ``Text``, never as markup: a reply holding escape
sequences or ``[red]`` reaches the screen as the characters it is made of.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from engine.evaluation.scoring import CRITERIA
from engine.names import display_line

if TYPE_CHECKING:
    from engine.evaluation.judge import JudgeOutcome

#: The samples a table lists; the rest are in details.jsonl.
SHOWN_SAMPLES = 20
#: Characters of a question, an answer or a reason a table cell shows.
CELL_CHARS = 60


def _cell(text: str | None, limit: int = CELL_CHARS) -> Text:
    shown = display_line(text or "")
    return Text(shown if len(shown) <= limit else shown[: limit - 1] + "…")


class EvalReport:
    """The sink of the evaluation's events: a progress bar on stderr (``progress``), then the outcome on stdout."""

    def __init__(self, *, progress: bool) -> None:
        self.console = Console(highlight=False, soft_wrap=False)
        self.progress: Progress | None = None
        if progress:
            self.progress = Progress(
                TextColumn("judging"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(), console=Console(stderr=True, highlight=False),
            )  # fmt: skip
        self.task: Any = None

    def show(self, event: Any) -> None:
        """Render one event of :func:`engine.evaluation.judge.run_judge`."""
        if self.progress is None:
            return
        if event["type"] == "eval_start":
            if event["cached"]:
                self.progress.console.print(Text(f"{event['cached']} of {event['samples']} samples are in the cache"))
            self.progress.start()
            self.task = self.progress.add_task("judging", total=event["samples"] - event["cached"], status="")
        elif event["type"] == "eval_sample" and self.task is not None:
            status = event["status"] if event["overall"] is None else f"last overall {event['overall']}"
            self.progress.update(self.task, completed=event["done"], status=status)

    def stop(self) -> None:
        """Take the progress bar off the screen (it may be called more than once)."""
        if self.progress is not None:
            self.progress.stop()

    def print_outcome(self, outcome: JudgeOutcome) -> None:
        """Print the averages, the counts and the first samples, then where the files are."""
        summary = outcome.summary
        averages = Table(
            title=Text(f"{display_line(summary['model'])} judged by {display_line(summary['judge_model'])}")
        )
        averages.add_column("criterion")
        averages.add_column("average (1-5)", justify="right")
        for criterion in CRITERIA:
            value = summary["averages"][criterion]
            averages.add_row(criterion, "-" if value is None else f"{value:.2f}")
        self.console.print(averages)
        counts = summary["counts"]
        tally = f"{counts['scored']} scored, {counts['unscored']} unscored, {counts['failed']} failed"
        self.console.print(Text(f"{summary['samples']} samples: {tally}"))
        samples = Table(show_lines=False)
        for name in ("#", "status", "acc", "comp", "flu", "prof", "overall", "question", "answer", "reason"):
            samples.add_column(name, overflow="fold", justify="right" if name == "#" else "left")
        for result in outcome.results[:SHOWN_SAMPLES]:
            marks = [str(result.scores[c]) if result.scores is not None else "-" for c in CRITERIA]
            samples.add_row(
                str(result.sample.index), result.status, *marks,
                _cell(result.sample.question, 30), _cell(result.answer, 30), _cell(result.reason),
            )  # fmt: skip
        self.console.print(samples)
        more = len(outcome.results) - SHOWN_SAMPLES
        if more > 0:
            self.console.print(Text(f"... and {more} more samples"))
        # Paths are never folded: they must stay whole to be copied.
        self.console.print(Text(f"details: {display_line(summary['details'])}"), soft_wrap=True)
        self.console.print(Text(f"summary: {display_line(summary['summary'])}"), soft_wrap=True)
