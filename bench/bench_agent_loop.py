"""The agent loop's own overhead per role step, with the model's time taken out.

Runs whole tasks through :class:`agents.session.AgentSession` (router, LangGraph graph, SQLite
checkpoints written synchronously after every node, role prompts with workspace context, reply
validation and dry runs, events) against a scripted OpenAI-compatible server on loopback that
answers at once. The time spent inside ``ChatClient.chat`` (the HTTP round trip, standing in for
the model) is measured and subtracted; what is left is the loop's overhead, divided by the number
of role steps. The target is under 30 ms per role step.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents.session import AgentSession, SessionOptions  # noqa: E402
from engine.config.profiles import Endpoint, load_profile  # noqa: E402
from engine.kinds import ROLES  # noqa: E402
from engine.llm.client import ChatClient, ChatReply  # noqa: E402
from tests.scripted_llm import Reply, ScriptedLLM  # noqa: E402

TASKS = 30
TARGET_MS = 30.0


class TimedClient(ChatClient):
    """A real client that also adds up the seconds spent waiting on the endpoint."""

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self.seconds = 0.0

    def chat(self, messages: list[dict[str, Any]], **kwargs: Any) -> ChatReply:
        start = time.perf_counter()
        try:
            return super().chat(messages, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


def make_workspace() -> Path:
    """A small project: a dozen modules, so role prompts carry real workspace context."""
    root = Path(tempfile.mkdtemp(prefix="bench-agent-"))
    for n in range(12):
        (root / f"module_{n}.py").write_text("".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(40)))
    (root / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    return root


def script(llm: ScriptedLLM, count: int) -> None:
    """Enqueue a pipeline's replies (planner, builder, tester, refactor) for ``count`` tasks."""
    for n in range(count):
        llm.enqueue(
            Reply({"steps": ["fix add in calc.py", "write a test"]}),
            Reply(
                {
                    "version": 1,
                    "goal": "fix add",
                    "steps": [
                        {"op": "patch", "path": "calc.py", "find": "a - b", "replace": "a + b"},
                        {"op": "mkdir", "path": "notes"},
                        {"op": "write", "path": f"notes/{n}.md", "content": "fixed add\n"},
                    ],
                }
            ),
            Reply(
                {
                    "version": 1,
                    "steps": [
                        {
                            "op": "write",
                            "path": f"test_{n}.py",
                            "content": "from calc import add\nassert add(2, 3) == 5\n",
                        },
                        {"op": "run", "argv": ["python3", f"test_{n}.py"]},
                    ],
                }
            ),
            Reply({"version": 1, "steps": [{"op": "append", "path": "calc.py", "content": "\n"}]}),
        )


def run(approval: str) -> tuple[list[float], float]:
    """Run ``TASKS`` pipelines; return per-role-step overheads in ms, and the mean model time per call."""
    overheads: list[float] = []
    model_ms: list[float] = []
    with ScriptedLLM() as llm:
        script(llm, TASKS)
        profile = load_profile("ci", {"LLM_API_BASE": llm.base_url})
        endpoint = Endpoint(llm.base_url, "scripted", None, 30.0, 0)
        for n in range(TASKS):
            root = make_workspace()
            clients = {role: TimedClient(endpoint) for role in ROLES}
            options = SessionOptions(approval=approval, topology="pipeline", stream=True)
            # The planner, builder, tester and refactor each run once in this pipeline.
            router = _FixedRouter()
            with AgentSession(root, profile, options, lambda event: None, clients=clients, router=router) as session:
                start = time.perf_counter()
                outcome = session.start(f"fix add in calc.py and test it ({n})")
                wall = time.perf_counter() - start
            if outcome.status != "done" or not (outcome.final or {}).get("ok"):
                raise SystemExit(f"the scripted task did not finish cleanly: {outcome}")
            spent = sum(client.seconds for client in clients.values())
            overheads.append((wall - spent) / len(ROLES) * 1000)
            model_ms.append(spent / len(ROLES) * 1000)
            for client in clients.values():
                client.close()
    return overheads, statistics.mean(model_ms)


class _FixedRouter:
    name = "fixed"

    def route(self, task: str) -> Any:
        from engine.router.decision import RouterDecision

        return RouterDecision("pipeline", ("planner", "builder", "tester", "refactor"), 1, "bench", "fixed")


def main() -> None:
    """Print the median overhead per role step with plans shown only, then with plans applied."""
    overheads, model = run("never")
    median = statistics.median(overheads)
    verdict = "under" if median < TARGET_MS else "OVER"
    print(
        f"loop overhead per role step (plans shown): median {median:6.1f} ms, p90 "
        f"{statistics.quantiles(overheads, n=10)[-1]:6.1f} ms ({TASKS} tasks x {len(ROLES)} roles); "
        f"{median / TARGET_MS:4.2f}x the {TARGET_MS:g} ms target ({verdict}); "
        f"scripted model round trip {model:5.1f} ms per call"
    )
    applied, _ = run("all")
    median_applied = statistics.median(applied)
    print(
        f"with plans applied and tests run:          median {median_applied:6.1f} ms per role step, "
        f"{median_applied / median:4.1f}x the loop alone (durable journaled applies and python3 test runs, "
        "in the sandbox when bubblewrap is there)"
    )


if __name__ == "__main__":
    main()
