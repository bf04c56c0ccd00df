"""Time for the Files pane to show its first screen of a 100,000-entry directory versus a 10-entry one.

Both are measured in the same run, so the ratio big/small is what to compare between machines; the
target is the big one under 1 s. The raw engine scan of the big directory is measured alone too, to
tell the cost of reading the directory from the cost of the UI.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from engine.config.profiles import load_profile
from engine.workspace.listing import scan_directory
from engine.workspace.sandbox import Workspace
from tui.app import RouteshellApp
from tui.widgets.entry_list import EntryList

BIG = 100_000
SMALL = 10
RUNS = 3
TARGET_S = 1.0


def make_files(directory: Path, count: int) -> None:
    """Create ``count`` empty files in ``directory``, reporting progress on stderr for big counts."""
    directory.mkdir()
    flags = os.O_CREAT | os.O_WRONLY | os.O_EXCL
    for i in range(count):
        # os.open/os.close skips the buffered file object, which matters at 100,000 files.
        os.close(os.open(directory / f"file{i:06d}.txt", flags, 0o644))
        if (i + 1) % 20_000 == 0:
            print(f"  created {i + 1:,} files", file=sys.stderr, flush=True)


async def first_screen(root: Path) -> float:
    """Return seconds from starting the app on ``root`` until its entry list holds entries."""
    start = time.perf_counter()
    app = RouteshellApp(root, load_profile("ci"))
    async with app.run_test(size=(80, 24)) as pilot:
        while True:
            # MainScreen is pushed in on_mount and the scan runs in a worker, so poll until both are done.
            lists = app.screen.query(EntryList)
            if lists and len(lists.first().entries) > 0:
                break
            await pilot.pause(0.005)
        elapsed = time.perf_counter() - start
    return elapsed


def median_first_screen(root: Path) -> float:
    """Return the median of :func:`first_screen` over ``RUNS`` runs."""
    return statistics.median(asyncio.run(first_screen(root)) for _ in range(RUNS))


def median_scan(root: Path) -> tuple[float, int]:
    """Return the median seconds of ``scan_directory`` over ``RUNS`` runs, and the number of entries."""
    times: list[float] = []
    found = 0
    for _ in range(RUNS):
        start = time.perf_counter()
        with Workspace(root) as ws:
            found = len(scan_directory(ws, "."))
        times.append(time.perf_counter() - start)
    return statistics.median(times), found


def main() -> None:
    """Print the first-screen medians in ms, the ratio big/small, the target verdict and the scan rate."""
    with tempfile.TemporaryDirectory(prefix="routeshell-bench-") as tmp:
        big = Path(tmp) / "ws"
        small = Path(tmp) / "small"
        print(f"creating {BIG:,} files …", file=sys.stderr, flush=True)
        make_files(big, BIG)
        make_files(small, SMALL)

        # The small directory goes first so Textual's one-off import and CSS costs are not charged to the big one.
        small_s = median_first_screen(small)
        big_s = median_first_screen(big)
        scan_s, found = median_scan(big)

    verdict = "under" if big_s < TARGET_S else "OVER"
    print(f"first screen, {SMALL:>7,} entries  median {small_s * 1000:7.1f} ms  ({RUNS} runs)")
    print(f"first screen, {BIG:>7,} entries  median {big_s * 1000:7.1f} ms  ({RUNS} runs)")
    print(f"ratio big/small {big_s / small_s:5.2f}x  big is {verdict} the {TARGET_S:g} s target")
    print(f"engine scan alone, {found:,} entries  median {scan_s * 1000:7.1f} ms  {found / scan_s:,.0f} entries/s")


if __name__ == "__main__":
    main()
