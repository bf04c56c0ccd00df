"""A files-only builder (the local profile's own planner): its prompt and schema, and what it declines."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from agents.nodes import files_only_decision
from agents.roles import PLANNER_RETRY_TEMPERATURE, RoleFailed
from engine.planner import named
from engine.planner.named import missing_file, unseen_path, unwritable_names, walk, workspace_paths
from engine.planner.prompt import SYSTEM_PROMPT, reply_schema
from engine.router.decision import RouterDecision
from tests.agents.calc_task import of
from tests.agents.test_graph import GraphRun
from tests.helpers import ext_choices
from tests.scripted_llm import Reply, ScriptedLLM, Status

MOVE_PDFS = {"version": 1, "goal": "Move the PDFs into archive",
             "steps": [{"op": "move", "match": {"glob": "**", "ext": [".pdf"]}, "to": "archive"}]}  # fmt: skip


def make_files(root: Path) -> None:
    (root / "docs").mkdir()
    (root / "docs" / "a.pdf").write_text("a")
    (root / "docs" / "b\x1b[31m.pdf").write_text("b")
    (root / "notes.md").write_text("n")


def test_the_planner_gets_the_workspace_view_and_the_reply_schema_and_its_plan_applies(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path
) -> None:
    make_files(root)
    scripted_llm.enqueue(Reply(MOVE_PDFS))
    run = graph_run(approval="auto", files_only=True)
    assert run.start("move the pdfs into archive") is None
    assert run.final["ok"] is True
    assert sorted(p.name for p in (root / "archive").iterdir()) == ["a.pdf", "b\x1b[31m.pdf"]
    [request] = scripted_llm.requests
    system, user = request["messages"]
    assert system == {"role": "system", "content": SYSTEM_PROMPT}
    assert user["content"].startswith("Today: ")
    assert "docs/: a.pdf, b" in user["content"]
    assert "b\\x1b[31m.pdf" in user["content"]
    assert "\x1b" not in user["content"]
    assert user["content"].endswith("Request: move the pdfs into archive")
    schema = request["response_format"]["json_schema"]["schema"]
    assert schema["$id"] == reply_schema()["$id"]
    names = schema["$defs"]["path"]["enum"]
    assert "archive" in names
    assert "docs/a.pdf" in names
    assert "b\x1b[31m.pdf" not in " ".join(names)  # a name the model cannot write is never offered


def test_a_reply_with_no_steps_declines_in_one_line_naming_the_profiles_that_can(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path
) -> None:
    make_files(root)
    scripted_llm.enqueue(Reply({"version": 1, "goal": "Writing a function\nneeds code", "steps": []}))
    run = graph_run(approval="auto", files_only=True)
    assert run.start("write a function that reverses a string") is None
    final = run.final
    assert final["ok"] is False
    assert "openai, ollama or vllm" in final["summary"]
    assert "Writing a function\\nneeds code" in final["summary"]
    assert "\n" not in final["summary"]
    assert of(run.events, "plan") == []
    assert not (root / "archive").exists()


def test_a_file_request_answered_with_no_steps_says_so_without_quoting_the_model(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path
) -> None:
    make_files(root)
    scripted_llm.enqueue(Reply({"version": 1, "goal": "ext.csgeg},controllectbox.zip},", "steps": []}))
    run = graph_run(approval="auto", files_only=True)
    assert run.start("move notes.md " + "x" * 3000) is None
    summary = run.final["summary"]
    assert run.final["ok"] is False
    assert summary.startswith("the local planner found no file operation in it: name the files and what to do")
    assert "controllectbox" not in summary
    assert "openai, ollama or vllm" in summary


def test_a_task_routed_to_tests_is_declined_without_asking_the_model(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path
) -> None:
    run = graph_run(approval="auto", files_only=True, topology="loop")
    assert run.start("fix the failing test in parser.py") is None
    assert run.final["ok"] is False
    assert "needs code and tests" in run.final["summary"]
    assert scripted_llm.requests == []
    assert [event["type"] for event in run.events] == ["route", "final"]


@pytest.mark.parametrize(
    ("task", "said"),
    [
        ("delete ../o/secret.txt", "outside the workspace"),
        ("delete /tmp/x/keep.txt", "outside the workspace"),
        ("delete {root}/notes.md", "relative to the workspace (notes.md)"),
    ],
)
def test_a_path_outside_the_workspace_or_absolute_is_declined_without_asking_the_model(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path, task: str, said: str
) -> None:
    make_files(root)
    before = sorted(path.name for path in root.rglob("*"))
    run = graph_run(approval="auto", files_only=True, topology="single")  # (the path may say "pytest")
    assert run.start(task.format(root=root)) is None
    assert run.final["ok"] is False
    assert said in run.final["summary"]
    assert scripted_llm.requests == []  # a planner would pick another file: notes.md, docs/a.pdf
    assert sorted(path.name for path in root.rglob("*")) == before


@pytest.mark.parametrize(
    ("task", "said"),
    [
        ("delete notes/link.txt", "notes/link.txt is a symbolic link"),
        ("remove everything in away/", "away is a symbolic link"),
        ("delete .env please", ".env is hidden from the local planner"),
        ("delete 'notes/queue'", "notes/queue is neither a file nor a folder"),
        ("delete docs/missing.pdf", "there is no docs/missing.pdf in the workspace"),
        ("delete olddir/", "there is no olddir/ in the workspace, nor a folder of that name"),
        ("delete docs/b\x1b[31m.pdf", "has a name the local planner cannot write"),
        ("write 'hi \x1b[2J there' to notes.md", "holds a control character, which the local planner cannot write"),
        ("delete the notes\x00 and docs", "the request holds a control character"),
        ("copy ~/.bashrc into docs", "it names ~/.bashrc, outside the workspace"),
        ("move docs/a.pdf to ~", "it names ~, outside the workspace"),
    ],
)
def test_a_path_the_planner_cannot_see_is_declined_without_asking_the_model(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path, tmp_path: Path, task: str, said: str
) -> None:
    make_files(root)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    (root / "notes").mkdir()
    (root / "notes" / "link.txt").symlink_to(outside / "keep.txt")
    (root / "away").symlink_to(outside)
    (root / ".env").write_text("KEY=1")
    os.mkfifo(root / "notes" / "queue")
    before = sorted(str(path) for path in root.rglob("*"))
    run = graph_run(approval="auto", files_only=True, topology="single")
    assert run.start(task) is None
    assert run.final["ok"] is False
    assert said in run.final["summary"]
    assert scripted_llm.requests == []  # the planner cannot name it, and would pick another file
    assert sorted(str(path) for path in root.rglob("*")) == before
    assert (outside / "keep.txt").read_text() == "keep"


def test_unseen_path_leaves_names_that_are_not_there_or_plain_to_the_planner(root: Path) -> None:
    make_files(root)
    (root / "a.link").symlink_to(root / "notes.md")
    assert unseen_path("delete docs/a.pdf and notes.md.", root) is None
    assert unseen_path("delete ghost.txt, docs/ghost/x, .., ../x, *.pdf and docs/a.pdf/inner", root) is None
    assert unseen_path("move a.link to docs", root) == "a.link is a symbolic link, which plans never follow or change"
    (root / "my link.txt").symlink_to(root / "notes.md")
    assert unseen_path("don't keep Bob's stuff: delete 'my link.txt'", root) == (
        "my link.txt is a symbolic link, which plans never follow or change"
    )
    assert unseen_path('delete "notes.md" and `docs/a.pdf`', root) is None
    # Named without quotes, a name with a space is found by the names of such entries.
    assert unseen_path("please delete my link.txt now", root) == (
        "my link.txt is a symbolic link, which plans never follow or change"
    )
    (root / "docs" / "old queue").mkdir()
    os.rmdir(root / "docs" / "old queue")
    os.mkfifo(root / "docs" / "old queue")
    assert unseen_path("empty docs/old queue", root) == "docs/old queue is neither a file nor a folder"
    assert unseen_path("delete the old queue file", root) == "old queue is neither a file nor a folder"
    # Said by its bare name, a link, a FIFO or a hidden entry deeper down is found too ("delete
    # passwdlink.txt" of docs/passwdlink.txt: a planner would delete the other files in docs).
    (root / "docs" / "passwdlink.txt").symlink_to("/etc/passwd")
    os.mkfifo(root / "docs" / "fifo.txt")
    (root / "docs" / ".env").write_text("KEY=1")
    assert (
        unseen_path("delete passwdlink.txt", root)
        == "passwdlink.txt is a symbolic link, which plans never follow or change"
    )
    assert unseen_path("delete fifo.txt", root) == "fifo.txt is neither a file nor a folder"
    assert (
        unseen_path("delete .env", root)
        == "docs/.env is hidden from the local planner (names starting with a dot are not shown to it)"
    )
    assert unseen_path("delete passwdlink.txt.bak and the fifo", root) is None
    # Only the whole name: "my link.txt.bak" or "tummy link.txt" is another name.
    assert unseen_path("delete tummy link.txt and my link.txt.bak", root) is None
    # A regular file with a space, and a link in a hidden folder, are not such names.
    (root / "my notes.md").write_text("x")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "a b").symlink_to(root / "notes.md")
    assert unseen_path("delete my notes.md and a b", root) is None


def test_an_invalid_planner_reply_goes_back_for_repair(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path
) -> None:
    make_files(root)
    scripted_llm.enqueue(
        Reply({"version": 1, "goal": "x", "steps": [{"op": "delete", "path": "no-such-file"}]}), Reply(MOVE_PDFS)
    )
    run = graph_run(approval="auto", files_only=True)
    assert run.start("move the pdfs into archive") is None
    assert run.final["ok"] is True
    [repair] = of(run.events, "repair")
    assert "no-such-file" in repair["problems"][0]
    # The retry is the same prompt, sampled: the first answer was greedy.
    first, second = scripted_llm.requests
    assert second["messages"] == first["messages"]
    assert (first["temperature"], second["temperature"]) == (0.0, PLANNER_RETRY_TEMPERATURE)


def test_a_plan_that_does_a_step_twice_is_asked_again_then_done_once(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path
) -> None:
    make_files(root)
    delete = {"op": "delete", "path": "notes.md"}
    twice = Reply({"version": 1, "goal": "Delete notes.md", "steps": [delete, delete]})
    scripted_llm.enqueue(twice, twice, twice)  # the second delete finds nothing: invalid each time
    run = graph_run(approval="auto", files_only=True)
    assert run.start("delete notes.md") is None
    assert run.final["ok"] is True
    assert len(scripted_llm.requests) == 3  # asked again first: a retry might do better
    [plan] = of(run.events, "plan")
    assert plan["plan"]["steps"] == [delete]
    assert not (root / "notes.md").exists()
    assert (root / "docs" / "a.pdf").exists()


def test_a_plan_that_puts_a_file_in_a_folder_that_is_not_there_makes_it_first(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path
) -> None:
    make_files(root)
    archive = {"op": "archive", "paths": ["docs/a.pdf"], "to": "backups/2026/docs.zip"}
    scripted_llm.enqueue(Reply({"version": 1, "goal": "Back up a.pdf", "steps": [archive]}))
    run = graph_run(approval="auto", files_only=True)
    assert run.start("zip docs/a.pdf into backups/2026/docs.zip") is None
    assert run.final["ok"] is True
    assert len(scripted_llm.requests) == 1  # completed, not asked again
    [plan] = of(run.events, "plan")
    assert plan["plan"]["steps"] == [{"op": "mkdir", "path": "backups/2026"}, {**archive, "remove": False}]
    assert (root / "backups" / "2026" / "docs.zip").is_file()


def test_a_planner_that_never_answers_validly_fails_with_its_prompt_unchanged(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path
) -> None:
    make_files(root)
    (root / "docs" / "b\x1b[31m.pdf").unlink()  # (every name here is one the planner can write)
    bad = Reply({"version": 1, "goal": "x", "steps": [{"op": "delete", "path": "no-such-file"}]})
    scripted_llm.enqueue(bad, bad, bad)
    run = graph_run(approval="auto", files_only=True)
    with pytest.raises(RoleFailed, match="no valid reply after 3 attempts"):
        run.start("move the pdfs into archive")
    assert len({json.dumps(request["messages"]) for request in scripted_llm.requests}) == 1
    assert (root / "docs" / "a.pdf").is_file()


def test_a_planner_whose_every_answer_selects_nothing_declines_saying_where_it_looked(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path
) -> None:
    make_files(root)
    (root / "docs" / "b\x1b[31m.pdf").unlink()  # (every name here is one the planner can write)
    nothing = Reply({"version": 1, "goal": "x", "steps": [{"op": "delete", "match": {"glob": "**", "ext": [".mp4"]}}]})
    scripted_llm.enqueue(nothing, nothing, nothing, nothing)
    run = graph_run(approval="auto", files_only=True)
    assert run.start("delete the videos") is None
    summary = run.final["summary"]
    assert run.final["ok"] is False
    # Asked again greedily without the kind that selects nothing, then twice more, sampled.
    kinds = [ext_choices(request["response_format"]["json_schema"]["schema"]) for request in scripted_llm.requests]
    assert ".mp4" in kinds[0]
    assert all(".mp4" not in offered and ".mov" in offered for offered in kinds[1:])
    temperatures = [request["temperature"] for request in scripted_llm.requests]
    assert temperatures == [0.0, 0.0, PLANNER_RETRY_TEMPERATURE, PLANNER_RETRY_TEMPERATURE]
    assert summary.startswith("the local planner gave no valid plan (the builder gave no valid reply after 4 attempts")
    assert f"no file in the workspace ({root}) matches what it chose" in summary
    assert "--workspace DIR" in summary
    assert of(run.events, "plan") == []
    assert (root / "docs" / "a.pdf").is_file()


def test_a_planner_with_no_valid_plan_among_names_it_cannot_write_declines_saying_so(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path
) -> None:
    for name in (b"a\x1b[31mred.txt", b"bad\xff.txt", b"new\nline.log"):
        (root / os.fsdecode(name)).write_text("x")
    bad = Reply({"version": 1, "goal": "x", "steps": [{"op": "delete", "path": "notes/old.txt"}]})
    scripted_llm.enqueue(bad, bad, bad)
    run = graph_run(approval="auto", files_only=True)
    assert run.start("delete the old text files") is None
    summary = run.final["summary"]
    assert run.final["ok"] is False
    assert summary.startswith("the local planner gave no valid plan (the builder gave no valid reply after 3 attempts")
    assert "3 of the 4 names in the workspace (such as " in summary  # (and calc.py)
    assert "rename them in the Files pane first" in summary
    assert "\x1b" not in summary
    assert "\n" not in summary
    assert of(run.events, "plan") == []
    assert len([name for name in os.listdir(root) if not name.startswith(".")]) == 4


ONCE = {"version": 1, "goal": "Move a.pdf", "steps": [{"op": "move", "paths": ["docs/a.pdf"], "to": "archive"}]}
TWICE = {**ONCE, "steps": [{**ONCE["steps"][0], "paths": ["docs/a.pdf", "docs/a.pdf"]}]}


def test_a_planner_answer_that_repeats_itself_is_asked_again(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path
) -> None:
    make_files(root)
    scripted_llm.enqueue(Reply(TWICE), Reply(MOVE_PDFS))
    run = graph_run(approval="auto", files_only=True)
    assert run.start("move the pdfs into archive") is None
    assert run.final["ok"] is True
    [repair] = of(run.events, "repair")
    assert repair["problems"] == ["/steps/0/paths/1: the same as item 0"]
    assert sorted(p.name for p in (root / "archive").iterdir()) == ["a.pdf", "b\x1b[31m.pdf"]


def test_when_every_retry_repeats_itself_or_fails_the_first_answer_that_repeated_is_kept(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path
) -> None:
    make_files(root)
    bad = Reply({"version": 1, "goal": "x", "steps": [{"op": "delete", "path": "no-such-file"}]})
    steps_twice = {**ONCE, "steps": ONCE["steps"] * 2}
    scripted_llm.enqueue(Reply(TWICE), bad, Reply(steps_twice), bad)
    run = graph_run(approval="auto", files_only=True)
    assert run.start("move a.pdf into archive") is None
    assert run.final["ok"] is True
    assert [p.name for p in (root / "archive").iterdir()] == ["a.pdf"]
    assert (root / "docs" / "b\x1b[31m.pdf").is_file()
    # The step done twice was asked again, greedily, with the first step kept and no second one like it.
    temperatures = [request["temperature"] for request in scripted_llm.requests]
    assert temperatures == [0.0, PLANNER_RETRY_TEMPERATURE, PLANNER_RETRY_TEMPERATURE, 0.0]
    last = scripted_llm.requests[-1]["response_format"]["json_schema"]["schema"]
    assert last["properties"]["steps"]["prefixItems"][0] == {"const": ONCE["steps"][0]}
    assert Draft202012Validator(last).is_valid(ONCE)
    assert not Draft202012Validator(last).is_valid(steps_twice)


def test_a_retry_the_server_refuses_keeps_the_plan_that_repeated_itself(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path
) -> None:
    make_files(root)
    scripted_llm.enqueue(Reply(TWICE), Status(400, "bad request"))
    run = graph_run(approval="auto", files_only=True)
    assert run.start("move a.pdf into archive") is None
    assert run.final["ok"] is True
    assert [p.name for p in (root / "archive").iterdir()] == ["a.pdf"]


@pytest.mark.parametrize(
    ("topology", "roles", "declined"),
    [
        ("single", ("builder",), False),
        ("pipeline", ("planner", "builder"), False),
        ("pipeline", ("builder", "refactor"), True),
        ("loop", ("builder", "tester"), True),
    ],
)
def test_what_a_files_only_builder_makes_of_each_decision(topology: str, roles: tuple, declined: bool) -> None:
    decision = RouterDecision(topology, roles, 3, "because", "tfidf")  # type: ignore[arg-type]
    made, why = files_only_decision(decision)
    assert (why is not None) == declined
    if not declined:
        assert made.roles == ("builder",)
        assert made.topology == "single"


def test_a_request_for_two_things_in_turn_is_planned_part_by_part_and_applied_as_one_plan(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path
) -> None:
    make_files(root)
    scripted_llm.enqueue(Reply(MOVE_PDFS))
    scripted_llm.enqueue(Reply({"version": 1, "goal": "Tag the notes", "steps": [
        {"op": "tag", "path": "notes.md", "tags": ["done"]}]}))  # fmt: skip
    run = graph_run(approval="auto", files_only=True)
    assert run.start("move the pdfs into archive; also tag notes.md as done") is None
    assert run.final["ok"] is True
    first, second = scripted_llm.requests
    assert first["messages"][1]["content"].endswith("Request: move the pdfs into archive")
    assert second["messages"][1]["content"].endswith("Request: tag notes.md as done")
    # Each part is decoded under a schema narrowed to that part: only the second may tag.
    tagging = {"version": 1, "goal": "Tag", "steps": [{"op": "tag", "path": "notes.md", "tags": ["done"]}]}
    schemas = [request["response_format"]["json_schema"]["schema"] for request in (first, second)]
    assert [Draft202012Validator(schema).is_valid(tagging) for schema in schemas] == [False, True]
    [plan] = of(run.events, "plan")
    assert [step["op"] for step in plan["plan"]["steps"]] == ["mkdir", "move", "move", "tag"]
    assert plan["plan"]["goal"] == "Move the PDFs into archive; tag the notes"
    assert sorted(p.name for p in (root / "archive").iterdir()) == ["a.pdf", "b\x1b[31m.pdf"]
    [end] = of(run.events, "role_end")
    assert end["attempts"] == 2


def test_a_later_part_may_put_files_in_a_folder_an_earlier_part_made(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path
) -> None:
    make_files(root)
    scripted_llm.enqueue(Reply({"version": 1, "goal": "Make docs/house", "steps": [
        {"op": "mkdir", "path": "docs/house"}]}))  # fmt: skip
    moved = {
        "version": 1,
        "goal": "Move the notes",
        "steps": [{"op": "move", "paths": ["notes.md"], "to": "docs/house"}],
    }
    scripted_llm.enqueue(Reply(moved))
    run = graph_run(approval="auto", files_only=True)
    assert run.start("make a folder docs/house. Then move notes.md into house") is None
    assert run.final["ok"] is True
    _, second = scripted_llm.requests
    # The second part is narrowed to the workspace as the first leaves it: docs/house is there.
    assert Draft202012Validator(second["response_format"]["json_schema"]["schema"]).is_valid(moved)
    assert (root / "docs" / "house" / "notes.md").read_text() == "n"


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize(
    ("logprobs", "least", "offered"),
    [
        ([-1.0, -1.0], 0.2, False),  # 14%, under 20%: declined
        ([-0.5, -0.5], 0.2, True),  # 37%
        ([-1.0, -1.0], 0.0, True),  # 0 offers every plan
        (None, 0.2, True),  # no probability to judge by
    ],
)
def test_a_plan_the_planner_is_unsure_of_is_declined_in_one_line(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path, stream: bool,
    logprobs: list[float] | None, least: float, offered: bool,
) -> None:  # fmt: skip
    make_files(root)
    scripted_llm.enqueue(Reply(MOVE_PDFS, logprobs=logprobs))
    run = graph_run(approval="auto", files_only=True, min_plan_probability=least, stream=stream)
    assert run.start("move the pdfs into archive") is None
    [request] = scripted_llm.requests
    assert (request["logprobs"], request["logprobs_mode"]) == (True, "processed")
    assert run.final["ok"] is offered
    assert (root / "archive").exists() is offered
    if not offered:
        summary = run.final["summary"]
        assert "unsure of its plan (it gives it a probability of 14%" in summary
        assert "planner.min_probability of 20%" in summary
        assert "openai, ollama or vllm" in summary
        assert "\n" not in summary
        assert of(run.events, "plan") == []


def test_the_local_profile_declines_a_plan_its_planner_gives_37_percent(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path
) -> None:
    from engine.config.profiles import load_profile

    make_files(root)
    scripted_llm.enqueue(Reply(MOVE_PDFS, logprobs=[-0.5, -0.5]))  # 37%
    least = load_profile("local").data["planner"]["min_probability"]
    run = graph_run(approval="auto", files_only=True, min_plan_probability=least)
    assert run.start("move the pdfs into archive") is None
    assert run.final["ok"] is False
    assert "probability of 37%" in run.final["summary"]
    assert "planner.min_probability of 40%" in run.final["summary"]
    assert not (root / "archive").exists()


def test_the_probability_of_a_plan_made_part_by_part_is_that_of_all_its_parts(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path
) -> None:
    # Each part alone is 41%; both together 17%, under 20%.
    make_files(root)
    scripted_llm.enqueue(Reply(MOVE_PDFS, logprobs=[-0.9]))
    scripted_llm.enqueue(Reply({"version": 1, "goal": "Tag the notes", "steps": [
        {"op": "tag", "path": "notes.md", "tags": ["done"]}]}, logprobs=[-0.9]))  # fmt: skip
    run = graph_run(approval="auto", files_only=True, min_plan_probability=0.2)
    assert run.start("move the pdfs into archive; also tag notes.md as done") is None
    assert run.final["ok"] is False
    assert "probability of 17%" in run.final["summary"]
    assert not (root / "archive").exists()


def test_a_probability_too_small_to_round_is_said_as_under_one_percent(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path
) -> None:
    make_files(root)
    scripted_llm.enqueue(Reply(MOVE_PDFS, logprobs=[-3.0, -4.0]))  # 0.09%
    run = graph_run(approval="auto", files_only=True, min_plan_probability=0.2)
    assert run.start("move the pdfs into archive") is None
    assert "it gives it a probability of under 1%, under" in run.final["summary"]


def test_a_file_to_act_on_that_is_not_there_is_named_and_new_names_are_not() -> None:
    paths = ["docs", "docs/a.pdf", "docs/Übungsblatt 5.pdf", "notes.md", "backups/db.zip", "backups"]
    missing = {
        "delete docs/missing.txt": "docs/missing.txt",
        "unzip old.zip": "old.zip",
        "move a.pdf and ghost.pdf to old": "ghost.pdf",
        "tag ghost.md done": "ghost.md",
    }
    for task, name in missing.items():
        assert (
            missing_file(task, paths) == f"there is no {name} in the workspace, nor a file of that name anywhere in it"
        )
    for task in ("delete a.pdf", "delete docs/a.pdf", "move Übungsblatt 5.pdf to old", "unzip db.zip into restore",
                 "rename notes.md to plan.md", "call notes.md todo.md", "write hello into hello.txt",
                 "put a NOTES.txt in docs that says: hi", "add 'see x.txt' to notes.md", "zip docs as docs.zip",
                 "email ghost.pdf to bob", "copy the pdfs to keep/new.pdf", "look at example.com"):  # fmt: skip
        assert missing_file(task, paths) is None, task
    # A folder said with its slash at the end is one too; without it, it may begin a name with a space.
    folders = ["docs", "docs/Car loan.pdf", "episodes", "episodes/ep1", "episodes/ep1/raw"]
    assert missing_file("delete olddir/", folders) == (
        "there is no olddir/ in the workspace, nor a folder of that name anywhere in it"
    )
    for task in ("delete docs/", "empty raw/", "delete docs/Car loan.pdf", "move docs/a.pdf to new/place/",
                 "make a folder olddir/"):  # fmt: skip
        assert missing_file(task, folders) is None, task


def test_names_the_planner_cannot_write_are_counted_and_shown_escaped() -> None:
    assert unwritable_names(["docs", "docs/a.pdf"]) is None
    assert unwritable_names([]) is None
    said = unwritable_names(["docs", "docs/b\x1b[31m.pdf", "x" * 201])
    assert said is not None
    assert said.startswith("2 of the 3 names in the workspace (such as docs/b\\x1b[31m.pdf) have a control character")
    assert "\x1b" not in said
    one = unwritable_names(["ok.txt", "bad\udcff.txt"])
    assert one is not None
    assert "1 of the 2 names" in one
    assert "rename it in the Files pane" in one


def test_one_walk_serves_both_checks_and_a_walk_cut_at_its_bound_gives_no_paths(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_files(root)
    (root / ".hidden").mkdir()
    (root / ".hidden" / "inner.txt").write_text("x")
    (root / "docs" / "fifo.txt").unlink(missing_ok=True)
    os.mkfifo(root / "docs" / "fifo.txt")
    walked = walk(root)
    assert walked.complete
    assert sorted(workspace_paths(walked) or []) == ["calc.py", "docs", "docs/a.pdf", "docs/b\x1b[31m.pdf",
                                                     "docs/fifo.txt", "notes.md"]  # fmt: skip
    assert unseen_path("delete fifo.txt", root, walked) == "fifo.txt is neither a file nor a folder"
    monkeypatch.setattr(named, "MAX_SCANNED", 3)
    cut = walk(root)
    assert not cut.complete
    assert len(cut.entries) == 3
    assert workspace_paths(cut) is None


def test_a_server_that_refuses_the_narrower_schema_is_asked_again_as_before(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path
) -> None:
    make_files(root)
    videos = Reply({"version": 1, "goal": "x", "steps": [{"op": "move", "match": {"glob": "**", "ext": [".mp4"]},
                                                          "to": "archive"}]})  # fmt: skip
    scripted_llm.enqueue(videos, Status(400, "response_format schema is larger than 64 KiB"), Reply(MOVE_PDFS))
    run = graph_run(approval="auto", files_only=True)
    assert run.start("move the pdfs and videos into archive") is None
    assert run.final["ok"] is True
    assert sorted(p.name for p in (root / "archive").iterdir()) == ["a.pdf", "b\x1b[31m.pdf"]
    first, guided, sampled = scripted_llm.requests
    assert [r["temperature"] for r in (first, guided, sampled)] == [0.0, 0.0, PLANNER_RETRY_TEMPERATURE]
    assert guided["response_format"] != first["response_format"]
    assert sampled["response_format"] == first["response_format"]


def test_a_request_the_schema_cannot_be_narrowed_to_is_answered_under_the_whole_schema(
    graph_run: Callable[..., GraphRun], scripted_llm: ScriptedLLM, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (Narrowing is many rules over hostile text: one that fails must not end the task. No request
    # is known to fail now, so the failure is made here.)
    import engine.planner.narrow

    def failing(*_: object) -> dict[str, object]:
        raise KeyError("smaller_than")

    monkeypatch.setattr(engine.planner.narrow, "narrowed_schema", failing)
    make_files(root)
    scripted_llm.enqueue(Reply(MOVE_PDFS))
    run = graph_run(approval="auto", files_only=True)
    assert run.start("move the pdfs into archive") is None
    assert run.final["ok"] is True
    assert sorted(p.name for p in (root / "archive").iterdir()) == ["a.pdf", "b\x1b[31m.pdf"]
    [request] = scripted_llm.requests
    assert request["response_format"]["json_schema"]["schema"] == reply_schema()
    [warning] = [event for event in run.events if event["type"] == "warning"]
    assert "whole plan schema" in warning["message"]
    assert "KeyError" in warning["message"]
