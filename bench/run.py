"""Run every ``bench/bench_*.py`` benchmark in turn (``make bench``).

Benchmarks are run by hand: each prints the ratios it measured in one run and never asserts a timing,
because absolute numbers depend on the machine and the load on it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def main() -> None:
    """Run each benchmark module as its own process and print a header before it."""
    benches = sorted(HERE.glob("bench_*.py"))
    for path in benches:
        print(f"== {path.stem} ==", flush=True)
        # A fresh interpreter per bench, so one bench's imports and caches never speed up the next.
        result = subprocess.run([sys.executable, str(path)], cwd=ROOT, check=False)
        if result.returncode != 0:
            print(f"({path.stem} exited with code {result.returncode})", flush=True)
        print(flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
