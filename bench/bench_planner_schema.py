"""How long the local planner's decoding schema takes to build as a workspace and a request grow.

The schema (engine/planner/narrow.py) is built on every task before the model is asked, from the
request and the workspace view (at most 5,000 entries). Times a request that names one folder and
one that names 50, over a workspace of 20 folders and one of 5,000 whose names share a word (so a
request's words refer to all of them), and prints each against the small case. Never asserts a
timing.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TODAY = dt.date(2026, 6, 15)
REPEATS = 3


def entries(folders: int) -> list:
    from engine.planner.prompt import ViewEntry

    return [ViewEntry(f"d{i} name {i}/f{i}.txt", False, 10, TODAY - dt.timedelta(days=i % 90)) for i in range(folders)]


def request(named: int) -> str:
    return "move everything in " + " and ".join(f"d{i} name {i}" for i in range(named)) + " into old stuff/2026"


def best_of(view: list, said: str) -> float:
    from engine.planner.narrow import narrowed_schema

    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        narrowed_schema(said, view, TODAY)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> int:
    small_view, big_view = entries(20), entries(5000)
    base = best_of(small_view, request(1))
    print(f"{'workspace':>12} {'folders said':>13} {'seconds':>8} {'x small':>8}")
    for view, label in ((small_view, "20 folders"), (big_view, "5,000")):
        for named in (1, 50):
            took = best_of(view, request(min(named, len(view))))
            print(f"{label:>12} {named:>13} {took:8.3f} {took / base:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
