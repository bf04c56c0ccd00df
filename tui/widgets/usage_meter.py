"""One line under the Agent pane's transcript: the run's status, tokens and elapsed time."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

#: Status -> style of its dot.
STATUS_STYLES = {
    "idle": "dim",
    "running": "bold yellow",
    "waiting for approval": "bold magenta",
    "done": "bold green",
    "failed": "bold red",
    "stopping": "yellow",
    "stopped": "bold yellow",
}


class UsageMeter(Static):
    """Shows ``status``, ``tokens`` (``estimated`` when the server reported none) and ``elapsed`` seconds.

    ``elapsed`` is ``None`` until a run starts, so the idle pane shows no clock.
    """

    status: reactive[str] = reactive("idle")
    tokens: reactive[int] = reactive(0)
    estimated: reactive[bool] = reactive(False)
    elapsed: reactive[float | None] = reactive(None)

    def render(self) -> Text:
        text = Text()
        text.append("● ", style=STATUS_STYLES.get(self.status, ""))
        text.append(self.status, style="bold")
        text.append(f"   tokens {self.tokens:,}")
        if self.estimated:
            text.append(" (estimated)", style="italic")
        if self.elapsed is not None:
            text.append(f"   {_clock(self.elapsed)}")
        return text


def _clock(seconds: float) -> str:
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, rest = divmod(whole, 60)
    return f"{minutes} min {rest:02d} s"
