"""The local planner's replies and views where the workspace or the endpoint is hostile: a command to
run from an endpoint that ignores the schema, a folder that holds only what the view leaves out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.agents.test_files_planner import make_files
from tests.agents.test_graph import GraphRun
from tests.scripted_llm import Reply, ScriptedLLM


def test_a_command_to_run_from_an_endpoint_that_ignores_the_schema_is_never_offered(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path, tmp_path: Path
) -> None:
    make_files(root)
    marker = root / "ran.txt"  # (the sandbox lets a command write in the workspace)
    command = {"version": 1, "goal": "Run it", "steps": [{"op": "run", "argv": ["touch", str(marker)]}]}
    scripted_llm.enqueue(*[Reply(command)] * 8)
    run = graph_run(approval="all", files_only=True, topology="single")
    assert run.start("move the pdfs into archive") is None
    assert run.final["ok"] is False
    assert "no valid plan" in run.final["summary"] or "run" in run.final["summary"]
    assert "command 'touch'" not in run.final["summary"]
    assert not marker.exists()
    assert (root / "docs" / "a.pdf").exists()


def test_a_folder_that_holds_only_a_link_is_the_place_the_planner_is_offered(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path, tmp_path: Path
) -> None:
    make_files(root)
    (root / "notes").mkdir()
    (root / "notes" / "away.md").symlink_to(tmp_path)
    scripted_llm.enqueue(Reply({"version": 1, "goal": "Delete notes", "steps": [{"op": "delete", "path": "notes"}]}))
    run = graph_run(approval="never", files_only=True, topology="single")
    assert run.start("delete the notes folder") is None
    (request,) = scripted_llm.requests
    assert "notes/" in request["messages"][1]["content"]
    schema = request["response_format"]["json_schema"]["schema"]
    # Not every file everywhere: the folder it names, which the planner now knows.
    assert "**" not in schema["$defs"].get("glob", {}).get("enum", [])
    assert "notes" in schema["$defs"]["path"]["enum"]
    assert (root / "docs" / "a.pdf").exists()
