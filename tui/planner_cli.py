"""``routeshell train planner`` and ``routeshell eval planner``.

``train planner`` trains the planner adapter on generated cases (:mod:`engine.planner.train`) and
writes it as a directory (adapter, tokenizer, ``planner_meta.json``), made beside ``--out`` and
moved into place once training is done, so a crash or Ctrl-C leaves the old adapter (Ctrl-C with a
checkpoint beside it that ``--resume`` continues) or the new one. ``eval planner`` scores
predictors on cases by the effect of their plans (:mod:`engine.planner.evaluate`).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.names import shell_line, shell_word
from tui.arg_types import http_url, model_name, positive_int, positive_seconds, probability, random_seed

PLANNER_EXIT_CODES = """\
exit codes:
  0    done
  1    a file could not be written (a full disk, a read-only directory), or the cases'
       workspaces could not be made in TMPDIR (no room, no extended attributes): set TMPDIR to
       a directory on a disk with room, on a file system that keeps tags (ext4, xfs, btrfs)
  2    bad input: a missing, unreadable or malformed case file (with its line: a line over
       1 MiB, an object that names a key twice, a gold plan that is no planner reply or that the
       dry run or the policy refuses), an unknown predictor, an option out of its range
  3    the model endpoint failed (unreachable, errors after the retries)
  130  interrupted (Ctrl-C)
  143  terminated (SIGTERM), stopped as Ctrl-C stops it
"""

EVAL_PLANNER_DESCRIPTION = """\
Score planners by what their plans do. Each case (a request over a fixture workspace, with its
gold plan) is applied twice in temporary copies (under TMPDIR) through the real engine: the
predicted plan and the gold one. A prediction is right when the two trees are equal (names,
contents, tags).

--data takes JSONL case files and two words: 'held-out' (generated cases that training never
sees: --count of them from --seed) and 'handwritten' (the requests written by hand that ship with
routeshell). Each data set is reported on its own. A case file has one case a line, each line at
most 1 MiB, where no object names a key twice (as in a plan file); a case whose gold plan is not
a valid planner reply (a run or patch step: the planner gives file ops only) or does not apply is
an error of the file, and the command stops.

Predictors (--predictor, repeatable): 'model' (the served planner, one greedy answer decoded
under the planner reply schema), 'agent' (the same, asked again greedily when the dry run
refuses the answer because a step selects nothing, under the schema without the folder or filter
that selects nothing, or when it does a step twice, without that step there, at most three times;
then from the same prompt, sampled, at most twice while the answer is invalid or refused; and a
plan the planner gives a probability under --min-probability declined, as the Agent pane asks on
the local profile),
'model-free' (the model without constrained decoding), 'rules' (a rule-based parser of common
phrasings) and 'gold' (the gold plan: checks the harness). The model
is asked at --base-url (default http://127.0.0.1:8765/v1, the local server) as --model (default
planner, the adapter's name there): start it with 'routeshell serve --model DIR --adapter
planner=DIR'.

Reported: exact-effect accuracy, valid plans (the planner reply schema and the path rules; a
predicted plan that is not valid is never applied), plans refused by the dry run or the policy,
overreach (plans that changed a path the gold plan leaves alone), declined plans ('agent': a
declined plan changes nothing, and is right only when the request asks for no change), for
'model' and 'agent' the gold plans that fit the schemas they are decoded under (what they could
answer at best; a plan of the same effect may still fit where the gold one does not), and
p50/p95 latency of one prediction; --json prints every case too, with the plan predicted for it
and, for 'agent', the probability the planner gives that plan (with --min-probability 0 it is
not asked for: give a tiny bound such as 0.000001 to have every plan scored and offered).
"""

PREDICTORS = ("model", "agent", "model-free", "rules", "gold")


def add_eval_planner(actions: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Add ``eval planner`` to the ``eval`` actions."""
    planner = actions.add_parser(
        "planner",
        help="score planners by the effect of their plans on fixture workspaces",
        description=EVAL_PLANNER_DESCRIPTION,
        epilog=PLANNER_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = planner.add_argument
    add("--data", action="append", required=True, metavar="FILE", help="cases: a JSONL file, held-out or handwritten")
    add(
        "--predictor",
        action="append",
        choices=PREDICTORS,
        metavar="NAME",
        help="model, agent, model-free, rules or gold",
    )
    add(
        "--count",
        type=positive_int,
        default=200,
        metavar="N",
        help="held-out: how many generated cases (200, at most 20000)",
    )
    add("--seed", type=random_seed, default=0, metavar="N", help="held-out: the generator's seed (0)")
    add(
        "--base-url",
        default="http://127.0.0.1:8765/v1",
        type=http_url,
        metavar="URL",
        help="the served planner's OpenAI base URL",
    )
    add("--model", default="planner", type=model_name, metavar="NAME", help="the planner's model id there (planner)")
    add("--limit", type=positive_int, metavar="N", help="at most N cases of each data set")
    add("--min-probability", type=probability, default=None, metavar="P",
        help="agent: decline a plan the planner gives a probability under P, 0-1 (local profile: 0.4)")  # fmt: skip
    add("--timeout", type=positive_seconds, default=120.0, metavar="S",
        help="seconds to wait for one reply of the served planner (120)")  # fmt: skip
    add("--json", action="store_true", help="print the report (and every case) as JSON")


def _data_sets(args: argparse.Namespace) -> list[tuple[str, list[Any]]]:
    from engine.errors import UsageError
    from engine.planner.cases import generate_case, held_out
    from engine.planner.evaluate import MAX_CASES, load_cases

    if args.count > MAX_CASES:
        raise UsageError(f"--count {args.count}: at most {MAX_CASES} held-out cases (as in a case file)")
    sets: list[tuple[str, list[Any]]] = []
    for item in args.data:
        if item == "held-out":
            cases: list[Any] = []
            index = 0
            wanted = min(args.count, args.limit or args.count)  # never generate what --limit drops
            while len(cases) < wanted:
                if held_out(f"plan_s{args.seed}_{index:05d}"):
                    cases.append(generate_case(index, seed=args.seed))
                index += 1
            sets.append((f"held-out (seed {args.seed})", cases))
        elif item == "handwritten":
            sets.append(("handwritten", load_cases(handwritten_path())))
        else:
            path = Path(item)
            if not item:  # (Path("") is the current directory)
                raise UsageError("--data '': no such file (or the words held-out, handwritten)")
            if path.is_dir():
                raise UsageError(f"--data {shell_word(item)}: a directory, not a JSONL case file")
            if not path.exists():
                raise UsageError(f"--data {shell_word(item)}: no such file (or the words held-out, handwritten)")
            if not path.is_file():
                raise UsageError(f"--data {shell_word(item)}: not a regular file (a JSONL case file)")
            sets.append((item, load_cases(path)))
    if args.limit:
        sets = [(name, cases[: args.limit]) for name, cases in sets]
    return sets


def handwritten_path() -> Path:
    """The hand-written cases that ship with routeshell."""
    import engine.planner

    return Path(engine.planner.__file__).parent / "data" / "handwritten.jsonl"


#: The predictors decoded under the narrowed schemas, whose rows report how many gold plans fit them.
CONSTRAINED = {"model", "agent"}


def run_eval_planner(args: argparse.Namespace) -> int:
    """Run ``routeshell eval planner``; return the exit code."""
    import json

    from engine.evaluation.endpoints import check_url
    from engine.planner.evaluate import (
        Predictor,
        endpoint_predictor,
        evaluate,
        gold_fits,
        gold_predictor,
        rules_predictor,
    )
    from engine.planner.prompt import PLANNER_GUIDED_RETRIES, PLANNER_MIN_PROBABILITY, PLANNER_RETRIES

    predictors = list(dict.fromkeys(args.predictor or ["model", "model-free", "rules"]))
    base_url = check_url("--base-url", args.base_url)
    sets = _data_sets(args)
    closers: list[Callable[[], None]] = []
    made: dict[str, Predictor] = {"gold": gold_predictor, "rules": rules_predictor}
    for name in ("model", "agent", "model-free"):
        if name in predictors:
            retries = PLANNER_RETRIES if name == "agent" else 0
            least = 0.0
            if name == "agent":
                least = PLANNER_MIN_PROBABILITY if args.min_probability is None else args.min_probability
            guided = PLANNER_GUIDED_RETRIES if name == "agent" else 0
            predict, close = endpoint_predictor(base_url, args.model, constrained=name != "model-free", retries=retries,
                                                min_probability=least, guided=guided,
                                                timeout_s=args.timeout)  # fmt: skip
            made[name] = predict
            closers.append(close)
    report: dict[str, Any] = {"data": {}}
    try:
        for set_name, cases in sets:
            rows: dict[str, Any] = {}
            # What the constrained planner could answer at best: the gold plans its schemas allow.
            misfits = [case.id for case in cases if not gold_fits(case)] if CONSTRAINED & set(predictors) else []
            for name in predictors:
                started = time.monotonic()
                progress = _progress(f"{set_name}: {name}", len(cases))
                summary, results = evaluate(cases, made[name], progress=progress)
                _endpoint_failed(name, results)
                summary["seconds"] = round(time.monotonic() - started, 1)
                if name in CONSTRAINED:
                    summary["gold_fit"] = 1 - len(misfits) / len(cases)
                    summary["gold_misfits"] = misfits
                if args.json:
                    summary["results"] = [result.as_dict() for result in results]
                rows[name] = summary
            report["data"][set_name] = rows
    finally:
        for close in closers:
            close()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_planner_table(report)
    return 0


def _endpoint_failed(name: str, results: list[Any]) -> None:
    """Raise EndpointError when every prediction of a model predictor failed at the endpoint."""
    from engine.llm.client import EndpointError

    if (
        name in ("model", "agent", "model-free")
        and results
        and all(r.error and r.error.startswith("LLM endpoint") for r in results)
    ):
        raise EndpointError(results[0].error)


def _progress(label: str, total: int) -> Callable[[int], None]:
    def show(done: int) -> None:
        if sys.stderr.isatty():
            end = "\n" if done == total else ""
            print(f"\reval planner: {label}: {done}/{total}", end=end, file=sys.stderr, flush=True)

    return show


def print_planner_table(report: dict[str, Any]) -> None:
    """Print the report as one table per data set, names escaped."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from engine.names import display_line

    console = Console()
    for set_name, rows in report["data"].items():
        first = next(iter(rows.values()))
        table = Table(title=f"{escape(display_line(set_name))}: {first['cases']} cases", title_justify="left")
        columns = ("planner", "exact effect", "valid", "refused", "overreach", "declined", "gold fits", "p50 s",
                   "p95 s")  # fmt: skip
        for column in columns:
            table.add_column(column, justify="left" if column == "planner" else "right")
        for name, s in rows.items():
            rates = [f"{s[key]:.3f}" for key in ("exact_effect", "valid", "refused", "overreach", "declined")]
            fit = f"{s['gold_fit']:.3f}" if "gold_fit" in s else "-"
            table.add_row(name, *rates, fit, f"{s['latency_p50_s']:.3f}", f"{s['latency_p95_s']:.3f}")
        console.print(table)


def run_train_planner(args: argparse.Namespace, sink: Callable[[Any], None], stop: Any) -> int:
    """Run ``routeshell train planner``; return the exit code."""
    from engine.bitsandbytes_gate import quantized_by_bitsandbytes
    from engine.errors import ExitCode
    from engine.planner.cases import DEFAULT_COUNT
    from engine.planner.train import PLANNER_META, PlannerOptions, resume_settings, train_planner
    from engine.router.router_dir import check_base_dir, replace_dir, replaced_out, resume_point, staging_dir
    from engine.serve.launcher import shipped_models
    from engine.tinyllm.run_dir import out_lock_beside
    from tui.router_cli import quiet

    args.out = replaced_out(args.out)
    base = args.base or shipped_models() / "base"
    check_base_dir(base)
    options = PlannerOptions(
        base=base, out=args.out, count=args.count or DEFAULT_COUNT, seed=args.seed, max_steps=args.max_steps,
        epochs=args.epochs, batch_size=args.batch_size or 8, grad_accum=args.grad_accum or 1, lr=args.lr or 1e-3,
        lora_r=args.lora_r or 32, lora_alpha=args.lora_alpha or 64, lora_dropout=args.lora_dropout or 0.0,
        max_length=args.max_length or 1024, time_limit_min=args.time_limit, save_steps=args.save_steps or 200,
    )  # fmt: skip
    quiet(bitsandbytes=quantized_by_bitsandbytes(base))
    # One run at a time into OUT: a second would share .OUT.partial with this one.
    with out_lock_beside(args.out):
        staging = staging_dir(args.out, keep=args.resume, meta_file=PLANNER_META, what="a planner adapter")
        resume = resume_point(staging, resume_settings(options), resume=args.resume)
        command = shell_line(["routeshell", *sys.argv[1:]]) if sys.argv[1:2] == ["train"] else ""
        summary = train_planner(options, sink, stop, staging=staging, command=command, resume=resume)
        if summary["interrupted"]:
            # OUT stays as it was; the checkpoint in .OUT.partial is what --resume continues.
            sink({"type": "train_done", "stage": "planner", "path": summary["checkpoint"], "steps": summary["steps"],
                  "train_loss": summary["last_loss"], "eval_loss": None, "perplexity": None,
                  "elapsed_s": summary["seconds"], "interrupted": True})  # fmt: skip
            return int(ExitCode.INTERRUPTED)
        replace_dir(staging, args.out)
    sink({"type": "train_done", "stage": "planner", "path": str(args.out), "steps": summary["steps"],
          "train_loss": summary["last_loss"], "eval_loss": None, "perplexity": None, "elapsed_s": summary["seconds"],
          "interrupted": False})  # fmt: skip
    return int(ExitCode.OK)
