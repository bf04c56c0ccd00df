"""Resolving and listing a 100,000-file tree through the sandbox against plain ``os`` calls on the same tree.

``Workspace.walk`` opens every directory beneath the root descriptor (``openat2`` where the kernel has
it), sorts it and ``lstat``s each entry; ``os.walk`` is the baseline and only reads the directories
(``os.walk`` plus an ``os.lstat`` of every entry is shown too, to tell the stats from the rest).
Resolving 10,000 single paths with ``Workspace.lstat`` is compared with ``os.lstat`` on the joined path.
Both sides of each ratio are measured in the same run, on the same warm tree.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from engine.workspace.sandbox import HAVE_OPENAT2, Workspace

DIRS = 100
FILES_PER_DIR = 1_000
LOOKUPS = 10_000
RUNS = 3


def make_tree(root: Path) -> None:
    """Create ``DIRS`` directories of ``FILES_PER_DIR`` empty files under ``root``, reporting progress on stderr."""
    flags = os.O_CREAT | os.O_WRONLY | os.O_EXCL | os.O_CLOEXEC
    for d in range(DIRS):
        directory = root / f"d{d:03d}"
        directory.mkdir()
        for f in range(FILES_PER_DIR):
            # os.open/os.close skips the buffered file object, which matters at 100,000 files.
            os.close(os.open(directory / f"f{f:04d}.txt", flags, 0o644))
        if (d + 1) % 20 == 0:
            print(f"  created {(d + 1) * FILES_PER_DIR:,} files", file=sys.stderr, flush=True)


def median_seconds(work: Callable[[], int]) -> tuple[float, int]:
    """Return the median seconds of ``work()`` over ``RUNS`` runs, and what its last run returned."""
    times: list[float] = []
    result = 0
    for _ in range(RUNS):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def lookup_paths() -> list[str]:
    """Return ``LOOKUPS`` relative file paths spread evenly over every directory."""
    per_dir = LOOKUPS // DIRS
    step = FILES_PER_DIR // per_dir
    return [f"d{d:03d}/f{f:04d}.txt" for d in range(DIRS) for f in range(0, FILES_PER_DIR, step)][:LOOKUPS]


def row(label: str, seconds: float, count: int, unit: str) -> str:
    """Return one result line: the median in ms, how many were seen, and the rate per second."""
    return f"{label:<20}  median {seconds * 1000:8.1f} ms  {count:>7,} {unit}  {count / seconds:12,.0f} {unit}/s"


def main() -> None:
    """Print the walk and lookup medians in ms, their rates, and the ratio of each to plain ``os``."""
    with tempfile.TemporaryDirectory(prefix="routeshell-bench-") as tmp:
        root = Path(tmp)
        print(f"creating {DIRS * FILES_PER_DIR:,} files …", file=sys.stderr, flush=True)
        make_tree(root)
        paths = lookup_paths()
        joined = [os.path.join(root, path) for path in paths]

        with Workspace(root) as ws:

            def sandbox_walk() -> int:
                return sum(1 for _ in ws.walk("."))

            def sandbox_lstat() -> int:
                return sum(ws.lstat(path) is not None for path in paths)

            def plain_walk() -> int:
                return sum(len(dirs) + len(files) for _, dirs, files in os.walk(root))

            def plain_walk_lstat() -> int:
                # os.walk reads d_type and never stats; Workspace.walk lstats every entry, so this tells the two apart.
                seen = 0
                for directory, dirs, files in os.walk(root):
                    for name in dirs + files:
                        os.lstat(os.path.join(directory, name))
                        seen += 1
                return seen

            def plain_lstat() -> int:
                return sum(os.lstat(path) is not None for path in joined)

            walk_s, walked = median_seconds(sandbox_walk)
            os_walk_s, os_walked = median_seconds(plain_walk)
            os_walk_lstat_s, _ = median_seconds(plain_walk_lstat)
            lstat_s, found = median_seconds(sandbox_lstat)
            os_lstat_s, os_found = median_seconds(plain_lstat)

    if (walked, found) != (os_walked, os_found):
        raise SystemExit(f"the sandbox saw {walked:,} paths and {found:,} files; os saw {os_walked:,} and {os_found:,}")
    resolver = "openat2" if HAVE_OPENAT2 else "component walk (no openat2)"
    print(f"tree of {DIRS} dirs x {FILES_PER_DIR:,} files; resolver {resolver}; medians of {RUNS} runs")
    print(row('Workspace.walk(".")', walk_s, walked, "paths"))
    print(row("os.walk", os_walk_s, os_walked, "paths"))
    print(f"ratio Workspace.walk/os.walk {walk_s / os_walk_s:6.2f}x")
    print(row("os.walk + os.lstat", os_walk_lstat_s, os_walked, "paths"))
    print(f"ratio Workspace.walk/(os.walk + os.lstat of each entry) {walk_s / os_walk_lstat_s:6.2f}x")
    print(row("Workspace.lstat", lstat_s, found, "files"))
    print(row("os.lstat (joined)", os_lstat_s, os_found, "files"))
    print(f"ratio Workspace.lstat/os.lstat {lstat_s / os_lstat_s:6.2f}x")


if __name__ == "__main__":
    main()
