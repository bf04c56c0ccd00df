"""``python -m tui.orphan_guard SIGNAL WORDS...``: ``routeshell WORDS...`` that ends when its starter goes away.

A server started by the shell or by ``routeshell run`` (:mod:`engine.serve.launcher`,
:class:`tui.serve_job.ServeJob`) runs in a process group of its own, so a terminal's signals do
not reach it, and would outlive a shell that was killed, lost its terminal (SIGHUP) or crashed.
Started through this module, it reads its standard input, a pipe whose other end only its starter
holds: when the starter ends, however it ends, the pipe reaches end of file and the command gets
``SIGNAL`` (``SIGTERM`` stops a server cleanly), then SIGKILL if it is still there after a grace
period.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Sequence

from engine.errors import ExitCode

#: How long the command has after ``SIGNAL`` before it is killed.
GRACE_S = 15.0


def _watch(sig: signal.Signals) -> None:
    try:
        while os.read(0, 4096):
            pass  # the starter writes nothing: anything read is ignored
    except OSError:
        pass  # a closed or broken standard input is the same news
    os.kill(os.getpid(), sig)
    time.sleep(GRACE_S)
    os.kill(os.getpid(), signal.SIGKILL)


def main(argv: Sequence[str]) -> int:
    """Watch standard input in a daemon thread, then run ``routeshell argv[1:]``; return its exit code."""
    if not argv or argv[0] not in signal.Signals.__members__:
        print("usage: python -m tui.orphan_guard SIGNAL WORDS...", file=sys.stderr)
        return ExitCode.USAGE
    watcher = threading.Thread(target=_watch, args=(signal.Signals[argv[0]],), name="orphan-guard", daemon=True)
    watcher.start()
    from tui.cli import main as routeshell

    return routeshell(list(argv[1:]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
