"""``routeshell route`` (one task's decision, with the probability of each candidate) and
``routeshell export --merge`` (a LoRA adapter merged into its base)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tui.arg_types import given_path, given_task, positive_int
from tui.router_cli import quiet

ROUTE_DESCRIPTION = """\
Route TASK as the agent loop would: the profile's router (router.kind and model_dir), or
--router DIR. A learned router scores the 28 canonical decisions; the most probable is the
decision. A profile's router that cannot be loaded (missing, damaged, weights that are not
finite numbers) falls back to the heuristic router, with a note on stderr; --router DIR that
cannot be loaded is an error (exit code 2). A router that fails on the task answers with the
heuristic router's decision, and the reason says why.
"""

ROUTE_EXIT_CODES = """\
exit codes:
  0    the decision was printed
  1    standard output cannot be written
  2    bad usage, bad profile or bad input (an empty TASK or one that is not UTF-8, a --router
       DIR that cannot be loaded)
  130  interrupted (Ctrl-C)
"""

EXPORT_DESCRIPTION = """\
Write the base model with the LoRA adapter merged into its weights (--merge), with the
tokenizer, as a transformers checkpoint: AutoModelForCausalLM.from_pretrained(OUT) loads it,
and so do vLLM and 'routeshell serve --model OUT'. --base defaults to the base the adapter
records. OUT (a new or empty directory, not the current one) is written in a directory of its
own beside it, .OUT.export-XXXXXXXX, and renamed into place: all of it or nothing. Nothing else
beside OUT is touched: the .OUT.partial of an interrupted 'train router --out OUT' stays for
--resume. While a 'routeshell train' writes into OUT (it holds .OUT.lock), export is refused.
An adapter or base file that is not a regular file (a FIFO) is refused before it is read, and so
are an adapter whose config or weights hold a value that is not a finite number (NaN, infinity)
and a merge whose weights would hold one.
"""

EXPORT_EXIT_CODES = """\
exit codes:
  0    the merged checkpoint is in OUT
  1    OUT could not be written (a full disk, a read-only directory), or a routeshell train
       or export is writing into OUT (the lock is .OUT.lock beside OUT)
  2    bad usage or bad input (an OUT that exists and is not empty or is the current
       directory, a missing or damaged adapter or base, a file of either that is a FIFO,
       values that are not finite numbers)
  130  interrupted (Ctrl-C)
"""


def add_route_command(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Add ``route`` to the ``routeshell`` subcommands."""
    route = commands.add_parser(
        "route",
        help="print the router's decision for a task, with the probability of each candidate",
        description=ROUTE_DESCRIPTION,
        epilog=ROUTE_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    route.add_argument(
        "task", metavar="TASK", help="the task, as 'routeshell run' takes it; - reads it from stdin (at most 1 MiB)"
    )
    route.add_argument("--router", type=given_path, metavar="DIR", help="a router directory instead of the profile's")
    route.add_argument("--top", type=positive_int, default=5, metavar="N", help="candidates to list (5)")
    route.add_argument("--json", action="store_true", help="print the decision and every probability as JSON")


def run_route_command(args: argparse.Namespace) -> int:
    """Run ``routeshell route``; return the exit code."""
    import sys

    from engine.jsonl import json_text
    from engine.names import display_line
    from engine.router.registry import load_router, model_router, needs_bitsandbytes
    from engine.router.scored import ScoredRouter, one_hot, ranked

    task = given_task(args.task, "route", args.stdin_closed)
    if args.router is not None:
        table: dict[str, Any] = {"kind": "model", "model_dir": str(args.router)}
    else:
        from engine.config.profiles import load_profile

        table = load_profile(args.profile).data["router"]
    quiet(bitsandbytes=needs_bitsandbytes(table))
    if args.router is not None:
        router: Any = model_router(table)
        note = None
    else:
        router, note = load_router(table)
    if note:
        print(f"routeshell: note: {display_line(note)}", file=sys.stderr)
    decision = router.route(task)
    from engine.router.candidates import canonical

    if isinstance(router, ScoredRouter) and decision.router == router.name:
        (probabilities,) = router.model.probabilities([task])
    else:
        probabilities = one_hot(canonical(decision))
    pairs = ranked(probabilities)
    if args.json:
        print(json_text({"decision": decision.as_json(), "router": decision.router, "note": note,
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


def add_export_command(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Add ``export`` to the ``routeshell`` subcommands."""
    export = commands.add_parser(
        "export",
        help="merge a LoRA adapter into its base: a checkpoint vLLM and other servers load without PEFT",
        description=EXPORT_DESCRIPTION,
        epilog=EXPORT_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = export.add_argument
    add("--merge", action="store_true", required=True, help="merge the adapter into the base weights")
    add("--adapter", type=given_path, required=True, metavar="DIR", help="the LoRA adapter (routeshell train router)")
    add("--base", type=given_path, metavar="DIR", help="the base model (default: the one the adapter records)")
    add(
        "--out",
        type=given_path,
        required=True,
        metavar="DIR",
        help="where the merged checkpoint goes (a new or empty directory, not the current one)",
    )


def run_export_command(args: argparse.Namespace) -> int:
    """Run ``routeshell export --merge``; return the exit code."""
    import sys

    from engine.errors import UsageError
    from engine.names import display_name
    from engine.router.router_dir import replaced_out
    from engine.tinyllm.run_dir import out_lock_beside

    out = replaced_out(args.out, example="merged")
    shown = display_name(str(args.out))
    if out.exists() and not (out.is_dir() and not any(out.iterdir())):
        raise UsageError(f"--out {shown} exists and is not empty (choose a new directory)")
    from engine.router.lora import merge_adapter, merged_base
    from engine.router.router_dir import adapter_needs_bitsandbytes

    # Refused before anything is written, and before PEFT or transformers opens a file of either.
    base = merged_base(args.base, args.adapter)
    quiet(bitsandbytes=adapter_needs_bitsandbytes(args.adapter, base=base, use_4bit=False))
    # The lock 'train router' and 'train planner' hold on OUT: an export into an OUT being trained
    # is refused, and a training cannot start into an OUT being exported.
    with out_lock_beside(out, holder="routeshell train or export"):
        if out.exists() and not (out.is_dir() and not any(out.iterdir())):
            raise UsageError(f"--out {shown} exists and is not empty (choose a new directory)")
        staging = _own_staging(out, shown)
        try:
            record = merge_adapter(base, args.adapter, staging)
            if out.exists():
                out.rmdir()
            staging.rename(out)
        except OSError as err:
            _remove(staging)
            from engine.router.router_dir import RouterWriteError

            raise RouterWriteError(f"cannot write {shown}: {err.strerror or err}") from None
        except BaseException:
            _remove(staging)
            raise
    print(f"routeshell: merged {display_name(str(args.adapter))} into {display_name(record['base'])}: "
          f"{shown} ({record['parameters']:,} parameters)", file=sys.stderr)  # fmt: skip
    return 0


def _own_staging(out: Path, shown: str) -> Path:
    """A new directory beside ``out`` that no one else has, where the merged checkpoint is written
    before it is renamed into place. ``.OUT.partial`` is not it: that is where an interrupted
    ``train router`` keeps the checkpoints ``--resume`` continues from, or anything of the user's."""
    import os
    import tempfile

    from engine.router.router_dir import RouterWriteError

    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.export-", dir=out.parent))
    except OSError as err:
        raise RouterWriteError(f"cannot write {shown}: {err.strerror or err}") from None
    # mkdtemp makes it private (0700); OUT gets the mode any new directory gets.
    umask = os.umask(0)
    os.umask(umask)
    try:
        staging.chmod(0o777 & ~umask)
    except OSError as err:
        _remove(staging)
        raise RouterWriteError(f"cannot write {shown}: {err.strerror or err}") from None
    return staging


def _remove(staging: Path) -> None:
    """Remove ``staging``, the directory :func:`_own_staging` made, and what was written into it."""
    import shutil

    shutil.rmtree(staging, ignore_errors=True)
