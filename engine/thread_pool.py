"""A pool of daemon threads for requests to an endpoint, whose results come back to one thread.

Used by the judge and the teacher labeler: each item is worked on in a thread, and what the
threads make (records to cache, results) is handed to the calling thread, the only one that
writes files. The threads are daemons: on Ctrl-C or an endpoint error the run ends at once,
without waiting for requests in flight (what they would bring back is asked again next time).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar

ItemT = TypeVar("ItemT")
NoteT = TypeVar("NoteT")
ResultT = TypeVar("ResultT")

#: How often the calling thread wakes to notice Ctrl-C while it waits.
POLL_S = 0.2


class _Done(Generic[ResultT]):
    """A worker's result, told apart from its notes."""

    def __init__(self, result: ResultT) -> None:
        self.result = result


def run_pool(
    items: Sequence[ItemT],
    work: Callable[[ItemT, Callable[[NoteT], None]], ResultT],
    workers: int,
    on_note: Callable[[NoteT], None],
    *,
    name: str = "pool",
) -> Iterator[ResultT]:
    """Yield ``work(item, post)`` for each item as it ends, from ``workers`` daemon threads.

    ``work`` may ``post`` notes (records to keep) while it runs; ``on_note`` gets each of them in
    the calling thread, in the order the worker made them, before that worker's result is
    yielded. An exception in ``work`` is raised in the calling thread and ends the run.
    """
    tasks: queue.SimpleQueue[ItemT] = queue.SimpleQueue()
    for item in items:
        tasks.put(item)
    messages: queue.SimpleQueue[NoteT | _Done[ResultT] | BaseException] = queue.SimpleQueue()
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                item = tasks.get_nowait()
            except queue.Empty:
                return
            try:
                messages.put(_Done(work(item, messages.put)))
            except BaseException as err:  # handed to the calling thread, which raises it
                messages.put(err)
                return

    threads = [threading.Thread(target=run, name=f"{name}-{n}", daemon=True) for n in range(max(1, workers))]
    for thread in threads:
        thread.start()
    remaining = len(items)
    try:
        while remaining:
            try:
                message = messages.get(timeout=POLL_S)
            except queue.Empty:
                continue
            if isinstance(message, BaseException):
                raise message
            if isinstance(message, _Done):
                remaining -= 1
                yield message.result
            else:
                on_note(message)
    finally:
        stop.set()
