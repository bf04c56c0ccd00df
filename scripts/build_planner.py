"""Build the models routeshell ships for its offline agent: `make planner` (no network, no key).

Every step is a routeshell command, printed before it runs and timed:

1. the base (skipped with --keep-base when engine/models/base exists): a TinyLLM of the shape in
   engine/planner/base.toml, pretrained on the Python standard library (3000 steps, about an hour
   here; it saves every 250 steps, and a build stopped then goes on from there), exported in
   bfloat16 to engine/models/base;
2. the planner adapter on that base: `routeshell train planner`, within --minutes (30) on this
   machine, into engine/models/planner;
3. `routeshell serve` of the base with the adapter on a free loopback port, and `routeshell eval
   planner` on the held-out generated cases and every set written by hand (each on its own):
   the model with constrained decoding, the model without it, and the rule-based parser;
4. engine/models/planner/MODEL_CARD.md, written from this run: commands, times, sizes, the table.

Run from the repository root: .venv/bin/python scripts/build_planner.py [--minutes 30] [--keep-base]
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from engine.planner.cases import DEFAULT_COUNT
from engine.planner.prompt import PLANNER_MIN_PROBABILITY

ROUTESHELL = str(Path(sys.executable).parent / "routeshell")
MODELS = Path("engine/models")
#: The least probability a plan must have for the local profile's agent to offer it.
LEAST = PLANNER_MIN_PROBABILITY
WORK = Path("build/planner")
BASE_STEPS = 3000
#: Requests written by hand after the first set, scored on their own (all but the first by people
#: who had not read the decoding rules; those not in SHAPED_BY are the ones no rule was shaped by).
LATER_SETS = [
    "engine/planner/data/handwritten-later.jsonl",
    "engine/planner/data/handwritten-third.jsonl",
    "engine/planner/data/handwritten-fourth.jsonl",
    "engine/planner/data/handwritten-fifth.jsonl",
    "engine/planner/data/handwritten-sixth.jsonl",
    "engine/planner/data/handwritten-seventh.jsonl",
    "engine/planner/data/handwritten-eighth.jsonl",
    "engine/planner/data/handwritten-ninth.jsonl",
    "engine/planner/data/handwritten-tenth.jsonl",
    "engine/planner/data/handwritten-eleventh.jsonl",
    "engine/planner/data/handwritten-twelfth.jsonl",
    "engine/planner/data/handwritten-thirteenth.jsonl",
    "engine/planner/data/handwritten-fourteenth.jsonl",
    "engine/planner/data/handwritten-fifteenth.jsonl",
    "engine/planner/data/handwritten-sixteenth.jsonl",
    "engine/planner/data/handwritten-seventeenth.jsonl",
    "engine/planner/data/handwritten-eighteenth.jsonl",
    "engine/planner/data/handwritten-nineteenth.jsonl",
    "engine/planner/data/handwritten-twentieth.jsonl",
    "engine/planner/data/handwritten-twentyfirst.jsonl",
    "engine/planner/data/handwritten-twentysecond.jsonl",
    "engine/planner/data/handwritten-twentythird.jsonl",
    "engine/planner/data/handwritten-twentyfourth.jsonl",
    "engine/planner/data/handwritten-twentyfifth.jsonl",
    "engine/planner/data/handwritten-twentysixth.jsonl",
]
#: What the card says of a set whose failures decoding rules were shaped by after it was first scored.
SHAPED_BY = {
    "engine/planner/data/handwritten-third.jsonl": ", rules were shaped by its failures",
    "engine/planner/data/handwritten-fourth.jsonl": ", rules were shaped by its failures",
    "engine/planner/data/handwritten-fifth.jsonl": ", rules were shaped by its failures",
    "engine/planner/data/handwritten-sixth.jsonl": ", rules were shaped by its failures",
    "engine/planner/data/handwritten-seventh.jsonl": ", rules were shaped by its failures",
    "engine/planner/data/handwritten-eighth.jsonl": ", rules were shaped by its failures",
    "engine/planner/data/handwritten-ninth.jsonl": ", rules were shaped by its failures",
    "engine/planner/data/handwritten-tenth.jsonl": ", rules were shaped by its failures",
    "engine/planner/data/handwritten-eleventh.jsonl": ", rules were shaped by its failures",
    "engine/planner/data/handwritten-twelfth.jsonl": ", rules were shaped by its failures",
    "engine/planner/data/handwritten-thirteenth.jsonl": ", rules were shaped by its failures",
    "engine/planner/data/handwritten-fourteenth.jsonl": ", rules were shaped by its failures",
    "engine/planner/data/handwritten-fifteenth.jsonl": ", rules were shaped by its failures",
    "engine/planner/data/handwritten-sixteenth.jsonl": ", rules were shaped by its failures",
}
#: What the base keeps of a pretraining output: the model and its tokenizer, nothing to resume with.
BASE_FILES = ("config.json", "generation_config.json")
TABLE_HEAD = "| planner | exact effect | valid | refused | overreach | declined | gold fits | p50 s | p95 s |"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "chat_template.jinja")


def share(value: float) -> str:
    """``value`` as a percentage, to a tenth where it is not whole (199 of 200 is 99.5%, never 100%)."""
    return f"{value:.1%}".replace(".0%", "%")


def run(steps: list[dict[str, Any]], *args: str, stdout: Path | None = None) -> None:
    """Run ``routeshell ARGS``, timing it; stop the build on a failure."""
    line = shlex.join(["routeshell", *args])
    print(f"$ {line}", flush=True)
    started = time.monotonic()
    with open(stdout, "w") if stdout else open("/dev/null", "w") as sink:
        result = subprocess.run([ROUTESHELL, *args], stdout=sink if stdout else None, check=False)
    steps.append({"command": line, "seconds": round(time.monotonic() - started, 1)})
    if result.returncode != 0:
        sys.exit(f"build_planner: failed ({result.returncode}): {line}")


def export_base(trained: Path, out: Path) -> None:
    """Copy the pretrained model into ``out`` with its weights in bfloat16 and its tokenizer beside them."""
    import torch
    from safetensors.torch import load_file, save_file

    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in BASE_FILES:
        shutil.copy2(trained / name, staging / name)
    tokenizer = trained / "tokenizer" if (trained / "tokenizer").is_dir() else trained
    for name in TOKENIZER_FILES:
        if (tokenizer / name).is_file():
            shutil.copy2(tokenizer / name, staging / name)
    made_by = trained / "routeshell-train.json"
    record = json.loads(made_by.read_text()) if made_by.is_file() else {}
    (staging / "routeshell-base.json").write_text(json.dumps({
        "what": "the base of the offline planner: a TinyLLM of engine/planner/base.toml, pretrained on the Python "
                "standard library, weights in bfloat16",
        "command": record.get("command", ""), "checkpoint_step": BASE_STEPS}, indent=2) + "\n")  # fmt: skip
    weights = load_file(str(trained / "model.safetensors"))
    save_file({k: v.to(torch.bfloat16).contiguous() for k, v in weights.items()}, str(staging / "model.safetensors"),
              metadata={"format": "pt"})  # fmt: skip
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def evaluate(steps: list[dict[str, Any]], report_path: Path, count: int) -> dict[str, Any]:
    """Serve the shipped base with the new adapter and score the planners; return the report, also
    written to ``report_path`` once complete, the one there before moved to ``*-previous.json``."""
    partial = report_path.with_name(f"{report_path.name}.partial")
    port = free_port()
    words = ["serve", "--model", str(MODELS / "base"), "--adapter", f"planner={MODELS / 'planner'}",
             "--port", str(port), "--name", "tinyllm-base"]  # fmt: skip
    print(f"$ {shlex.join(['routeshell', *words])} &", flush=True)
    server = subprocess.Popen([ROUTESHELL, *words], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        from engine.serve.launcher import wait_ready

        if wait_ready(f"http://127.0.0.1:{port}/v1", server, timeout=120) != "ready":
            raise SystemExit(f"build_planner: the server on port {port} did not answer within 120 s")
        run(steps, "eval", "planner", "--data", "held-out", "--count", str(count), "--data", "handwritten",
            *(word for path in LATER_SETS for word in ("--data", path)),
            "--predictor", "model", "--predictor", "agent", "--predictor", "model-free", "--predictor", "rules",
            "--base-url", f"http://127.0.0.1:{port}/v1", "--json", stdout=partial)  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=30)
    result: dict[str, Any] = json.loads(partial.read_text())
    keep_previous(partial, report_path)
    return result


def keep_previous(new: Path, path: Path) -> None:
    """Move ``new`` to ``path``, the file there before kept beside it as ``*-previous.json`` (a run
    stopped before this leaves both as they were)."""
    if path.is_file():
        path.replace(path.with_name(f"{path.stem}-previous{path.suffix}"))
    new.replace(path)


def base_line() -> str:
    """What the card says of the base, from the record exported beside it."""
    record = json.loads((MODELS / "base" / "routeshell-base.json").read_text())
    text = f"- The base: `{record['command']}`, its step-{record['checkpoint_step']} weights"
    return text + (f"; {record['note']}." if record.get("note") else ".")


def size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def set_label(name: str) -> str:
    """A data set's name as the card says it: "held-out", "handwritten", or a later file's stem."""
    if name.startswith("held-out"):
        return "held-out"
    return Path(name).stem if name.endswith(".jsonl") else name


def pooled(rows: list[dict[str, Any]], key: str) -> float:
    """``key``'s share over several sets' rows, each weighed by its count of cases."""
    total: float = sum(float(row[key]) * int(row["cases"]) for row in rows)
    return total / max(1, sum(int(row["cases"]) for row in rows))


def unseen_line(model: dict[str, Any], unseen: list[tuple[str, dict[str, Any]]]) -> str:
    """What the card says of the sets written by people who had not read the rules: each shaped set,
    then the sets no rule was shaped by (never read), pooled."""
    if not unseen:
        return ""
    shaped = [(path, rows) for path, rows in unseen if path in SHAPED_BY]
    fresh = [(path, rows) for path, rows in unseen if path not in SHAPED_BY]
    line = "On requests written by hand by people who had not read the decoding rules: " + "".join(
        f"{rows['exact_effect']:.0%} of {rows['cases']} (`{path}`{SHAPED_BY[path]}); " for path, rows in shaped
    )
    if not fresh:
        return line.rstrip("; ") + "."
    rows = [row for _, row in fresh]
    agents = [agent for path, _ in fresh if (agent := model.get(path, {}).get("agent")) and "declined" in agent]
    line += (
        f"and on the {len(fresh)} set{'s' if len(fresh) > 1 else ''} no rule was shaped by ("
        + ", ".join(f"`{path}` {row['exact_effect']:.0%}" for path, row in fresh)
        + f"; {sum(row['cases'] for row in rows)} requests, none of them read) {share(pooled(rows, 'exact_effect'))},"
        f" where {pooled(rows, 'overreach'):.0%} of plans change a path the gold plan leaves alone"
    )
    if len(agents) == len(fresh):
        line += (
            f" ({share(pooled(agents, 'exact_effect'))} right and {pooled(agents, 'overreach'):.0%} overreaching"
            f" as the Agent pane asks, declining {pooled(agents, 'declined'):.0%})"
        )
    if all("gold_fit" in row for row in rows):
        line += (
            f" and {pooled(rows, 'gold_fit'):.0%} of gold plans fit the schemas the model is decoded under"
            " (`gold fits`: what it could answer at best)"
        )
    return line + "."


def model_card(report: dict[str, Any], meta: dict[str, Any], steps: list[dict[str, Any]], total: float) -> str:
    summary = meta["summary"]
    shipped = size_mb(MODELS / "base") + size_mb(MODELS / "planner") + size_mb(Path("engine/router/default"))
    model = report["data"]
    held_rows, hand_rows = next(iter(model.values())), model.get("handwritten", list(model.values())[-1])
    held, hand = held_rows["model"]["exact_effect"], hand_rows["model"]["exact_effect"]
    unseen = [(path, rows["model"]) for path in LATER_SETS[1:] if "model" in (rows := model.get(path, {}))]
    retried = (
        " Asked as the Agent pane asks it on the local profile (`agent`: an answer with a step that selects nothing,"
        " or that does a step twice, is asked again greedily without the choice at fault, at most three times;"
        " then one still refused,"
        " or that repeats itself, is asked again, sampled, at most twice; a plan it gives a probability under "
        f"{LEAST:.0%} is declined), "
        f"{share(held_rows['agent']['exact_effect'])} and {share(hand_rows['agent']['exact_effect'])}."
        if "agent" in held_rows and "agent" in hand_rows
        else ""
    )
    # Every set scored, not only the first two: the rule-based parser may do better on new phrasing.
    ruled = {set_label(name): rows for name, rows in model.items() if "rules" in rows and "model" in rows}
    better = [name for name, rows in ruled.items() if rows["rules"]["exact_effect"] > rows["model"]["exact_effect"]]
    rules_line = (
        f"The rule-based parser does better on {' and '.join(better)} (tables below)."
        if better
        else "The rule-based parser does no better on any set (tables below)."
        if ruled
        else "The tables are below."
    )
    lines = [
        "# The shipped planner adapter",
        "",
        f"Made by the commands at the end ({total:.0f} s in all) on {sys.platform} with Python "
        f"{sys.version.split()[0]}, with no network and no key; `make planner` (scripts/build_planner.py) runs them.",
        "",
        f"**How well it plans:** {share(held)} of held-out generated requests and {share(hand)} of the first set of",
        "requests written by hand (`engine/planner/data/handwritten.jsonl`, which decoding rules were shaped by) get",
        "exactly the right effect from its first answer (targets: 90% and 80%)." + retried,
        unseen_line(model, unseen),
        f"{rules_line} Its plans always go through the dry run",
        "and the approval dialog, which lists every file a plan touches, and every applied plan can be",
        "undone: read them before approving.",
        "",
        f"- Base: `engine/models/base`, {size_mb(MODELS / 'base'):.1f} MB (bfloat16); adapter "
        f"`engine/models/planner`, {size_mb(MODELS / 'planner'):.1f} MB; with the router in "
        f"`engine/router/default`, {shipped:.1f} MB.",
        f"- Adapter training: {summary['steps']} steps of {summary['options']['batch_size']} cases "
        f"({summary['training_cases']} generated cases, seed {summary['options']['seed']}, none held out; "
        f"{summary['skipped_too_long']} too long for the context left out), {summary['seconds']:.0f} s"
        + (", ended by the time limit" if summary["stopped_by_time_limit"] else "")
        + f"; last training loss {summary['last_loss']:.3f}; {summary['trainable_parameters']:,} trainable parameters "
        f"(LoRA r={summary['options']['lora_r']} on every projection, embeddings and output layer in full).",
        "",
        base_line(),
        "",
        "## Evaluation",
        "",
        "Each predicted plan and the gold plan are applied to fresh copies of the case's workspace through the",
        "real engine; a prediction is right when the two trees are equal (names, contents, tags). Latency is",
        "one request to the local server on this CPU, the server warm. `gold fits` is the share of gold plans that",
        "validate under the narrowed schemas the model is decoded under, part by part (a plan of the same",
        "effect may fit where the gold one does not). `declined` is the share of plans `agent` did not offer",
        f"because the planner gave them a probability under {LEAST:.0%} (the local profile's",
        "`planner.min_probability`): they change nothing.",
        "",
    ]
    for set_name, rows in report["data"].items():
        first = next(iter(rows.values()))
        lines += [f"### {set_name}: {first['cases']} cases", "", TABLE_HEAD, "| --- |" + " --- |" * 8]
        for name, s in rows.items():
            keys = ("exact_effect", "valid", "refused", "overreach", "declined")
            rates = " | ".join(f"{s.get(key, 0.0):.3f}" for key in keys)
            fit = f"{s['gold_fit']:.3f}" if "gold_fit" in s else "-"
            lines.append(f"| {name} | {rates} | {fit} | {s['latency_p50_s']:.2f} | {s['latency_p95_s']:.2f} |")
        lines.append("")
        by_kind = rows.get("model", first)["by_kind"]
        lines += ["Exact effect of `model` by kind: " + ", ".join(f"{k} {v:.2f}" for k, v in by_kind.items()), ""]
    lines += ["## Commands", "", "```sh"]
    lines += [f"{step['command']}  # {step['seconds']} s" for step in steps]
    lines += ["```", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0, help="the adapter's training budget (30)")
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT, help=f"generated training cases ({DEFAULT_COUNT})")
    parser.add_argument("--eval-count", type=int, default=200, help="held-out generated cases to score (200)")
    parser.add_argument("--keep-base", action="store_true", help="train on engine/models/base as it is")
    parser.add_argument("--keep-adapter", action="store_true", help="evaluate engine/models/planner as it is")
    parser.add_argument(
        "--card-only", action="store_true", help="write the card from the last evaluation (trains nothing)"
    )
    options = parser.parse_args()
    steps: list[dict[str, Any]] = []
    if options.card_only:
        # The card of the models as they are: nothing is trained or evaluated again.
        needed = [MODELS / "base" / "config.json", MODELS / "planner" / "planner_meta.json", WORK / "eval.json",
                  WORK / "eval-steps.json"]  # fmt: skip
        if missing := [str(path) for path in needed if not path.is_file()]:
            sys.exit(f"build_planner: --card-only needs a build's models and evaluation; missing: {', '.join(missing)}")
        options.keep_base = options.keep_adapter = True
    WORK.mkdir(parents=True, exist_ok=True)
    if not (options.keep_base and (MODELS / "base" / "config.json").is_file()):
        # A build stopped while pretraining goes on from its last checkpoint.
        resume = (WORK / "base" / "checkpoints").is_dir() and not (WORK / "base" / "model.safetensors").is_file()
        if not resume:
            shutil.rmtree(WORK / "base", ignore_errors=True)
        run(steps, "train", "pretrain", "--config", "engine/planner/base.toml", "--data", "stdlib",
            "--max-steps", str(BASE_STEPS), "--batch-size", "8", "--seq-len", "512", "--eval-every", "500",
            "--save-every", "250", "--out", str(WORK / "base"), *(["--resume"] if resume else []))  # fmt: skip
        export_base(WORK / "base", MODELS / "base")
    if not (options.keep_adapter and (MODELS / "planner" / "planner_meta.json").is_file()):
        run(steps, "train", "planner", "--base", str(MODELS / "base"), "--out", str(MODELS / "planner"),
            "--count", str(options.count), "--time-limit", str(options.minutes))  # fmt: skip
    else:
        trained = json.loads((MODELS / "planner" / "planner_meta.json").read_text())
        steps.append({"command": trained["command"], "seconds": trained["summary"]["seconds"]})
    if options.card_only:
        steps += json.loads((WORK / "eval-steps.json").read_text())
        report = json.loads((WORK / "eval.json").read_text())
    else:
        before = len(steps)
        report = evaluate(steps, WORK / "eval.json", options.eval_count)
        (WORK / "eval-steps.json.partial").write_text(json.dumps(steps[before:]))
        keep_previous(WORK / "eval-steps.json.partial", WORK / "eval-steps.json")
    meta = json.loads((MODELS / "planner" / "planner_meta.json").read_text())
    card = model_card(report, meta, steps, sum(float(step["seconds"]) for step in steps))
    (MODELS / "planner" / "MODEL_CARD.md").write_text(card)
    print(card)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
