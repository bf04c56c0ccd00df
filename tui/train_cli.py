"""``routeshell train``: the tokenizer, pretraining, SFT and reasoning SFT of TinyLLM.

The command parses its options here and hands them to ``engine.tinyllm.train``; what the engine
reports comes back as events, printed as JSON lines with ``--events`` (the Train pane reads those)
or drawn as a rich progress bar in a terminal. torch and transformers load only when a training
command runs, never for ``--help``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

from engine.names import shell_line
from tui.arg_types import given_path, name_word, positive_float, positive_int, random_seed
from tui.router_cli import LABELS_HELP, add_label_options, add_router_train_options

if TYPE_CHECKING:
    from engine.events import ErrorEvent, Event
    from engine.tinyllm.stopping import StopRequest

STAGES = ("tokenizer", "pretrain", "sft", "reasoning", "all", "labels", "router", "planner")

DESCRIPTION = """\
Train TinyLLM, a small Llama model, from scratch on this machine.

stages:
  tokenizer   SentencePiece BPE on the pretraining corpus, saved as a transformers tokenizer
  pretrain    next-token prediction on the corpus (a tokenizer is trained into OUT/tokenizer first
              unless --tokenizer names one)
  sft         supervised fine-tuning of --base on chat data (loss on the assistant tokens only)
  reasoning   SFT on worked problems rendered as 【推理过程】 ... 【最终答案】 (--markers en: Reasoning/Answer)
  all         tokenizer, pretrain and sft in a row: OUT/tokenizer, OUT/pretrain, OUT/sft
  labels      labelled router samples (chat JSONL) from a task source and a labeler (see below)
  router      a router learned from labelled samples (--data), saved as a router directory (OUT)
  planner     the planner adapter: LoRA on --base, trained on --count generated cases (--seed;
              held-out ones never), saved as an adapter directory (OUT) that 'routeshell serve
              --adapter planner=OUT' serves; --base defaults to the shipped base
              (engine/models/base); --time-limit MIN ends it in time with the adapter saved; it
              is made in .OUT.partial and moved into place when done (Ctrl-C leaves OUT as it
              was, with a checkpoint there); one run at a time into an OUT (router too): a
              second is refused while one trains

data (--data, repeatable): files or directories of text, .jsonl, .json, .csv or .parquet. The word
'stdlib' stands for the Python standard library sources (the default pretraining corpus) and
'builtin' for the locally built SFT or reasoning set (the default of those stages). SFT rows may be
{"messages": [...]}, {"system", "user", "assistant"}, {"instruction", "input", "output"} or, for
reasoning, {"system", "user", "cot", "final"}.

OUT becomes a transformers checkpoint: AutoModelForCausalLM.from_pretrained(OUT) loads it. Ctrl-C
stops after the current step with a checkpoint; the same command with --resume continues exactly
(only a run of the same stage, model and options: another is refused).
Several processes: torchrun --standalone --nproc_per_node N $(which routeshell) train pretrain ...

{labels}"""

EXIT_CODES = """\
exit codes:
  0    the stage finished
  1    training failed (a full disk, a worker that died, a read-only router or planner OUT),
       or another routeshell train is writing into OUT (router, planner: the lock is .OUT.lock
       beside OUT, removed when the run ends)
  2    bad input: a missing data file, an empty corpus, an unknown preset, a corrupt checkpoint,
       an output directory that holds something else, --resume of a run of another stage,
       model or options
  3    labels: the teacher endpoint failed (unreachable, a wrong key or URL, no reply within
       --timeout or errors after the retries, or no valid decision for any task); every answer
       that came is kept in the cache
  130  interrupted (Ctrl-C): a checkpoint was written (labels: the cache), add --resume to
       continue (labels: run the same command)
"""


def add_train_command(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Add ``train`` with its options to the ``routeshell`` subcommands."""
    train = commands.add_parser(
        "train",
        help="train TinyLLM: tokenizer, pretrain, sft, reasoning or all",
        description=DESCRIPTION.replace("{labels}", LABELS_HELP),
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = train.add_argument
    add(
        "stage",
        choices=STAGES,
        metavar="STAGE",
        help="tokenizer, pretrain, sft, reasoning, all, labels, router or planner",
    )
    add(
        "--out",
        "--output_dir",
        required=True,
        type=given_path,
        metavar="DIR",
        help="where the model (tokenizer, labels file, router) is written",
    )
    add(
        "--preset",
        type=name_word,
        metavar="NAME",
        help="model size: nano (~1M, tests), tiny (~8M, default), small (~40M)",
    )
    add("--config", type=given_path, metavar="FILE", help="a JSON or TOML model config instead of a preset")
    add("--data", action="append", default=[], metavar="PATH", help="training data (repeatable; see above)")
    add("--tokenizer", type=given_path, metavar="DIR", help="pretrain: use this tokenizer instead of training one")
    add(
        "--base",
        type=given_path,
        metavar="DIR",
        help="sft, reasoning: the model to start from (pretrain: continue it); router: the LoRA base "
        "(default $XDG_DATA_HOME/routeshell/models/tinyllm; any local causal LM directory)",
    )
    add("--max-steps", type=positive_int, metavar="N", help="optimizer steps (default: --epochs over the data)")
    add("--epochs", type=positive_float, default=1.0, metavar="N", help="passes over the data (default 1)")
    add(
        "--batch-size",
        "--batch_size",
        type=positive_int,
        metavar="N",
        help="sequences per step and process (8; router: 1)",
    )
    add(
        "--grad-accum",
        "--grad_accum",
        type=positive_int,
        metavar="N",
        help="gradient accumulation steps (1; router: 8)",
    )
    add("--lr", type=positive_float, metavar="LR", help="peak learning rate (pretrain 3e-4, sft and router 1e-4)")
    add("--seq-len", type=positive_int, metavar="N", help="tokens per sequence (pretrain 256, sft the context)")
    add("--eval-every", type=positive_int, default=50, metavar="N", help="validate every N steps (50)")
    add("--save-every", type=positive_int, default=200, metavar="N", help="checkpoint every N steps (200)")
    add("--seed", type=random_seed, default=0, metavar="N", help="random seed: same seed, same run (0)")
    add("--resume", action="store_true",
        help="continue the run in --out (router, planner: .OUT.partial) from its last checkpoint")  # fmt: skip
    add("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where to train (auto: CUDA if present)")
    add("--markers", choices=("zh", "en"), default="zh", help="reasoning markers: 【推理过程】 (zh) or Reasoning: (en)")
    add("--min-chars", type=int, metavar="N", help="cleaning: drop texts shorter than N characters")
    add("--max-chars", type=int, metavar="N", help="cleaning: drop texts (SFT: answers) longer than N characters")
    add("--dedup-threshold", type=float, metavar="J", help="cleaning: near-duplicate Jaccard similarity (0 off)")
    add("--events", action="store_true", help="print JSON-lines events on stdout instead of a progress bar")
    add_label_options(train.add_argument_group("router labels"))
    add_router_train_options(train.add_argument_group("router and planner"))
    add("--time-limit", type=positive_float, metavar="MIN", help="planner: stop after MIN minutes, adapter saved")


def _quiet_libraries() -> None:
    """Keep the libraries offline and their chatter off the terminal: our events say what happens."""
    # Loaded here, so that the progress bars of both are off before training touches them.
    import datasets  # noqa: F401
    import transformers  # noqa: F401

    from engine.quiet import quiet_libraries

    quiet_libraries()


def run_train_command(args: argparse.Namespace) -> int:
    """Run ``routeshell train``; return the exit code (errors the user can cause raise RouteshellError)."""
    from engine.errors import ExitCode, RouteshellError
    from engine.tinyllm.errors import TrainFailure, TrainInputError

    if args.stage in ("labels", "router", "planner"):
        return _run_labels(args)
    if args.config is not None and args.preset is not None:
        raise TrainInputError("--preset and --config both set the model (give one of them)")
    from engine.tinyllm.options import TrainOptions, check_options
    from engine.tinyllm.stopping import StopRequest
    from engine.tinyllm.train import end_process_group, train_all, train_model_stage, train_tokenizer_stage

    options = TrainOptions(
        stage="tokenizer" if args.stage == "all" else args.stage,
        out=args.out,
        preset=args.preset,
        config=args.config,
        data=tuple(args.data),
        tokenizer=args.tokenizer,
        base=args.base,
        max_steps=args.max_steps,
        epochs=args.epochs,
        batch_size=args.batch_size or 8,
        grad_accum=args.grad_accum or 1,
        lr=args.lr,
        seq_len=args.seq_len,
        eval_every=args.eval_every,
        save_every=args.save_every,
        seed=args.seed,
        resume=args.resume,
        device=args.device,
        markers=args.markers,
        min_chars=args.min_chars,
        max_chars=args.max_chars,
        dedup_threshold=args.dedup_threshold,
        command=shell_line(["routeshell", *sys.argv[1:]]) if sys.argv[1:2] == ["train"] else "routeshell train",
    )
    check_options(options, command_stage=args.stage)
    _quiet_libraries()
    stop = StopRequest()
    main_process = int(os.environ.get("RANK", "0")) == 0
    from contextlib import nullcontext

    from engine.tinyllm.run_dir import out_lock

    # The main process holds the output directory; the others of a multi-process run only read it.
    lock = out_lock(options.out) if main_process else nullcontext()
    with _stop_on_signals(stop), _renderer(args.events, main_process) as sink:
        try:
            with lock:
                if args.stage == "all":
                    outcome = train_all(options, sink, stop)
                elif args.stage == "tokenizer":
                    outcome = train_tokenizer_stage(options, sink)
                else:
                    outcome = train_model_stage(options, sink, stop)
        except RouteshellError as err:
            if args.events:
                failed: ErrorEvent = {"type": "error", "message": str(err), "exit_code": int(err.exit_code)}
                sink(failed)
            raise
        except KeyboardInterrupt:
            if args.events:
                sink({"type": "error", "message": "interrupted", "exit_code": int(ExitCode.INTERRUPTED)})
            raise
        except SystemExit:
            raise
        except Exception as err:
            # A failure inside the libraries: one line for the user, the whole story in a log file.
            crash = _crash_report(err)
            if args.events:
                sink({"type": "error", "message": crash, "exit_code": int(ExitCode.FAILED)})
            raise TrainFailure(crash) from err
        else:
            # Only after a clean end: on an error the other processes may still be in a collective.
            end_process_group()
    return ExitCode.INTERRUPTED if outcome.interrupted else ExitCode.OK


def _run_labels(args: argparse.Namespace) -> int:
    from engine.errors import ExitCode, RouteshellError
    from engine.tinyllm.stopping import StopRequest
    from tui.router_cli import run_labels, run_train_router

    stop = StopRequest()
    with _stop_on_signals(stop), _renderer(args.events, True) as sink:
        try:
            if args.stage == "planner":
                from tui.planner_cli import run_train_planner

                return run_train_planner(args, sink, stop)
            return run_labels(args, sink) if args.stage == "labels" else run_train_router(args, sink, stop)
        except RouteshellError as err:
            if args.events:
                sink({"type": "error", "message": str(err), "exit_code": int(err.exit_code)})
            raise
        except KeyboardInterrupt:
            if args.events:
                sink({"type": "error", "message": "interrupted", "exit_code": int(ExitCode.INTERRUPTED)})
            raise


def _crash_report(err: BaseException) -> str:
    """Write the traceback of ``err`` to a file in the cache; return the one line that names it."""
    import tempfile
    import traceback

    from engine.config.xdg import cache_dir
    from engine.names import display_line

    first = display_line(str(err).strip().splitlines()[0] if str(err).strip() else "")[:300]
    try:
        logs = cache_dir() / "crash"
        logs.mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix="train-", suffix=".txt", dir=logs)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("".join(traceback.format_exception(err)))
        where = f"; the traceback is in {path}"
    except OSError:
        where = ""
    return f"training failed: {type(err).__name__}: {first}{where}"


class _stop_on_signals:
    """SIGINT and SIGTERM ask training to stop after the current step; a second SIGINT aborts."""

    def __init__(self, stop: StopRequest) -> None:
        self.stop = stop
        self.previous: dict[int, Any] = {}
        self.aborting = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.aborting:
            # Already on the way out: another signal must not interrupt the cleanup.
            return
        # Before the first step there is nothing to checkpoint: stop at once. A second Ctrl-C aborts.
        if not self.stop.armed or (self.stop.is_set() and signum == signal.SIGINT):
            self.aborting = True
            raise KeyboardInterrupt
        self.stop.set()
        if sys.stderr.isatty():
            print("\nrouteshell: stopping after this step with a checkpoint (Ctrl-C again to abort)", file=sys.stderr)

    def __enter__(self) -> _stop_on_signals:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)


class _renderer:
    """The sink of the engine's events: JSON lines, a rich progress display, or nothing (other ranks)."""

    def __init__(self, events: bool, main_process: bool) -> None:
        self.events = events
        self.main_process = main_process
        self.display: Any = None

    def __enter__(self) -> Callable[[Event], None]:
        if not self.main_process:
            return lambda event: None
        if self.events:
            from engine.events import emit, json_line

            def print_line(event: dict[str, Any]) -> None:
                sys.stdout.write(json_line(event) + "\n")
                sys.stdout.flush()

            return lambda event: emit(print_line, event)
        from tui.train_progress import TrainProgress

        display = TrainProgress()
        display.start()
        self.display = display
        return display.show

    def __exit__(self, *exc: object) -> None:
        if self.display is not None:
            self.display.stop()
