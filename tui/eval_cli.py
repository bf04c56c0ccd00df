"""``routeshell eval``: evaluating a model served behind an OpenAI-compatible endpoint.

``eval judge`` parses its options here and hands them to :func:`engine.evaluation.judge.run_judge`;
what the engine reports comes back as events, printed as JSON lines with ``--json`` or drawn as a
progress bar and a table in a terminal (:mod:`tui.eval_report`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui.arg_types import api_key, given_path, http_url, model_name, positive_seconds

if TYPE_CHECKING:
    from engine.errors import RouteshellError

DESCRIPTION = """\
Evaluate a model served behind an OpenAI-compatible endpoint ('routeshell serve', vLLM, llama.cpp,
a hosted API), compare routers, or score planners.

actions:
  judge   the model under test answers each sample of a test set; a judge model scores every
          answer against the sample's reference answer (see 'routeshell eval judge --help')
  router  routers and baselines on the held-out split of labelled router samples
          (see 'routeshell eval router --help')
  planner planners (the served model, with and without constrained decoding, and a rule-based
          parser) scored by the effect of their plans (see 'routeshell eval planner --help')
"""

JUDGE_DESCRIPTION = """\
Ask the model under test each sample of a test set, then ask a judge model to score the answer
against the sample's reference answer from 1 to 5 on accuracy, completeness, fluency,
professionalism and overall, as JSON that must validate against judge_scores.schema.json (a reply
that does not validate is asked again once; then the sample is 'unscored', with the reason).

test set (--data, repeatable): JSONL files (or directories of them) of SFT rows:
{"messages": [...]}, {"system", "user", "assistant"}, {"instruction", "input", "output"} or
{"system", "user", "cot", "final"}. The reference answer is the last assistant turn; what comes
before it is what the model is asked.

results (--out DIR): cache.jsonl keeps every answer and verdict as it arrives, so a run stopped
by Ctrl-C or a crash resumes where it was: the same command asks only what is missing. At the
end, details.jsonl holds one line per sample (question, reference, answer, scores, reason) and
summary.json the averages per criterion and the counts (scored, unscored, failed).

API keys: --api-key, else $OPENAI_API_KEY or $LLM_API_KEY, for the model under test;
--judge-api-key, else $ROUTESHELL_JUDGE_API_KEY, else $OPENAI_API_KEY or $LLM_API_KEY, for the
judge (prefer the variables: other users can read a command line). Without --model or
--judge-model, the first model the endpoint lists at /models is used.
"""

EXIT_CODES = """\
exit codes:
  0    every sample was asked and judged (a sample may still be unscored or failed: see the counts)
  1    the results could not be written into --out (a full disk, a read-only directory)
  2    bad input: a missing test file, a row that is not an SFT row (with its line), an empty set,
       a bad option, --out in use by another run
  3    an endpoint failed: unreachable, a wrong URL or key, malformed replies, errors after the
       retries, or every sample failed
  130  interrupted (Ctrl-C): what was judged is kept in --out; the same command resumes
  143  terminated (SIGTERM): as for Ctrl-C
"""

#: The exit codes of ``eval`` as a whole: each action's --help says what it gives.
ACTIONS_EXIT_CODES = """\
exit codes (each action's --help says which it gives, and when):
  0    done
  1    the results could not be written (a full disk, a read-only directory)
  2    bad input: a missing or malformed data file, a bad option, an unknown action
  3    an endpoint failed (judge, planner): unreachable, a wrong URL or key, errors after the
       retries
  130  interrupted (Ctrl-C)
  143  terminated (SIGTERM), stopped as Ctrl-C stops it
"""


def _count(low: int, high: int | None = None) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            upper = f" and {high}" if high is not None else " or more"
            raise argparse.ArgumentTypeError(
                f"expected a whole number {'between ' if high else ''}{low}{upper}, got {text!r}"
            )
        return value

    return parse


def add_eval_command(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Add ``eval`` and its actions to the ``routeshell`` subcommands."""
    evaluation = commands.add_parser(
        "eval",
        help="evaluate a served model (judge), compare routers (router) or score planners (planner)",
        description=DESCRIPTION,
        epilog=ACTIONS_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = evaluation.add_subparsers(dest="eval_command", metavar="ACTION", required=True, parser_class=parser_class)
    judge = actions.add_parser(
        "judge",
        help="a judge model scores the answers of the model under test to a test set",
        description=JUDGE_DESCRIPTION,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = judge.add_argument
    add(
        "--data",
        action="append",
        required=True,
        type=given_path,
        metavar="PATH",
        help="the test set (repeatable; see above)",
    )
    add(
        "--model-endpoint",
        required=True,
        type=http_url,
        metavar="URL",
        help="base URL of the model under test (like http://127.0.0.1:8765/v1)",
    )
    add("--judge-endpoint", required=True, type=http_url, metavar="URL", help="base URL of the judge model")
    add(
        "--model",
        type=model_name,
        metavar="NAME",
        help="the model under test (default: the first that --model-endpoint lists)",
    )
    add(
        "--judge-model",
        type=model_name,
        metavar="NAME",
        help="the judge model (default: the first that --judge-endpoint lists)",
    )
    add(
        "--out",
        type=given_path,
        default=Path("eval-judge"),
        metavar="DIR",
        help="where results go (default ./eval-judge)",
    )
    add("--concurrency", type=_count(1, 64), default=4, metavar="N", help="samples in flight at once, 1-64 (4)")
    add("--limit", type=_count(1), metavar="N", help="only the first N samples of the test set")
    add("--timeout", type=positive_seconds, default=120.0, metavar="S", help="seconds to wait for one reply (120)")
    add("--api-key", type=api_key, metavar="KEY", help="API key of the model endpoint (see above for the variables)")
    add(
        "--judge-api-key",
        type=api_key,
        metavar="KEY",
        help="API key of the judge endpoint (see above for the variables)",
    )
    add("--json", action="store_true", help="print JSON-lines events on stdout instead of a progress bar and a table")
    from tui.router_eval_cli import ROUTER_EXIT_CODES, add_eval_router

    add_eval_router(actions, parser_class, ROUTER_EXIT_CODES)
    from tui.planner_cli import add_eval_planner

    add_eval_planner(actions, parser_class)


def run_eval_command(args: argparse.Namespace) -> int:
    """Run ``routeshell eval ACTION``; return the exit code (errors the user can cause raise RouteshellError)."""
    if args.eval_command == "planner":
        from tui.planner_cli import run_eval_planner

        return run_eval_planner(args)
    if args.eval_command == "router":
        from tui.router_eval_cli import run_eval_router

        return run_eval_router(args)
    from engine.evaluation.endpoints import check_url, endpoint, listed_model
    from engine.evaluation.judge import JudgeOptions, run_judge

    model_url = check_url("--model-endpoint", args.model_endpoint)
    judge_url = check_url("--judge-endpoint", args.judge_endpoint)
    from engine.urls import checked_api_key

    shared = "OPENAI_API_KEY" if os.environ.get("OPENAI_API_KEY") else "LLM_API_KEY"
    shared_key = checked_api_key(os.environ.get(shared), f"${shared}")
    model_key = args.api_key or shared_key
    judge_own = checked_api_key(os.environ.get("ROUTESHELL_JUDGE_API_KEY"), "$ROUTESHELL_JUDGE_API_KEY")
    judge_key = args.judge_api_key or judge_own or shared_key
    model_name = args.model or listed_model(model_url, model_key, option="--model", timeout_s=args.timeout)
    judge_name = args.judge_model or listed_model(judge_url, judge_key, option="--judge-model", timeout_s=args.timeout)
    options = JudgeOptions(
        data=tuple(args.data),
        model=endpoint(model_url, model_name, model_key, timeout_s=args.timeout),
        judge=endpoint(judge_url, judge_name, judge_key, timeout_s=args.timeout),
        out=args.out,
        concurrency=args.concurrency,
        limit=args.limit,
    )
    # SIGTERM stops the run as Ctrl-C does (tui.termination): the cache is kept and the process says so.
    if args.json:
        return _run_json(options, run_judge)
    from tui.eval_report import EvalReport

    report = EvalReport(progress=sys.stderr.isatty())
    try:
        outcome = run_judge(options, report.show)
    except KeyboardInterrupt as exc:
        report.stop()
        raise _interrupted(options.out, exc) from None
    finally:
        report.stop()
    report.print_outcome(outcome)
    _check_failure(outcome)
    return 0


def _check_failure(outcome: Any) -> None:
    """Raise the one-line error of a run in which every sample failed (exit code 3)."""
    from engine.errors import ExitCode, RouteshellError

    failure = outcome.failure()
    if failure is not None:
        raise RouteshellError(failure, exit_code=ExitCode.ENDPOINT)


def _interrupted(out: Path, stop: KeyboardInterrupt) -> RouteshellError:
    """The one-line error of a run stopped by ``stop``: Ctrl-C (exit code 130) or SIGTERM (143)."""
    from engine.errors import ExitCode, RouteshellError
    from engine.names import display_name
    from tui.termination import Terminated

    what, code = ("terminated", ExitCode.TERMINATED) if isinstance(stop, Terminated) else \
        ("interrupted", ExitCode.INTERRUPTED)  # fmt: skip
    return RouteshellError(
        f"{what}: what was judged is kept in {display_name(str(out))}; the same command resumes", exit_code=code
    )


def _run_json(options: Any, run_judge: Any) -> int:
    from engine.errors import ExitCode, RouteshellError
    from engine.events import emit, json_line

    def print_line(event: dict[str, Any]) -> None:
        sys.stdout.write(json_line(event) + "\n")
        sys.stdout.flush()

    def sink(event: Any) -> None:
        emit(print_line, event)

    try:
        _check_failure(run_judge(options, sink))
    except RouteshellError as err:
        sink({"type": "error", "message": str(err), "exit_code": int(err.exit_code)})
        raise
    except KeyboardInterrupt as exc:
        error = _interrupted(options.out, exc)
        sink({"type": "error", "message": str(error), "exit_code": int(error.exit_code)})
        raise error from None
    return ExitCode.OK
