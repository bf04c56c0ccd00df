"""The offline agent end to end on tiny models: the real local server with a planner adapter,
constrained decoding under the planner reply schema, and `routeshell run` on a files-only profile.

The nano planner here trained for a few steps: its plans may be wrong, the flow must not be.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from openai import OpenAI

from engine.planner.cases import Case, generate_cases
from engine.planner.effect import reply_problems
from engine.planner.evaluate import case_messages, case_schema
from engine.serve.launcher import wait_ready
from tests.engine.serve.test_launcher import free_port, write_planner_local
from tests.helpers import ROUTESHELL, run_routeshell

START_TIMEOUT = 300


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="module")
def served(planner_models: tuple[Path, Path]) -> Iterator[str]:
    """``routeshell serve`` of the nano base with the planner adapter; yields its base URL."""
    base, adapter = planner_models
    port = free_port()
    server = subprocess.Popen(
        [ROUTESHELL, "serve", "--model", str(base), "--adapter", f"planner={adapter}", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    try:
        ready = wait_ready(url, server, timeout=START_TIMEOUT)
        assert ready == "ready", server.stderr.read() if server.poll() is not None and server.stderr else ready
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_constrained_decoding_always_gives_a_valid_plan(served: str) -> None:
    client = OpenAI(base_url=served, api_key="none", max_retries=0, timeout=300)
    cases: list[Case] = list(generate_cases(3, seed=21))
    for case in cases:
        reply = client.chat.completions.create(
            model="planner", messages=case_messages(case), temperature=0,  # type: ignore[arg-type]
            response_format={"type": "json_schema", "json_schema": {"name": "plan", "schema": case_schema(case)}},
        )  # fmt: skip
        choice = reply.choices[0]
        assert choice.finish_reason == "stop", choice.message.content
        plan = json.loads(choice.message.content or "")
        assert reply_problems(plan) == [], plan


def test_run_on_a_files_only_profile_starts_the_server_and_ends_in_one_piece(
    isolated_home: Path, tmp_path: Path, planner_models: tuple[Path, Path]
) -> None:
    base, adapter = planner_models
    write_planner_local(isolated_home, free_port(), base, adapter)
    workspace = tmp_path / "ws"
    (workspace / "docs").mkdir(parents=True)
    (workspace / "docs" / "report.pdf").write_bytes(b"%PDF")
    result = run_routeshell(
        "run", "--workspace", str(workspace), "--approve", "never", "--json", "move the pdfs into archive"
    )
    assert "Traceback" not in result.stderr
    assert result.returncode in (0, 1), result.stderr
    assert "starting the local model server" in result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [event["type"] for event in events]
    assert kinds[0] == "route"
    assert kinds[-1] == "final"
    assert "role_start" in kinds
    assert (workspace / "docs" / "report.pdf").exists()  # --approve never: shown, not applied


def test_a_plan_under_the_profiles_least_probability_is_declined_in_one_line(
    isolated_home: Path, tmp_path: Path, planner_models: tuple[Path, Path], served: str
) -> None:
    # The real server's processed logprobs, summed by the client: a nano planner is never certain
    # of a plan it chose among others, so a bound of 1 declines it. (The profile names the port of
    # the server already serving that pair: its three runs find it answering and start none.)
    base, adapter = planner_models
    write_planner_local(isolated_home, urlsplit(served).port or 0, base, adapter, min_probability=1.0)
    workspace = tmp_path / "ws"
    (workspace / "docs").mkdir(parents=True)
    (workspace / "docs" / "report.pdf").write_bytes(b"%PDF")
    (workspace / "docs" / "notes.md").write_text("n")
    # (Folders named one after another are made by steps the schema spells out; only the goal is
    # the model's to choose, so there is a plan, and one the planner cannot be certain of.)
    result = run_routeshell("run", "--workspace", str(workspace), "--approve", "auto", "--json",
                            "make a folder called done and keep")  # fmt: skip
    assert "Traceback" not in result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    final = events[-1]
    assert final["type"] == "final"
    assert final["ok"] is False
    assert "the local planner is unsure of its plan (it gives it a probability of " in final["summary"]
    assert "under the profile's planner.min_probability of 100%" in final["summary"]
    assert result.returncode == 1
    assert "plan" not in [event["type"] for event in events]
    tree = ["docs", "docs/notes.md", "docs/report.pdf"]
    assert sorted(str(p.relative_to(workspace)) for p in workspace.rglob("*") if ".routeshell" not in p.parts) == tree
    # It says how to see that plan, in a line that works when pasted: the plan is shown, not applied.
    (hint,) = [line for line in result.stderr.splitlines() if "to see that plan without applying it: " in line]
    pasted = shlex.split(hint.split("without applying it: ", 1)[1])
    assert pasted[:2] == ["routeshell", "run"]
    assert pasted[-5:] == ["--min-probability", "0", "--approve", "never", "make a folder called done and keep"]
    shown = run_routeshell(*pasted[1:-1], "--json", pasted[-1])
    assert "Traceback" not in shown.stderr
    assert "plan" in [json.loads(line)["type"] for line in shown.stdout.splitlines()]
    assert sorted(str(p.relative_to(workspace)) for p in workspace.rglob("*") if ".routeshell" not in p.parts) == tree
    # A bound given to run is named as such.
    again = run_routeshell(*pasted[1:-5], "--min-probability", "1", "--json", pasted[-1])
    assert "under --min-probability of 100%" in json.loads(again.stdout.splitlines()[-1])["summary"]
