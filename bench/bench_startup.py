"""Startup time of ``routeshell --help`` and ``routeshell --version`` against a bare ``python -c pass``.

The target is a median under 0.3 s; the ratio to the bare interpreter shows how much the command adds
on top of what Python itself costs on this machine. ``routeshell route`` with the shipped TF-IDF
router (loading it and scoring one task) is timed the same way, with no target of its own.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

RUNS = 15
TARGET_S = 0.3


def median_seconds(argv: list[str], runs: int = RUNS) -> float:
    """Return the median wall time of running ``argv`` ``runs`` times."""
    times: list[float] = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Print the median of each command in ms, its ratio to bare Python, and whether it meets the target."""
    script = Path(sys.executable).parent / "routeshell"
    # The bare interpreter runs first and is the baseline every command is divided by.
    bare = median_seconds([sys.executable, "-c", "pass"])
    print(f"python -c pass        median {bare * 1000:7.1f} ms  (baseline, {RUNS} runs)")
    for flag in ("--help", "--version"):
        took = median_seconds([str(script), flag])
        verdict = "under" if took < TARGET_S else "OVER"
        print(
            f"routeshell {flag:<10} median {took * 1000:7.1f} ms  ratio {took / bare:5.2f}x bare python  "
            f"{verdict} the {TARGET_S:g} s target"
        )
    route = [str(script), "--profile", "local", "route", "move the pdfs into finance"]
    took = median_seconds(route)
    print(
        f"routeshell route      median {took * 1000:7.1f} ms  ratio {took / bare:5.2f}x bare python"
        "  (the shipped router)"
    )


if __name__ == "__main__":
    main()
