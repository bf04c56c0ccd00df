"""How a training stage is asked to stop, and how its loss is reported: light, no torch.

:class:`StopRequest` is set from a signal handler; the trainer callback sees it after the current
optimizer step, saves a checkpoint there and stops.
"""

from __future__ import annotations

import math
import threading


class StopRequest:
    """A flag a signal handler sets to stop training after the current step.

    ``armed`` is true while optimizer steps run, the only time a stop can leave a checkpoint;
    before that (reading data, tokenizing) a signal handler should abort at once instead.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self.armed = False

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()


def perplexity(loss: float) -> float:
    """Return ``exp(loss)``, capped so that a diverged run reports a number, not an overflow."""
    return math.exp(min(loss, 50.0))
