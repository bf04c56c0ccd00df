"""Bulk file management against a plain Python loop doing the same work: select-and-move, and classify.

1. Select and move 10,000 ``.log`` files (among 12,000 files in 20 directories) into ``archive/``
   with one ``{"op": "move", "match": {"glob": "**/*.log"}, "to": "archive"}`` step: the match is
   expanded, every step journaled and fsynced, every path resolved beneath the root. The plain loop
   walks with ``os.scandir``, renames with ``os.rename`` and fsyncs the source and target
   directories after each rename, as routeshell does.
2. Classify 10,000 text files by content rules (three ``contains`` rules and a default) with one
   ``classify`` step, against a plain loop that reads the same bytes of each file, picks the
   directory and renames it with the same fsyncs.

Each side runs on a fresh copy of the workspace each round; the ratio routeshell/plain is printed
per round and as the median. The goal is at most 2x for both, journal included.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.plans.apply import apply_plan  # noqa: E402
from engine.plans.expand import expand_plan  # noqa: E402
from engine.plans.model import parse_plan  # noqa: E402
from engine.plans.policy import Policy  # noqa: E402

FILES = 10_000
OTHERS = 2_000
DIRS = 20
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
TARGET = 2.0
TOPICS = ("architecture", "invoice", "holiday")
RULES = [{"contains": topic, "to": f"sorted/{topic}"} for topic in TOPICS] + [{"default": True, "to": "sorted/misc"}]
POLICY = Policy(max_batch=FILES + OTHERS)


def make_tree(root: Path, *, texts: bool) -> None:
    """``DIRS`` directories holding ``FILES`` files to select (and ``OTHERS`` to leave when moving logs)."""
    for d in range(DIRS):
        (root / f"d{d:02}").mkdir(parents=True)
    for i in range(FILES):
        directory = root / f"d{i % DIRS:02}"
        if texts:
            topic = TOPICS[i % 4] if i % 4 < 3 else "nothing in particular"
            (directory / f"note{i}.txt").write_text(f"Note {i}\nThis one is about {topic}.\n" + "filler line\n" * 20)
        else:
            (directory / f"f{i}.log").write_text(f"log {i}\n")
    if not texts:
        for i in range(OTHERS):
            (root / f"d{i % DIRS:02}" / f"keep{i}.txt").write_text("keep\n")


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def plain_move(root: Path) -> int:
    target = root / "archive"
    target.mkdir()
    fsync_dir(str(root))
    moved = 0
    stack = [str(root)]
    while stack:
        directory = stack.pop()
        with os.scandir(directory) as entries:
            found = list(entries)
        for entry in found:
            if entry.is_dir(follow_symlinks=False):
                if entry.path != str(target):
                    stack.append(entry.path)
            elif entry.name.endswith(".log") and entry.is_file(follow_symlinks=False):
                os.rename(entry.path, target / entry.name)
                fsync_dir(directory)
                fsync_dir(str(target))
                moved += 1
    return moved


def plain_classify(root: Path) -> int:
    made: set[str] = set()
    moved = 0
    stack = [str(root)]
    while stack:
        directory = stack.pop()
        with os.scandir(directory) as entries:
            found = list(entries)
        for entry in found:
            if entry.is_dir(follow_symlinks=False):
                if entry.name != "sorted":
                    stack.append(entry.path)
                continue
            with open(entry.path, "rb") as handle:
                text = handle.read(1 << 20).decode("utf-8", errors="replace").casefold()
            to = next((rule["to"] for rule in RULES if rule.get("default") or rule["contains"] in text), None)
            if to is None:
                continue
            target = root / str(to)
            if str(target) not in made:
                target.mkdir(parents=True, exist_ok=True)
                fsync_dir(str(target.parent))
                made.add(str(target))
            os.rename(entry.path, target / entry.name)
            fsync_dir(directory)
            fsync_dir(str(target))
            moved += 1
    return moved


def routeshell(root: Path, step: dict[str, object]) -> int:
    plan = parse_plan(__import__("json").dumps({"version": 1, "goal": "bench", "steps": [step]}))
    concrete = expand_plan(root, plan, POLICY)
    return apply_plan(root, concrete, policy=POLICY).steps


def measure(name: str, texts: bool, plain: object, step: dict[str, object]) -> None:
    base = Path(tempfile.mkdtemp(prefix="bench-bulk-"))
    try:
        template = base / "template"
        make_tree(template, texts=texts)
        ratios = []
        for round_ in range(ROUNDS):
            times = {}
            for side in ("plain", "routeshell"):
                work = base / f"{side}-{round_}"
                shutil.copytree(template, work)
                start = time.perf_counter()
                done = plain(work) if side == "plain" else routeshell(work, step)  # type: ignore[operator]
                times[side] = time.perf_counter() - start
                assert done >= FILES * (3 if texts else 4) // 4, (side, done)
                shutil.rmtree(work)
            ratios.append(times["routeshell"] / times["plain"])
            print(f"  {name} round {round_ + 1}: plain {times['plain']:.2f} s, routeshell {times['routeshell']:.2f} s, "
                  f"ratio {ratios[-1]:.2f}x", flush=True)  # fmt: skip
        median = statistics.median(ratios)
        verdict = "within" if median <= TARGET else "over"
        print(f"{name}: routeshell/plain {median:.2f}x (median of {ROUNDS}; goal at most {TARGET:.0f}x: {verdict})")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    measure("select and move 10,000 files", False, plain_move,
            {"op": "move", "match": {"glob": "**/*.log"}, "to": "archive"})  # fmt: skip
    measure("classify 10,000 text files", True, plain_classify,
            {"op": "classify", "match": {"glob": "**/*.txt"}, "rules": RULES})  # fmt: skip


if __name__ == "__main__":
    main()
