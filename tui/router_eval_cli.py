"""``routeshell eval router``: routers and baselines compared on the held-out split, as a table or JSON."""

from __future__ import annotations

import argparse
from typing import Any

from tui.arg_types import given_path, random_seed
from tui.router_cli import quiet

ROUTER_EXIT_CODES = """\
exit codes:
  0    done
  1    a file could not be written (a full disk, a read-only directory)
  2    bad input: a missing or malformed data file (with its line), no held-out or no training
       task, an unknown baseline, a directory that is not a router
  130  interrupted (Ctrl-C)
  143  terminated (SIGTERM), stopped as Ctrl-C stops it
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

    router = actions.add_parser(
        "router",
        help="compare routers and baselines on the held-out split of labelled samples",
        description=EVAL_ROUTER_DESCRIPTION,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = router.add_argument
    add("--data", action="append", required=True, type=given_path, metavar="FILE", help="labelled samples (repeatable)")
    add("--router", action="append", default=[], type=given_path, metavar="DIR", help="a trained router (repeatable)")
    add("--only", metavar="NAMES", help="comma-separated baselines to run (default: all; 'none' for none)")
    add("--cv", action="store_true", help="also cross-validate the fitted kinds on the training pool (5 folds)")
    add(
        "--oracle",
        type=given_path,
        metavar="FILE",
        help="the oracle's records (train labels --labeler oracle): pass rate against tokens, APGR, CPT(50%%/80%%)",
    )
    add("--drop-no-output", "--drop_no_output", action="store_true", help="skip samples without a usable answer")
    add("--seed", type=random_seed, default=0, metavar="N", help="seed of the fitted baselines and the bootstrap (0)")
    add("--json", action="store_true", help="print the report as JSON instead of a table")


def run_eval_router(args: argparse.Namespace) -> int:
    """Run ``routeshell eval router``; return the exit code."""
    import sys

    from engine.errors import UsageError
    from engine.jsonl import json_text
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

    from engine.router.router_dir import needs_bitsandbytes, read_meta

    for directory in args.router:
        read_meta(directory)  # a damaged router is refused before the baselines' minutes of fitting
    quiet(bitsandbytes=any(needs_bitsandbytes(directory) for directory in args.router))
    options = RouterEvalOptions(tuple(args.data), tuple(args.router), baselines, args.cv, args.seed,
                                args.drop_no_output, oracle=args.oracle, progress=progress)  # fmt: skip
    report = evaluate_routers(options)
    if args.json:
        print(json_text(report, indent=2))
    else:
        print_router_table(report)
    return 0


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
    console = Console(highlight=False, width=200)
    console.print(table)
    costed = [row for row in report["rows"] if row.get("cost")]
    if costed:
        first = costed[0]["cost"]
        cost = Table(title=f"quality and cost on the {first['tasks']} held-out tasks with oracle records "
                           "(cheap: single, expensive: the full loop)", title_justify="left")  # fmt: skip
        for column in ("router", "pass rate", "mean tokens", "APGR", "CPT(50%)", "CPT(80%)"):
            cost.add_column(column, justify="left" if column == "router" else "right")

        def share(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.3f}"

        for row in costed:
            c = row["cost"]
            cost.add_row(escape(display_line(row["router"])), f"{c['pass_rate']:.3f}", f"{c['mean_tokens']:.0f}",
                         share(c["apgr"]), share(c["cpt50"]), share(c["cpt80"]))  # fmt: skip
        console.print(cost)
