"""Errors a user can cause, each with one clear line and a documented exit code."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes shared by every routeshell command (documented in the README)."""

    OK = 0
    FAILED = 1
    USAGE = 2
    ENDPOINT = 3
    INTERRUPTED = 130
    TERMINATED = 143  # SIGTERM: 128 + 15


class RouteshellError(Exception):
    """An error meant for the user: ``str(err)`` is one line, ``err.exit_code`` the exit status."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, *, exit_code: ExitCode | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(RouteshellError):
    """Bad input on the command line or in a config file (exit code 2)."""

    exit_code = ExitCode.USAGE
