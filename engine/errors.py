"""Errors a user can cause, each with one clear line and a documented exit code."""

from __future__ import annotations

from enum import IntEnum
from typing import TypeVar


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


Error = TypeVar("Error", bound=BaseException)


def keep_errno(error: Error, cause: BaseException) -> Error:
    """``error`` carrying the errno of ``cause`` (an OSError, or an error that kept one), if any.

    The one line of ``error`` is for the user; the errno lets a caller tell what the environment
    refused (a full disk, a file system without extended attributes) from what the input asked for.
    """
    code = errno_of(cause)
    if code is not None:
        error.errno = code  # type: ignore[attr-defined]
    return error


def errno_of(exc: BaseException) -> int | None:
    """The errno of ``exc`` or of the OS error it reports (see :func:`keep_errno`); None when there is none."""
    code = getattr(exc, "errno", None)
    return code if isinstance(code, int) else None
