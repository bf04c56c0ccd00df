"""``eval planner``'s scoring: a known-good predictor scores 1, known-bad ones are caught for what they do."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import re
from pathlib import Path
from typing import Any

import pytest

from engine.errors import UsageError
from engine.planner.cases import Case, generate_cases
from engine.planner.effect import plan_effect
from engine.planner.evaluate import (
    Prediction,
    case_schema,
    endpoint_predictor,
    evaluate,
    gold_fits,
    gold_predictor,
    load_cases,
    parse_reply,
    score_case,
    summarise,
)
from engine.planner.parts import request_parts
from engine.planner.prompt import PLANNER_RETRY_TEMPERATURE
from tests.engine.planner.test_handwritten import CASES
from tests.helpers import assert_one_line_error, ext_choices, run_routeshell
from tests.scripted_llm import Reply, ScriptedLLM, Stall, Status


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return list(generate_cases(24, seed=9))


def test_the_gold_plan_scores_every_case_exact(cases: list[Case]) -> None:
    summary, results = evaluate(cases, gold_predictor)
    assert summary["exact_effect"] == 1.0
    assert summary["valid"] == 1.0
    assert summary["refused"] == 0.0
    assert summary["overreach"] == 0.0
    assert all(result.diff == [] for result in results)


def test_a_plan_that_does_nothing_is_wrong_unless_nothing_was_asked(cases: list[Case]) -> None:
    def nothing(case: Case) -> Prediction:
        return Prediction({"version": 1, "goal": "no", "steps": []}, 0.01)

    summary, results = evaluate(cases, nothing)
    for case, result in zip(cases, results, strict=True):
        assert result.exact == (not case.plan["steps"])
        assert result.valid
    assert summary["exact_effect"] < 0.3


def test_overreach_refusal_and_invalid_plans_are_told_apart(tmp_path: Path) -> None:
    case = next(
        c for c in generate_cases(200, seed=2) if c.kinds == ("by_type",) and c.plan["steps"][0]["op"] == "move"
    )
    everything = copy.deepcopy(case.plan)
    everything["steps"][0]["match"] = {"glob": "**"}
    result = score_case(case, Prediction(everything, 0.0), tmp_path)
    assert not result.exact
    assert result.overreach
    refused = {"version": 1, "goal": "x", "steps": [{"op": "delete", "path": "no/such/file"}]}
    result = score_case(case, Prediction(refused, 0.0), tmp_path)
    assert result.valid
    assert result.refused
    assert not result.exact
    invalid = {"version": 1, "steps": [{"op": "move", "from": "/etc/passwd", "to": "x"}]}
    result = score_case(case, Prediction(invalid, 0.0), tmp_path)
    assert not result.valid
    assert not result.exact
    outside = {"version": 1, "goal": "x", "steps": [{"op": "move", "paths": ["../escape"], "to": "x"}]}
    assert not score_case(case, Prediction(outside, 0.0), tmp_path).valid
    assert not score_case(case, Prediction(None, 0.0, error="not JSON"), tmp_path).valid


def test_replies_parse_bare_or_fenced_and_garbage_is_named() -> None:
    assert parse_reply('{"a": 1}') == ({"a": 1}, None)
    assert parse_reply('```json\n{"a": 1}\n```') == ({"a": 1}, None)
    plan, why = parse_reply('{"version": 1, "steps": [')
    assert plan is None
    assert why is not None
    assert why.startswith("not JSON")
    assert parse_reply('{"a": 1' + "0" * 4300 + "}") == (None, "not JSON: a number of more than 4300 digits")
    assert parse_reply("[" * 100_000) == (None, "not JSON: nested too deeply")


def test_case_files_are_checked_line_by_line(tmp_path: Path, cases: list[Case]) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text("".join(json.dumps(case.to_json()) + "\n" for case in cases[:3]))
    assert [case.id for case in load_cases(good)] == [case.id for case in cases[:3]]
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(good.read_bytes() + b'{"id": 1}\n')
    with pytest.raises(UsageError, match=r"bad.jsonl:4: not a planner case"):
        load_cases(bad)
    bad.write_bytes(good.read_bytes() + b'{"id": 1' + b"0" * 4300 + b"}\n")
    with pytest.raises(UsageError, match=r"bad.jsonl:4: not a planner case \(a number of more than 4300 digits\)"):
        load_cases(bad)
    for hostile in ("../escape", "/etc/passwd", "a/../../b", ".git/config", "x/.routeshell/journal", "a//b"):
        row = {**cases[0].to_json(), "workspace": [{"path": hostile, "text": "x"}]}
        evil = tmp_path / "evil.jsonl"
        evil.write_text(json.dumps(row) + "\n")
        with pytest.raises(UsageError, match=r"evil.jsonl:1: not a planner case: /workspace/0/path"):
            load_cases(evil)
    huge = tmp_path / "huge.jsonl"
    huge.write_text(json.dumps({**cases[0].to_json(), "workspace": [{"path": "a", "size": 1 << 50}]}) + "\n")
    with pytest.raises(UsageError, match="size"):
        load_cases(huge)
    # A huge file with no line break is read one line's bound at a time, never whole.
    endless = tmp_path / "endless.jsonl"
    with endless.open("wb") as handle:
        handle.truncate(20 << 30)  # sparse
    with pytest.raises(UsageError, match=r"endless.jsonl:1: a line longer than 1 MiB$"):
        load_cases(endless)
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\xff\xfe\n")
    with pytest.raises(UsageError, match=r":1: not a planner case"):
        load_cases(binary)
    with pytest.raises(UsageError, match="no cases"):
        load_cases(_empty(tmp_path))
    # Results are reported by id: a second case of one id is refused with both lines.
    twice = tmp_path / "twice.jsonl"
    twice.write_text("".join(json.dumps(case.to_json()) + "\n" for case in [cases[0], cases[1], cases[0]]))
    with pytest.raises(UsageError, match=rf'twice.jsonl:3: id "{cases[0].id}" is already the id of line 1'):
        load_cases(twice)
    # A gold plan no planner may give scores nothing: refused like a malformed line.
    escaping = {"version": 1, "goal": "x", "steps": [{"op": "write", "path": "../../tmp/x", "content": "a\n"}]}
    outside = tmp_path / "outside.jsonl"
    outside.write_text(json.dumps({**cases[0].to_json(), "plan": escaping}) + "\n")
    with pytest.raises(
        UsageError, match=r"outside.jsonl:1: its gold plan is not a valid reply: .*outside the workspace"
    ):
        load_cases(outside)


@pytest.mark.parametrize(
    ("workspace", "today", "said"),
    [
        ([{"path": "x\ud800.txt", "text": "x"}], None, "not a file name"),
        ([{"path": "a.txt", "text": "x\ud800"}], None, "not text"),
        ([{"path": "a.md", "text": "x", "tags": ["caf\udce9"]}], None, "not text"),
        # (the tags of a Markdown file are its front matter's: shown to the planner, they would be on no file)
        ([{"path": "a.md", "text": "# notes\n", "tags": ["draft"]}], None, "a.md: a Markdown file's tags are those"),
        ([{"path": "a.md", "text": "---\ntags: [old]\n---\n", "tags": ["new"]}], None, "tags: [new]"),
        # (tags are kept separated by commas: one with a comma would be two on the disk)
        ([{"path": "a.txt", "text": "x", "tags": ["tax,2024"]}], None, "a.txt: the tag 'tax,2024' holds a comma"),
        ([{"path": "a.txt", "text": "x", "tags": ["\x1b[31m"]}], None, "holds a control or invisible character"),
        ([{"path": "a.zip", "members": {"m\ud800": "x"}}], None, "not text"),
        ([{"path": "n" * 300 + ".txt", "text": "x"}], None, "over 255 bytes"),
        ([{"path": "a/", "text": "x"}], None, "not a file name"),
        ([{"path": "a", "text": "x"}, {"path": "a/b", "text": "y"}], None, "a is a file and holds a/b"),
        ([{"path": "a", "text": "x"}, {"path": "a", "kind": "dir"}], None, "listed twice"),
        # (JSON has no NaN: the line is refused as it is read)
        ([{"path": "a.txt", "text": "x", "age_days": float("nan")}], None, "(NaN, which is not a JSON number)"),
        ([{"path": "a.txt", "text": "x", "age_days": 36500}], "0001-01-01", "before the year 1"),
    ],
)
@pytest.mark.parametrize("predictor", ["gold", "rules"])
def test_a_case_whose_workspace_cannot_be_made_is_refused_with_its_line(
    tmp_path: Path, cases: list[Case], workspace: list[dict[str, Any]], today: str | None, said: str, predictor: str
) -> None:
    row = {**cases[0].to_json(), "workspace": workspace, "plan": {"version": 1, "goal": "nothing", "steps": []}}
    if today is not None:
        row["today"] = today
    data = tmp_path / "cases.jsonl"
    data.write_text(json.dumps(row) + "\n")  # NaN is written as NaN, which json.loads reads back
    with pytest.raises(UsageError, match=r"cases.jsonl:1: not a planner case[: ]") as caught:
        load_cases(data)
    assert said in str(caught.value)
    result = run_routeshell("eval", "planner", "--data", str(data), "--predictor", predictor)
    assert_one_line_error(result, 2, "not a planner case", said)


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n")
    return path


def test_eval_planner_cli_scores_gold_and_rules_on_handwritten_and_held_out() -> None:
    result = run_routeshell(
        "eval", "planner", "--data", "handwritten", "--data", "held-out", "--count", "12",
        "--predictor", "gold", "--predictor", "rules", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    sets = report["data"]
    assert set(sets) == {"handwritten", "held-out (seed 0)"}
    assert sets["handwritten"]["gold"]["exact_effect"] == 1.0
    assert sets["held-out (seed 0)"]["gold"]["cases"] == 12
    assert 0.0 <= sets["handwritten"]["rules"]["exact_effect"] < 1.0
    assert len(sets["handwritten"]["rules"]["results"]) == sets["handwritten"]["rules"]["cases"]
    # Each case comes with the plan predicted for it: the gold plan, for the gold predictor.
    assert [row["plan"] for row in sets["handwritten"]["gold"]["results"]] == [case.plan for case in CASES]


def test_eval_planner_cli_gives_one_line_errors(tmp_path: Path) -> None:
    missing = run_routeshell("eval", "planner", "--data", str(tmp_path / "nope.jsonl"), "--predictor", "gold")
    assert_one_line_error(missing, 2, "no such file")
    # A name with an escape sequence and a line break is said as a shell reads it back, on one line.
    hostile = run_routeshell("eval", "planner", "--data", str(tmp_path / "a\x1b[2J\nb.jsonl"), "--predictor", "gold")
    assert_one_line_error(hostile, 2, "no such file", "$'", "a\\x1b[2J\\x0ab.jsonl'")
    assert "\x1b" not in hostile.stderr
    folder = run_routeshell("eval", "planner", "--data", str(tmp_path), "--predictor", "gold")
    assert_one_line_error(folder, 2, "a directory, not a JSONL case file")
    # (An empty name is no file, not the current directory.)
    nameless = run_routeshell("eval", "planner", "--data", "", "--predictor", "gold")
    assert_one_line_error(nameless, 2, "--data '': no such file (or the words held-out, handwritten)")
    os.mkfifo(tmp_path / "queue")  # never opened: a reader would wait for a writer forever
    fifo = run_routeshell("eval", "planner", "--data", str(tmp_path / "queue"), "--predictor", "gold")
    assert_one_line_error(fifo, 2, "not a regular file")
    endless = run_routeshell("eval", "planner", "--data", "held-out", "--count", "99999999999999999999")
    assert_one_line_error(endless, 2, "--count 99999999999999999999: at most 20000 held-out cases")
    unreachable = run_routeshell(
        "eval", "planner", "--data", "held-out", "--count", "2", "--predictor", "model",
        "--base-url", "http://127.0.0.1:9/v1",
    )  # fmt: skip
    assert_one_line_error(unreachable, 3, "127.0.0.1:9")


def test_the_agent_predictor_asks_again_sampled_only_while_the_dry_run_refuses(
    cases: list[Case], scripted_llm: ScriptedLLM, tmp_path: Path
) -> None:
    # (A request of one part: each part of a longer one is asked on its own.)
    case = next(c for c in cases if c.plan["steps"] and len(request_parts(c.request)) == 1)
    refused = {"version": 1, "steps": [{"op": "delete", "path": "no/such-file.txt"}]}
    predict, close = endpoint_predictor(scripted_llm.base_url, "planner", constrained=True, retries=2)
    try:
        scripted_llm.enqueue(Reply(refused), Reply("not json"), Reply(case.plan))
        assert score_case(case, predict(case), tmp_path).exact
        scripted_llm.enqueue(Reply(case.plan))
        assert score_case(case, predict(case), tmp_path).exact
        scripted_llm.enqueue(Reply(refused), Reply(refused), Reply(refused))
        result = score_case(case, predict(case), tmp_path)
        assert not result.exact
        assert result.refused
        # An answer that applies but repeats itself is asked again, and kept when no retry does better.
        tagging = next(
            c for c in generate_cases(400, seed=5) if len(c.plan["steps"]) == 1 and c.plan["steps"][0]["op"] == "tag"
        )
        repeated = {**tagging.plan, "steps": tagging.plan["steps"] * 2}  # the same effect, said twice
        assert plan_effect(tagging.fixture, tagging.today, repeated).applied
        scripted_llm.enqueue(Reply(repeated), Reply(tagging.plan))
        assert predict(tagging).plan == tagging.plan
        scripted_llm.enqueue(Reply(repeated), Reply(refused), Reply({**repeated, "goal": "the last"}))
        assert predict(tagging).plan == repeated
        scripted_llm.enqueue(Reply(repeated), Status(400, "bad request"))  # a retry the server refuses
        assert predict(tagging).plan == repeated
    finally:
        close()
    retried = [0.0, PLANNER_RETRY_TEMPERATURE, PLANNER_RETRY_TEMPERATURE]
    temperatures = [request["temperature"] for request in scripted_llm.requests]
    assert temperatures == [*retried, 0.0, *retried, *retried[:2], *retried, *retried[:2]]
    prompts = [json.dumps(request["messages"]) for request in scripted_llm.requests]
    assert len(set(prompts[:7])) == len(set(prompts[7:])) == 1  # each case's retries resend its own prompt
    assert all(request["response_format"]["type"] == "json_schema" for request in scripted_llm.requests)
    assert scripted_llm.unexpected == 0


def test_a_joined_request_is_asked_part_by_part_and_scored_on_the_joined_plan(
    scripted_llm: ScriptedLLM, tmp_path: Path
) -> None:
    case = next(c for c in generate_cases(200, seed=4) if len(c.kinds) == 2)
    first, second = request_parts(case.request)
    nothing = {"version": 1, "goal": "Nothing", "steps": []}
    predict, close = endpoint_predictor(scripted_llm.base_url, "planner", constrained=True)
    try:
        scripted_llm.enqueue(Reply(case.plan), Reply(nothing))
        assert score_case(case, predict(case), tmp_path).exact
        scripted_llm.enqueue(Reply(nothing), Reply("not json"))  # one part with no plan: no plan at all
        prediction = predict(case)
        assert prediction.plan is None
        assert prediction.error is not None
        assert prediction.error.startswith("not JSON")
    finally:
        close()
    asked = [request["messages"][-1]["content"] for request in scripted_llm.requests]
    assert [text.rsplit("Request: ", 1)[1] for text in asked] == [first, second, first, second]
    assert scripted_llm.unexpected == 0


def test_a_later_part_is_narrowed_to_the_folders_an_earlier_part_made(scripted_llm: ScriptedLLM) -> None:
    case = next(c for c in CASES if c.id == "hand_016")
    made = {"version": 1, "goal": "Make", "steps": [{"op": "mkdir", "path": "Documents/house"}]}
    predict, close = endpoint_predictor(scripted_llm.base_url, "planner", constrained=True)
    try:
        scripted_llm.enqueue(Reply(made), Reply({"version": 1, "goal": "Nothing", "steps": []}))
        predict(case)
    finally:
        close()
    _, second = (json.dumps(r["response_format"]["json_schema"]["schema"]) for r in scripted_llm.requests)
    assert '"Documents/house"' in second
    assert '"Documents/house/' not in second  # made, with nothing in it to select
    assert scripted_llm.unexpected == 0


def test_an_answer_that_extracts_into_a_folder_that_is_not_there_makes_it_first(
    scripted_llm: ScriptedLLM, tmp_path: Path
) -> None:
    case = next(c for c in CASES if c.id == "hand_038")  # unzip into restore/photos-2023; no restore/
    extract = next(step for step in case.plan["steps"] if step["op"] == "extract")
    predict, close = endpoint_predictor(scripted_llm.base_url, "planner", constrained=True)
    try:
        scripted_llm.enqueue(Reply({"version": 1, "goal": "Restore", "steps": [extract]}))
        prediction = predict(case)
        assert score_case(case, prediction, tmp_path).exact
        assert prediction.plan is not None
        assert prediction.plan["steps"] == [{"op": "mkdir", "path": "restore"}, extract]
        # Without the grammar, the answer is the model's alone: refused as the engine refuses it.
        free, close_free = endpoint_predictor(scripted_llm.base_url, "planner", constrained=False)
        scripted_llm.enqueue(Reply({"version": 1, "goal": "Restore", "steps": [extract]}))
        assert score_case(case, free(case), tmp_path / "free").refused is not None
        close_free()
    finally:
        close()
    assert scripted_llm.unexpected == 0


def test_gold_fits_is_whether_the_narrowed_schemas_allow_the_gold_plan(cases: list[Case]) -> None:
    assert all(gold_fits(case) for case in cases)
    # A step the request does not ask for (no word of deleting) is no answer the planner could give.
    case = next(c for c in cases if c.plan["steps"] and c.plan["steps"][0]["op"] == "move")
    deleting = copy.deepcopy(case.plan)
    deleting["steps"][0] = {"op": "delete", "match": {"glob": "**"}}
    assert not gold_fits(dataclasses.replace(case, plan=deleting))
    # A request of two parts: each part's share of the steps under its own schema, in the order asked.
    joined = next(c for c in generate_cases(200, seed=4) if len(c.kinds) == 2 and len(c.plan["steps"]) == 2)
    assert len(request_parts(joined.request)) == 2
    assert gold_fits(joined)
    swapped = {**joined.plan, "steps": joined.plan["steps"][::-1]}
    assert not gold_fits(dataclasses.replace(joined, plan=swapped))


def test_eval_planner_cli_reports_the_gold_plans_the_model_could_give(
    scripted_llm: ScriptedLLM, tmp_path: Path, cases: list[Case]
) -> None:
    fitting = next(c for c in cases if c.plan["steps"] and c.plan["steps"][0]["op"] == "move")
    deleting = {**fitting.plan, "steps": [{"op": "delete", "match": {"glob": "**"}}]}
    misfit = dataclasses.replace(fitting, id="misfit", plan=deleting)
    data = tmp_path / "cases.jsonl"
    data.write_text("".join(json.dumps(c.to_json()) + "\n" for c in (fitting, misfit)))
    scripted_llm.enqueue(Reply(fitting.plan), Reply(fitting.plan))
    result = run_routeshell("eval", "planner", "--data", str(data), "--predictor", "model", "--predictor", "rules",
                            "--base-url", scripted_llm.base_url, "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["data"][str(data)]
    assert rows["model"]["gold_fit"] == 0.5
    assert rows["model"]["gold_misfits"] == ["misfit"]
    assert "gold_fit" not in rows["rules"]
    table = run_routeshell("eval", "planner", "--data", str(data), "--predictor", "gold")
    assert table.returncode == 0, table.stderr
    assert "fits" in table.stdout  # the column's header (wrapped in a narrow terminal)


def test_the_agent_predictor_declines_a_plan_the_planner_is_unsure_of_and_it_changes_nothing(
    cases: list[Case], scripted_llm: ScriptedLLM, tmp_path: Path
) -> None:
    case = next(c for c in cases if c.plan["steps"] and len(request_parts(c.request)) == 1)
    predict, close = endpoint_predictor(scripted_llm.base_url, "planner", constrained=True, min_probability=0.2)
    try:
        scripted_llm.enqueue(Reply(case.plan, logprobs=[-1.0, -1.0]))  # 14%
        unsure = predict(case)
        scripted_llm.enqueue(Reply(case.plan, logprobs=[-0.5, -0.5]))  # 37%
        sure = predict(case)
        scripted_llm.enqueue(Reply(case.plan))  # no logprobs: nothing to judge by
        unscored = predict(case)
    finally:
        close()
    assert unsure.declined == "the planner gives its plan a probability of 14%, under 20%"
    result = score_case(case, unsure, tmp_path)
    assert (result.exact, result.valid, result.refused, result.overreach) == (False, True, None, [])
    assert result.declined == unsure.declined
    assert result.as_dict()["declined"] == unsure.declined
    assert summarise([result])["declined"] == 1.0
    assert sure.declined is None
    assert score_case(case, sure, tmp_path).exact
    # Each plan's probability is reported, offered or declined, where the planner gives one.
    assert round(unsure.probability or 0, 4) == round(math.exp(-2.0), 4)
    assert result.as_dict()["probability"] == round(math.exp(-2.0), 6)
    assert score_case(case, sure, tmp_path).as_dict()["probability"] == round(math.exp(-1.0), 6)
    assert unscored.declined is None
    assert unscored.probability is None
    assert score_case(case, unscored, tmp_path).as_dict()["probability"] is None
    assert all(request["logprobs_mode"] == "processed" for request in scripted_llm.requests)


def test_a_declined_plan_is_right_when_the_request_asks_for_no_change(tmp_path: Path) -> None:
    case = next(c for c in generate_cases(300, seed=2) if "not_files" in c.kinds)
    prediction = Prediction({"version": 1, "steps": [{"op": "mkdir", "path": "x"}]}, 0.1, declined="unsure")
    assert score_case(case, prediction, tmp_path).exact


def test_eval_planner_min_probability_is_a_probability() -> None:
    for bad in ("20%", "1.5", "-0.1", "nan", "x"):
        result = run_routeshell("eval", "planner", "--data", "handwritten", "--min-probability", bad)
        assert_one_line_error(result, 2, f"{bad!r} is not a probability from 0 to 1")


def test_eval_planner_help_gives_the_local_profiles_bound_and_the_longest_line() -> None:
    from engine.planner.prompt import PLANNER_MIN_PROBABILITY

    result = run_routeshell("eval", "planner", "--help")
    assert result.returncode == 0
    said = " ".join(result.stdout.split())
    assert f"(local profile: {PLANNER_MIN_PROBABILITY})" in said
    assert "each line at most 1 MiB" in said  # as a longer line is refused


def _refusing(case: Case) -> tuple[dict[str, Any], str] | None:
    """The gold plan with its one step's kinds swapped for one offered that no file has."""
    (step,) = case.plan["steps"]
    held = {"." + spec.path.rsplit(".", 1)[-1].lower() for spec in case.fixture.files if "." in spec.path}
    absent = sorted(ext_choices(case_schema(case)) - held)
    if "match" not in step or "ext" not in step["match"] or not absent:
        return None
    return {**case.plan, "steps": [{**step, "match": {**step["match"], "ext": [absent[0]]}}]}, absent[0]


def _refusing_case(cases: list[Case]) -> tuple[Case, tuple[dict[str, Any], str]]:
    return next(
        (c, got) for c in cases
        if len(c.plan["steps"]) == 1 and len(request_parts(c.request)) == 1 and (got := _refusing(c)) is not None
    )  # fmt: skip


def test_the_agent_predictor_asks_again_greedily_without_a_kind_that_selects_nothing(
    cases: list[Case], scripted_llm: ScriptedLLM, tmp_path: Path
) -> None:
    case, (refused, kind) = _refusing_case(cases)
    predict, close = endpoint_predictor(scripted_llm.base_url, "planner", constrained=True, retries=2, guided=3)
    try:
        scripted_llm.enqueue(Reply(refused), Reply(case.plan))
        assert score_case(case, predict(case), tmp_path).exact
    finally:
        close()
    first, second = (request["response_format"]["json_schema"]["schema"] for request in scripted_llm.requests)
    assert kind in ext_choices(first)
    assert kind not in ext_choices(second)
    assert ext_choices(second) == ext_choices(first) - {kind}
    assert [request["temperature"] for request in scripted_llm.requests] == [0.0, 0.0]
    assert scripted_llm.unexpected == 0


def test_a_refused_guided_ask_leaves_the_answer_at_hand(cases: list[Case], scripted_llm: ScriptedLLM) -> None:
    case, (refused, _) = _refusing_case(cases)
    predict, close = endpoint_predictor(scripted_llm.base_url, "planner", constrained=True, guided=3)
    try:
        scripted_llm.enqueue(Reply(refused), Status(400, "too big"))
        assert predict(case).plan == refused  # (no retries left: the refused answer stands)
        scripted_llm.enqueue(Reply(refused), Status(400, "too big"), Reply(case.plan))
    finally:
        close()
    predict, close = endpoint_predictor(scripted_llm.base_url, "planner", constrained=True, guided=3, retries=1)
    try:
        assert predict(case).plan == case.plan  # ... or asked again as before, sampled
    finally:
        close()
    first, guided, _, _, sampled = scripted_llm.requests
    assert [r["temperature"] for r in scripted_llm.requests] == [0.0, 0.0, 0.0, 0.0, PLANNER_RETRY_TEMPERATURE]
    assert guided["response_format"] != first["response_format"] == sampled["response_format"]
    assert scripted_llm.unexpected == 0


def test_eval_planner_timeout_ends_a_stalled_planner_in_one_line(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.enqueue(*[Stall(60) for _ in range(3)])
    result = run_routeshell("eval", "planner", "--data", "held-out", "--count", "1", "--predictor", "model",
                            "--base-url", scripted_llm.base_url, "--timeout", "1")  # fmt: skip
    assert_one_line_error(result, 3, "timed out after 1 s", "raise --timeout")
    assert "profile" not in result.stderr
    bad = run_routeshell("eval", "planner", "--data", "held-out", "--timeout", "0")
    assert_one_line_error(bad, 2, "--timeout")


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs /proc/self/mem, which opens but cannot be read")
def test_a_case_file_that_opens_but_cannot_be_read_is_one_line() -> None:
    # (/proc/self/mem is a regular file that opens, and its first read fails with EIO.)
    with pytest.raises(UsageError, match=r"^/proc/self/mem: cannot read \(Input/output error\)$"):
        load_cases(Path("/proc/self/mem"))
    result = run_routeshell("eval", "planner", "--data", "/proc/self/mem", "--predictor", "gold")
    assert_one_line_error(result, 2, "/proc/self/mem: cannot read (Input/output error)")


@pytest.mark.parametrize(
    ("line", "key"),
    [
        # (Python's reader keeps the last value: the gold plan would make b, the case's id would be "b".)
        ('{"plan": {"version": 1, "steps": [{"op": "mkdir", "path": "a", "path": "b"}]}, "id": "b"}', "path"),
        ('{"plan": {"version": 1, "steps": [{"op": "mkdir", "path": "b"}]}, "id": "a", "id": "b"}', "id"),
    ],
)
def test_a_case_that_names_a_key_twice_is_refused_with_its_line_and_key(tmp_path: Path, line: str, key: str) -> None:
    common = {"request": "make a folder", "today": "2025-01-01", "workspace": [{"path": "x.txt", "text": "x"}]}
    first = {**common, "id": "a", "plan": {"version": 1, "steps": [{"op": "mkdir", "path": "a"}]}}
    data = tmp_path / "cases.jsonl"
    data.write_text(json.dumps(first) + "\n" + json.dumps(common)[:-1] + ", " + line[1:] + "\n")
    said = f"{data}:2: not a planner case (an object names the key '{key}' twice"
    with pytest.raises(UsageError, match=f"^{re.escape(said)}"):
        load_cases(data)
    result = run_routeshell("eval", "planner", "--data", str(data), "--predictor", "gold")
    assert_one_line_error(result, 2, said)
