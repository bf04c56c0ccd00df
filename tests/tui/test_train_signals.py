"""Ctrl-C during ``routeshell train``: real signals sent to this process."""

from __future__ import annotations

import os
import signal
import time

import pytest

from engine.tinyllm.stopping import StopRequest
from tui.train_cli import _stop_on_signals


def _abort_then_clean_up(cleaned: list[str]) -> None:
    with _stop_on_signals(StopRequest()):
        try:
            os.kill(os.getpid(), signal.SIGINT)  # nothing to checkpoint yet: aborts at once
            time.sleep(5)
        finally:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C held down
            time.sleep(0.05)
            cleaned.append("done")


def test_presses_after_the_abort_let_the_cleanup_finish() -> None:
    cleaned: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        _abort_then_clean_up(cleaned)
    assert cleaned == ["done"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def _press_twice_while_training(stop: StopRequest, seen: list[bool]) -> None:
    with _stop_on_signals(stop):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        seen.append(stop.is_set())
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)


def test_a_first_press_while_training_asks_for_a_stop_and_a_second_aborts() -> None:
    stop = StopRequest()
    stop.armed = True
    seen: list[bool] = []
    with pytest.raises(KeyboardInterrupt):
        _press_twice_while_training(stop, seen)
    assert seen == [True]
