"""The offline agent's latency: from a task to the approval dialog on the shipped models, server warm.

Serves engine/models/base with the planner adapter (as the local profile does), warms it with one
request, then runs file tasks through a real AgentSession (the shipped router, the planner reply
schema, the dry run and the expansion into one step per file) until the plan waits for approval,
and prints the seconds each took against the 3-second goal, with the number of steps the approval
shows. Also prints the decode rate of the planner's answers. Never asserts a timing.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ROUTESHELL = str(Path(sys.executable).parent / "routeshell")
GOAL_S = 3.0
START_TIMEOUT_S = 120.0
TASKS = [
    "move every photo into pictures",
    "tag the notes that mention architecture as architecture and put them in docs/architecture",
    "delete all the temp files",
    "make folders archive/2025, archive/2026 and inbox, then move the invoices into archive/2025",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_workspace(root: Path) -> None:
    for index in range(12):
        (root / "camera").mkdir(parents=True, exist_ok=True)
        (root / "camera" / f"IMG_{1000 + index}.jpg").write_bytes(b"\xff\xd8" + bytes(index))
    (root / "notes").mkdir()
    for topic in ("architecture", "budget", "api"):
        (root / "notes" / f"{topic}.md").write_text(f"# {topic}\n\nabout the {topic}\n")
    (root / "downloads").mkdir()
    for name in ("invoice-2025-03.pdf", "invoice-2025-04.pdf", "setup.tmp", "data.tmp"):
        (root / "downloads" / name).write_bytes(b"%PDF" if name.endswith(".pdf") else b"x")


def main() -> int:
    from agents.session import AgentSession, SessionOptions
    from engine.config.profiles import load_profile
    from engine.errors import RouteshellError
    from engine.serve.launcher import wait_ready

    models = ROOT / "engine" / "models"
    if not (models / "planner" / "adapter_config.json").is_file():
        print("no shipped planner adapter (make planner builds it); nothing to measure")
        return 0
    port = free_port()
    server = subprocess.Popen(
        [ROUTESHELL, "serve", "--model", str(models / "base"), "--adapter", f"planner={models / 'planner'}",
         "--port", str(port), "--name", "tinyllm-base"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    try:
        if wait_ready(url, server, timeout=START_TIMEOUT_S) != "ready":
            print(f"the local server did not answer on {url} within {START_TIMEOUT_S:.0f} s; nothing measured")
            return 1
        with tempfile.TemporaryDirectory() as home:
            os.environ["XDG_CONFIG_HOME"] = f"{home}/config"
            profiles = Path(home) / "config" / "routeshell" / "profiles"
            profiles.mkdir(parents=True)
            (profiles / "bench.toml").write_text(
                f'extends = "local"\ndescription = "bench"\n[llm.default]\nbase_url = "{url}"\n'
            )
            profile = load_profile("bench")
            seconds, steps = [], []
            for round_ in range(2):  # the first round warms the server and the grammar cache
                for task in TASKS:
                    with tempfile.TemporaryDirectory() as work:
                        root = Path(work)
                        make_workspace(root)
                        events: list[dict] = []
                        options = SessionOptions(approval="ask", stream=True)
                        failure = ""
                        with AgentSession(root, profile, options, events.append) as session:
                            started = time.perf_counter()
                            try:
                                session.start(task)
                            except RouteshellError as exc:  # the plan was refused three times
                                failure = str(exc)[:60]
                            took = time.perf_counter() - started
                        approval = [e for e in events if e["type"] == "approval"]
                        shown = len(approval[0]["plan"]["steps"]) if approval else 0
                        if round_ == 1:
                            seconds.append(took)
                            steps.append(shown)
                            final = [e for e in events if e["type"] == "final"]
                            end = "approval" if approval else (final[0]["summary"][:60] if final else failure)
                            print(f"  {took:5.2f} s  {shown:3d} steps  {task[:60]!r}: {end}")
        print("(seconds from the task to the approval dialog, or to the end when no plan was accepted)")
        print(f"task to approval: median {statistics.median(seconds):.2f} s, max {max(seconds):.2f} s "
              f"(goal {GOAL_S:.0f} s: median/goal {statistics.median(seconds) / GOAL_S:.2f}x); "
              f"steps shown {min(steps)}-{max(steps)}")  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
