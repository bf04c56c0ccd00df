"""Applying a 1,000-step plan of mkdirs, writes, moves and deletes against a plain Python loop doing the same work.

Both sides make every change durable the same way: a write is a temp file in the same directory, an
fsync of it, a rename and an fsync of the directory; a move is a rename and an fsync of both
directories; a delete is an fsync of the directory after the name goes; a mkdir is an fsync of its
parent. routeshell does more on top (the journal record fsynced before each step, deletes moved into
the trash rather than unlinked, and every path resolved beneath the root), and the ratio
routeshell/plain is what that costs; the target is at most 2x. Each side runs on a fresh workspace
each time and both are measured in the same run. Undoing the applied plan is timed once as well.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from engine.plans.apply import apply_plan, undo_last
from engine.plans.model import normalise, plan_problems
from engine.workspace.sandbox import STATE_DIR

STEPS = 1_000
DIRS = 10
RUNS = 3
TARGET_RATIO = 2.0
CONTENT = "routeshell bench line: the quick brown fox jumps over the lazy dog, then it writes it down.\n"


def build_steps() -> list[dict[str, Any]]:
    """Return the steps: ``DIRS`` mkdirs, then write, move and delete in turn up to ``STEPS`` in all.

    A write creates ``d{i%10}/f{i}.txt``; the move after it renames the oldest written file into the
    next directory as ``m{i}.txt``; the delete after that removes the oldest moved file.
    """
    steps: list[dict[str, Any]] = [{"op": "mkdir", "path": f"d{d}"} for d in range(DIRS)]
    written: list[str] = []
    moved: list[str] = []
    for i in range(DIRS, STEPS):
        kind = (i - DIRS) % 3
        if kind == 0:
            path = f"d{i % DIRS}/f{i}.txt"
            steps.append({"op": "write", "path": path, "content": CONTENT})
            written.append(path)
        elif kind == 1:
            source = written.pop(0)
            target = f"d{(i + 1) % DIRS}/m{i}.txt"
            steps.append({"op": "move", "from": source, "to": target})
            moved.append(target)
        else:
            steps.append({"op": "delete", "path": moved.pop(0) if moved else written.pop(0)})
    return steps


def build_plan() -> dict[str, Any]:
    """Return the plan validated and normalised, the way ``parse_plan`` would hand it to ``apply_plan``."""
    document = {"version": 1, "goal": "bench: 1,000 durable file steps", "steps": build_steps()}
    problems = plan_problems(document)
    if problems:
        raise SystemExit(f"the bench plan is invalid: {problems[0]}")
    return normalise(document)


def fsync_path(path: Path) -> None:
    """fsync a file or directory by path."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def plain_apply(root: Path, steps: list[dict[str, Any]]) -> None:
    """Carry out ``steps`` under ``root`` with plain ``os`` calls and the same fsyncs as routeshell's steps."""
    for step in steps:
        op = step["op"]
        if op == "mkdir":
            path = root / step["path"]
            os.mkdir(path, 0o755)
            fsync_path(path.parent)
        elif op == "write":
            path = root / step["path"]
            tmp = path.with_name(f".tmp-{path.name}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, step["content"].encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, path)
            fsync_path(path.parent)
        elif op == "move":
            source, target = root / step["from"], root / step["to"]
            os.rename(source, target)
            fsync_path(source.parent)
            fsync_path(target.parent)
        elif op == "delete":
            path = root / step["path"]
            os.unlink(path)
            fsync_path(path.parent)
        else:
            raise ValueError(f"the plain loop does not do {op!r}")


def tree(root: Path) -> list[tuple[str, bytes]]:
    """Return every path under ``root`` outside the state directory, with the content of the files."""
    found = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != STATE_DIR]
        rel = os.path.relpath(directory, root)
        found.extend((os.path.join(rel, d), b"") for d in dirs)
        found.extend((os.path.join(rel, f), Path(directory, f).read_bytes()) for f in files)
    return sorted(found)


def main() -> None:
    """Print the medians in ms and µs per step, the ratio routeshell/plain, its verdict, and the undo time."""
    start = time.perf_counter()
    plan = build_plan()
    validate_s = time.perf_counter() - start
    counts = {op: sum(step["op"] == op for step in plan["steps"]) for op in ("mkdir", "write", "move", "delete")}

    routeshell_times: list[float] = []
    plain_times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="routeshell-bench-") as tmp:
        base = Path(tmp)
        for run in range(RUNS):
            # Alternate which side goes first, so neither always meets the disk right after the other's burst.
            order = ("routeshell", "plain") if run % 2 == 0 else ("plain", "routeshell")
            for side in order:
                root = base / f"{side}-{run}"
                root.mkdir()
                start = time.perf_counter()
                if side == "routeshell":
                    apply_plan(root, plan)
                    routeshell_times.append(time.perf_counter() - start)
                else:
                    plain_apply(root, plan["steps"])
                    plain_times.append(time.perf_counter() - start)

        last = RUNS - 1
        applied = base / f"routeshell-{last}"
        if tree(applied) != tree(base / f"plain-{last}"):
            raise SystemExit("routeshell and the plain loop left different trees: the comparison is not fair")

        start = time.perf_counter()
        undo_last(applied)
        undo_s = time.perf_counter() - start
        left = tree(applied)

    routeshell_s = statistics.median(routeshell_times)
    plain_s = statistics.median(plain_times)
    ratio = routeshell_s / plain_s
    verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
    mix = ", ".join(f"{count} {op}" for op, count in counts.items())
    print(f"plan of {STEPS:,} steps ({mix}); validated and normalised in {validate_s * 1000:.1f} ms")
    print(
        f"routeshell apply_plan  median {routeshell_s * 1000:8.1f} ms  {routeshell_s / STEPS * 1e6:7.1f} µs/step  "
        f"({RUNS} runs)"
    )
    print(
        f"plain Python loop      median {plain_s * 1000:8.1f} ms  {plain_s / STEPS * 1e6:7.1f} µs/step  "
        f"({RUNS} runs, baseline)"
    )
    print(f"ratio routeshell/plain {ratio:5.2f}x  {verdict} the at most {TARGET_RATIO:g}x target")
    print(
        f"undo_last of the applied plan  {undo_s * 1000:8.1f} ms  {undo_s / STEPS * 1e6:7.1f} µs/step  "
        f"(once; {len(left)} paths left outside {STATE_DIR}/)"
    )


if __name__ == "__main__":
    main()
