"""Startup time of ``routeshell --help`` and ``routeshell --version`` against a bare ``python -c pass``.

The target is a median under 0.3 s; the ratio to the bare interpreter shows how much the command adds
on top of what Python itself costs on this machine. ``routeshell route`` with the shipped TF-IDF
router (loading it and scoring one task) is timed the same way, with no target of its own, and so
is a ``routeshell run`` refused before its agents start (no API key for the ``openai`` profile),
which loads no LangGraph. Last, ``routeshell run --json`` on the ``local`` profile, to its first
event: the time to start the local model server (unless one answers already) and the run's agents,
whose import of LangGraph overlaps the server's start (a few runs: each starts the server).
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 15
#: Runs of the local profile's first event: each starts the model server, seconds of its own.
LOCAL_RUNS = 3
TARGET_S = 0.3


def median_seconds(argv: list[str], runs: int = RUNS) -> float:
    """Return the median wall time of running ``argv`` ``runs`` times."""
    times: list[float] = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def refused_run_seconds(script: Path, workspace: Path) -> float:
    """The median wall time of a ``run`` that stops at its missing API key, before its agents start."""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "LLM_API_KEY")}
    argv = [str(script), "--profile", "openai", "--yes", "run", "--workspace", str(workspace), "x"]
    times: list[float] = []
    for _ in range(RUNS):
        start = time.perf_counter()
        result = subprocess.run(argv, env=env, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
        if result.returncode != 2:  # it must be the refusal that is timed, not something else
            raise SystemExit(f"routeshell run exited with {result.returncode}: {result.stderr.decode()[-300:]}")
    return statistics.median(times)


def first_event_seconds(script: Path, root: Path) -> float:
    """The median wall time from starting ``run --json`` on the ``local`` profile to its first event;
    each run is then stopped (SIGTERM), and stops the server it started."""
    times: list[float] = []
    for i in range(LOCAL_RUNS):
        workspace = root / f"local-{i}"
        workspace.mkdir()
        (workspace / "notes.txt").write_text("hi\n")
        argv = [str(script), "--profile", "local", "--yes", "run", "--json", "--workspace", str(workspace),
                "move notes.txt into docs"]  # fmt: skip
        start = time.perf_counter()
        with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as process:
            assert process.stdout is not None
            line = process.stdout.readline()
            times.append(time.perf_counter() - start)
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=120)
        if not line.startswith("{"):
            raise SystemExit(f"routeshell run on the local profile printed no event (exit {process.returncode})")
    return statistics.median(times)


def main() -> None:
    """Print the median of each command in ms, its ratio to bare Python, and whether it meets the target."""
    script = Path(sys.executable).parent / "routeshell"
    # The bare interpreter runs first and is the baseline every command is divided by.
    bare = median_seconds([sys.executable, "-c", "pass"])
    print(f"python -c pass        median {bare * 1000:7.1f} ms  (baseline, {RUNS} runs)")
    for flag in ("--help", "--version"):
        took = median_seconds([str(script), flag])
        verdict = "under" if took < TARGET_S else "OVER"
        print(
            f"routeshell {flag:<10} median {took * 1000:7.1f} ms  ratio {took / bare:5.2f}x bare python  "
            f"{verdict} the {TARGET_S:g} s target"
        )
    route = [str(script), "--profile", "local", "route", "move the pdfs into finance"]
    took = median_seconds(route)
    print(
        f"routeshell route      median {took * 1000:7.1f} ms  ratio {took / bare:5.2f}x bare python"
        "  (the shipped router)"
    )
    with tempfile.TemporaryDirectory() as root:
        took = refused_run_seconds(script, Path(root))
        print(f"routeshell run        median {took * 1000:7.1f} ms  ratio {took / bare:5.2f}x bare python"
              "  (refused: no API key)")  # fmt: skip
        took = first_event_seconds(script, Path(root))
        print(f"routeshell run --json median {took * 1000:7.1f} ms  to its first event, starting the local "
              f"model server ({LOCAL_RUNS} runs)")  # fmt: skip


if __name__ == "__main__":
    main()
