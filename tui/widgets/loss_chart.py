"""The Train pane's chart: training and validation loss against the step, drawn with plotext."""

from __future__ import annotations

from textual_plotext import PlotextPlot

#: Past this many points a series keeps every other one, so a long run stays cheap to draw.
MAX_POINTS = 2000


class LossChart(PlotextPlot):
    """Training loss (each logged step) and validation loss (each evaluation) of one stage."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.train: list[tuple[int, float]] = []
        self.eval: list[tuple[int, float]] = []
        self.stage = ""

    def on_mount(self) -> None:
        self.replot()

    def reset(self, stage: str) -> None:
        """Forget every point and title the chart with ``stage`` (a name from the job's events)."""
        self.stage = stage
        self.train.clear()
        self.eval.clear()
        self.replot()

    def forget_after(self, step: int) -> None:
        """Drop the points past ``step``: a resumed run draws them again from its checkpoint."""
        self.train[:] = [point for point in self.train if point[0] <= step]
        self.eval[:] = [point for point in self.eval if point[0] <= step]
        self.replot()

    def add_train(self, step: int, loss: float) -> None:
        """Add a training loss at ``step``."""
        _append(self.train, step, loss)
        self.replot()

    def add_eval(self, step: int, loss: float) -> None:
        """Add a validation loss at ``step``."""
        _append(self.eval, step, loss)
        self.replot()

    def replot(self) -> None:
        """Draw the series again (the widget renders on its next refresh)."""
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(f"loss · {self.stage}" if self.stage else "loss")
        plt.xlabel("step")
        if self.train:
            plt.plot([s for s, _ in self.train], [v for _, v in self.train], label="train", marker="braille")
        if self.eval:
            plt.plot([s for s, _ in self.eval], [v for _, v in self.eval], label="validation", marker="dot")
        self.refresh()


def _append(series: list[tuple[int, float]], step: int, value: float) -> None:
    if value != value or value in (float("inf"), float("-inf")):
        return  # a NaN or infinite loss cannot be drawn; the log still shows it
    series.append((step, value))
    if len(series) > MAX_POINTS:
        series[:] = series[::2]
