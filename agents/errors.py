"""Ways an agent run ends early that the user caused, each with its exit code."""

from __future__ import annotations

from engine.errors import ExitCode, RouteshellError


class BudgetExceeded(RouteshellError):
    """The run used more tokens than ``--max-cost-tokens`` allows (exit code 1)."""


class RunStopped(RouteshellError):
    """The user stopped the run; its thread continues from the last completed step (exit code 130)."""

    exit_code = ExitCode.INTERRUPTED
