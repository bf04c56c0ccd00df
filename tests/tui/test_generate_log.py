"""``routeshell generate`` runs the engine in its own process: the engine's log is its stderr."""

from __future__ import annotations

import logging

import pytest

from tui.generate_cli import log_engine_in_one_line


def test_the_engine_log_is_one_escaped_line_a_record_and_a_failure_no_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A failed prefill printed its traceback (37 lines) before the command's own error line, which says it.
    logger = logging.getLogger("engine")
    saved = logger.handlers, logger.propagate
    try:
        log_engine_in_one_line()
        log = logging.getLogger("engine.serve.engine")
        try:
            raise RuntimeError("In ChooseQuantizationParams, min should be less than or equal to max")
        except RuntimeError:
            log.exception("prefill failed")
        log.warning("a \x1b[2Jslow step\nits second line")
    finally:
        logger.handlers, logger.propagate = saved
    assert capsys.readouterr().err == "routeshell: generate: a \\x1b[2Jslow step\n"
