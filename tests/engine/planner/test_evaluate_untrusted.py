"""``eval planner`` over untrusted plans: a gold or predicted plan that no planner may give (a
command to run, a patch) is never applied, and a case whose gold plan does not apply is an error."""

from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from engine.errors import UsageError
from engine.planner.cases import Case, generate_cases
from engine.planner.effect import plan_effect, reply_problems
from engine.planner.evaluate import evaluate, gold_predictor, load_cases, rules_predictor
from engine.planner.parts import request_parts
from engine.planner.prompt import reply_schema
from tests.helpers import assert_one_line_error, run_routeshell
from tests.scripted_llm import Reply, ScriptedLLM


@pytest.fixture(scope="module")
def case() -> Case:
    # (A request of one part: the constrained predictors ask each part on its own.)
    return next(c for c in generate_cases(24, seed=9) if c.plan["steps"] and len(request_parts(c.request)) == 1)


def _running(marker: Path) -> dict[str, Any]:
    """A plan that makes ``marker`` (outside every scratch copy) should any step of it run."""
    return {"version": 1, "steps": [{"op": "run", "argv": ["sh", "-c", f"touch {shlex.quote(str(marker))}"]}]}


def _written(tmp_path: Path, *cases: Case) -> Path:
    data = tmp_path / "cases.jsonl"
    data.write_text("".join(json.dumps(c.to_json()) + "\n" for c in cases))
    return data


def test_a_plan_that_is_no_planner_reply_is_invalid_and_never_applied(tmp_path: Path, case: Case) -> None:
    marker = tmp_path / "marker"
    for plan in (
        _running(marker),
        {"version": 1, "goal": "x", "steps": [{"op": "mkdir", "path": "a"}, *_running(marker)["steps"]]},
    ):
        effect = plan_effect(case.fixture, case.today, plan, scratch=tmp_path / "scratch")
        assert not effect.valid
        assert effect.refused is not None
        assert '(got "run")' in effect.refused
        assert effect.tree == effect.before
    assert not marker.exists()
    patching = {
        "version": 1,
        "steps": [{"op": "patch", "path": case.fixture.files[0].path, "find": "a", "replace": "b"}],
    }
    assert not plan_effect(case.fixture, case.today, patching).valid
    assert reply_problems({"version": 1, "steps": [{"op": "move", "match": {"glob": "*", "semantic": "x"}, "to": "d"}]})


@pytest.mark.parametrize(
    ("step", "said"),
    [
        ({"op": "run", "argv": ["sh", "-c", "touch MARKER"]}, '/steps/0/op: must be one of "mkdir"'),
        ({"op": "patch", "path": "a.txt", "find": "x", "replace": "y"}, '(got "patch")'),
        ({"op": "move", "match": {"glob": "*", "semantic": "old"}, "to": "d"}, "/steps/0/match/semantic: unknown key"),
    ],
)
def test_a_gold_plan_no_planner_may_give_is_refused_at_load_and_never_run(
    tmp_path: Path, case: Case, step: dict[str, Any], said: str
) -> None:
    marker = tmp_path / "marker"
    step = json.loads(json.dumps(step).replace("MARKER", shlex.quote(str(marker))))
    bad = dataclasses.replace(case, id="bad", plan={"version": 1, "steps": [step]})
    data = _written(tmp_path, case, bad)
    with pytest.raises(UsageError, match=r"cases.jsonl:2: its gold plan is not a valid reply: ") as caught:
        load_cases(data)
    assert said in str(caught.value)
    for predictor in ("gold", "rules"):
        result = run_routeshell("eval", "planner", "--data", str(data), "--predictor", predictor)
        assert_one_line_error(result, 2, f"{data}:2: its gold plan is not a valid reply", said)
    assert not marker.exists()


@pytest.mark.parametrize(("predictor", "asks"), [("model-free", 1), ("model", 1), ("agent", 3)])
def test_a_predicted_plan_that_is_no_planner_reply_is_scored_invalid_and_never_run(
    scripted_llm: ScriptedLLM, tmp_path: Path, case: Case, predictor: str, asks: int
) -> None:
    marker = tmp_path / "marker"
    data = _written(tmp_path, case)
    scripted_llm.enqueue(*[Reply(_running(marker)) for _ in range(asks)])
    result = run_routeshell("eval", "planner", "--data", str(data), "--predictor", predictor,
                            "--base-url", scripted_llm.base_url, "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout)["data"][str(data)][predictor]
    assert (row["valid"], row["exact_effect"], row["refused"]) == (0.0, 0.0, 0.0)
    (scored,) = row["results"]
    assert scored["plan"] == _running(marker)
    assert not scored["valid"]
    assert '/steps/0/op: must be one of "mkdir"' in scored["error"]
    assert '(got "run")' in scored["error"]
    assert not marker.exists()
    assert len(scripted_llm.requests) == asks
    assert scripted_llm.unexpected == 0


def _unzipping(case: Case) -> Case:
    """A case whose gold plan extracts an archive with a member outside its folder: refused."""
    row = {
        **case.to_json(),
        "id": "climbing",
        "request": "unzip bundle.zip into unpacked",
        "workspace": [{"path": "bundle.zip", "members": {"../../x.txt": "out"}}],
        "plan": {"version": 1, "steps": [{"op": "extract", "from": "bundle.zip", "to": "unpacked"}]},
    }
    return Case.from_json(row)


def _too_many(case: Case) -> Case:
    """A case whose gold plan deletes more files than the policy lets one plan touch."""
    row = {
        **case.to_json(),
        "id": "many",
        "request": "delete every log",
        "workspace": [{"path": f"logs/{index:04d}.log", "text": "x\n"} for index in range(1001)],
        "plan": {"version": 1, "steps": [{"op": "delete", "match": {"glob": "logs/*.log"}}]},
    }
    return Case.from_json(row)


@pytest.mark.parametrize(("make", "said"), [(_unzipping, "x.txt"), (_too_many, "max_batch")])
def test_a_case_whose_gold_plan_does_not_apply_is_an_error_of_its_file(
    tmp_path: Path, case: Case, make: Any, said: str
) -> None:
    bad = make(case)
    assert reply_problems(bad.plan) == []
    assert not plan_effect(bad.fixture, bad.today, bad.plan).applied
    data = _written(tmp_path, case, bad)
    loaded = load_cases(data)
    # A prediction that changes nothing would match the workspace the refused gold plan left as it was.
    for predictor in (gold_predictor, rules_predictor):
        with pytest.raises(UsageError, match=rf'cases.jsonl:2: case "{bad.id}": its gold plan does not apply: '):
            evaluate(loaded, predictor)
    for predictor in ("gold", "rules"):
        result = run_routeshell("eval", "planner", "--data", str(data), "--predictor", predictor)
        assert_one_line_error(result, 2, f'{data}:2: case "{bad.id}": its gold plan does not apply: ', said)


def test_a_reply_with_more_steps_than_a_planner_gives_is_refused_for_their_number_alone() -> None:
    # Every step is one no planner may give too: checking each would take as long as the plan is long.
    steps = [{"op": "run", "argv": ["true"]}] * (reply_schema()["properties"]["steps"]["maxItems"] + 1)
    assert reply_problems({"version": 1, "steps": steps}) == [f"/steps: must have at most {len(steps) - 1} items"]
    assert reply_problems({"version": 1, "steps": steps[:2]})[0].startswith('/steps/0/op: must be one of "mkdir"')
