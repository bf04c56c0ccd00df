"""``routeshell eval planner``: predicted plans applied through the real engine, compared by effect.

For each case, the predictor's plan and the gold plan are each applied to a fresh copy of the
case's workspace (:func:`engine.planner.effect.plan_effect`); the prediction is right when the
two trees are equal (names, contents, tags). Besides that exact-effect accuracy the report
gives the share of valid plans (the planner reply schema and the path rules), the plans the dry
run or the policy refused, the plans that touched a path the gold plan leaves alone (overreach),
and the latency of one prediction (p50, p95), overall and by the case's first kind.

Predictors: ``gold`` (the gold plan itself: the harness's own check), ``rules`` (the rule-based
parser of :mod:`engine.planner.rules`), and a served model, with the decoding constrained by the
planner reply schema narrowed to the case (:mod:`engine.planner.narrow`, as the agent asks) or
free (the reply is parsed as JSON as it comes); constrained, it can also be asked again as the
agent asks again when the dry run refuses an answer.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from engine.errors import UsageError
from engine.jsonl import DuplicateKey, NumberTooLong, decode_error_reason, parse_json
from engine.llm.wire import ChatMessage
from engine.names import display_line
from engine.planner.cases import Case
from engine.planner.effect import (
    noon,
    plan_effect,
    repetitions,
    reply_problems,
    scratch_writes,
    without_repeated_steps,
)
from engine.planner.fixtures import changed_paths, differences, fixture_problem
from engine.planner.guided import unrepeated_schema
from engine.planner.narrow import schema_for
from engine.planner.parts import existing_folders, joined_plan, made_entries, request_parts, with_parents
from engine.planner.prompt import (
    PLANNER_RETRY_TEMPERATURE,
    ViewEntry,
    as_percent,
    entries_from_fixture,
    joint_logprob,
    planner_messages,
    unsure,
)
from engine.planner.workspaces import when
from engine.schemas import describe_error, pointer, validator

#: Where free decoding (no grammar) is cut off: more tokens than any gold answer takes.
FREE_MAX_TOKENS = 320
#: The most cases one evaluation reads from a file.
MAX_CASES = 20_000
#: The longest line of a case file.
MAX_LINE_MIB = 1
MAX_LINE_BYTES = MAX_LINE_MIB << 20


@dataclass
class Prediction:
    """A predictor's answer to one case: the plan (None when there is no JSON), the raw text, the time."""

    plan: Any
    seconds: float
    text: str = ""
    error: str | None = None
    #: Why the plan was not offered: the planner gave it a probability under the least asked for.
    declined: str | None = None
    #: The probability the planner gives the plan, under the grammar it was decoded with (None when
    #: it was not asked for: a predictor with no ``min_probability``, or one of another kind).
    probability: float | None = None


Predictor = Callable[[Case], Prediction]


@dataclass
class CaseResult:
    id: str
    kind: str
    exact: bool
    valid: bool
    refused: str | None
    overreach: list[str]
    seconds: float
    error: str | None = None
    diff: list[str] = field(default_factory=list)
    plan: Any = None  # the predicted plan, as answered (None when there was no JSON)
    declined: str | None = None  # why it was not offered (it then changes nothing)
    probability: float | None = None  # the probability the planner gives the plan, where it says

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "exact": self.exact,
            "valid": self.valid,
            "refused": self.refused,
            "overreach": self.overreach,
            "seconds": round(self.seconds, 4),
            "error": self.error,
            "diff": self.diff,
            "plan": self.plan,
            "declined": self.declined,
            "probability": None if self.probability is None else round(self.probability, 6),
        }


def load_cases(path: Path) -> list[Case]:
    """Read cases from a JSONL file; one-line :class:`UsageError` naming the line of a bad one."""
    cases: list[Case] = []
    lines: dict[str, int] = {}
    for number, raw in _case_lines(path):
        if len(raw) > MAX_LINE_BYTES:
            raise UsageError(f"{path}:{number}: a line longer than {MAX_LINE_MIB} MiB")
        if not raw.strip():
            continue
        try:
            # A key named twice (a step's path, the id) is a mistake in one of the two, which
            # Python's reader would hide by keeping the last: refused, as in a plan file.
            row = parse_json(raw.decode("utf-8"), unique_keys=True)
        except (NumberTooLong, DuplicateKey) as exc:
            raise UsageError(f"{path}:{number}: not a planner case ({exc})") from None
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise UsageError(f"{path}:{number}: not a planner case ({type(exc).__name__})") from None
        errors = sorted(validator("planner_case").iter_errors(row), key=lambda e: list(e.absolute_path))
        if errors:
            where, reason = describe_error(errors[0])
            raise UsageError(f"{path}:{number}: not a planner case: {pointer(where)}: {reason}")
        try:
            case = Case.from_json(row)
        except ValueError as exc:
            raise UsageError(f"{path}:{number}: not a planner case: {display_line(str(exc))[:200]}") from None
        if problem := case_problem(case):
            raise UsageError(f"{path}:{number}: not a planner case: {problem}")
        # Results are reported by id: two cases of one id could not be told apart.
        if case.id in lines:
            raise UsageError(
                f'{path}:{number}: id "{display_line(case.id)[:80]}" is already the id of line {lines[case.id]}'
            )
        lines[case.id] = number
        # A gold plan that no planner may give (a path out of the workspace, a command to run)
        # scores nothing, and is never applied. (Whether it applies is seen when it is scored.)
        if problems := reply_problems(case.plan):
            raise UsageError(f"{path}:{number}: its gold plan is not a valid reply: {display_line(problems[0])[:200]}")
        cases.append(dataclasses.replace(case, source=f"{path}:{number}"))
        if len(cases) > MAX_CASES:
            raise UsageError(f"{path}: more than {MAX_CASES} cases")
    if not cases:
        raise UsageError(f"{path}: no cases")
    return cases


def _case_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """The lines of ``path`` numbered from 1, each cut one byte past :data:`MAX_LINE_BYTES`, so that
    a huge file with no line break is never read whole; a one-line :class:`UsageError` when the
    file cannot be opened or read."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror or exc})") from None
    with handle:
        number = 0
        while True:
            try:
                raw = handle.readline(MAX_LINE_BYTES + 1)
            except OSError as exc:  # (a disk's or a file system's read error, past the opening)
                raise UsageError(f"{path}: cannot read ({exc.strerror or exc})") from None
            if not raw:
                return
            number += 1
            yield number, raw


def case_problem(case: Case) -> str | None:
    """Why ``case``'s workspace cannot be made (see :func:`fixture_problem`), or its files' days
    cannot be counted back from its ``today``; None when it can."""
    if problem := fixture_problem(case.fixture):
        return problem
    oldest = max((spec.age_days for spec in case.fixture.files), default=0.0)
    try:
        when(case.today, oldest)
    except OverflowError:
        return f"a file {oldest:g} days older than {case.today} would be dated before the year 1"
    return None


def case_messages(case: Case) -> list[ChatMessage]:
    """The chat messages a served planner gets for ``case``."""
    return planner_messages(entries_from_fixture(case.fixture, case.today), case.request, case.today)


def case_schema(case: Case, made: Sequence[ViewEntry] = ()) -> dict[str, Any]:
    """The schema a served planner's answer to ``case`` is decoded under: narrowed to the case (and
    to the folders ``made`` by the parts of its request planned before it), or the whole reply
    schema where narrowing fails, as the agent does (:func:`~engine.planner.narrow.schema_for`)."""
    return schema_for(case.request, [*entries_from_fixture(case.fixture, case.today), *made], case.today)[0]


def gold_predictor(case: Case) -> Prediction:
    return Prediction(case.plan, 0.0, json.dumps(case.plan))


def rules_predictor(case: Case) -> Prediction:
    from engine.planner.rules import parse_request

    started = time.perf_counter()
    plan = parse_request(case.request, entries_from_fixture(case.fixture, case.today), case.today)
    return Prediction(plan, time.perf_counter() - started, json.dumps(plan))


def parse_reply(text: str) -> tuple[Any, str | None]:
    """The JSON in a reply (bare or in one fenced block), or None and why not."""
    body = text.strip()
    if body.startswith("```"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
        body = body.rsplit("```", 1)[0]
    try:
        return parse_json(body), None
    except json.JSONDecodeError as exc:
        return None, f"not JSON: {decode_error_reason(exc)} at character {exc.pos}"
    except NumberTooLong as exc:
        return None, f"not JSON: {exc}"
    except RecursionError:
        return None, "not JSON: nested too deeply"


def _is_plan(plan: Any) -> bool:
    steps = plan.get("steps") if isinstance(plan, dict) else None
    return isinstance(steps, list) and all(isinstance(step, dict) for step in steps)


def _guided(case: Case, plan: Any, schema: dict[str, Any]) -> dict[str, Any] | None:
    """``schema`` without the choices of ``plan`` that the dry run over ``case``'s workspace refuses;
    None for a plan that is no planner reply, which is never expanded."""
    from engine.planner.fixtures import materialize
    from engine.planner.guided import dry_run_problems, guided_schema, refused_values

    if reply_problems(plan):
        return None
    where = Path(tempfile.gettempdir())
    with scratch_writes(where):
        made = tempfile.TemporaryDirectory(prefix="routeshell-guide-")
    with made as scratch:
        root = Path(scratch)
        now = noon(case.today)
        with scratch_writes(where):
            materialize(case.fixture, root, now)
        problems = dry_run_problems(root, plan, now=now)
        refused = refused_values(root, plan, problems, now=now)
    return guided_schema(schema, refused)


def endpoint_predictor(
    base_url: str,
    model: str,
    *,
    constrained: bool,
    api_key: str | None = None,
    max_tokens: int | None = None,
    timeout_s: float = 120.0,
    retries: int = 0,
    min_probability: float = 0.0,
    guided: int = 0,
) -> tuple[Predictor, Callable[[], None]]:
    """A predictor that asks a served model; returns it and a function that closes its connections.

    With ``retries``, it asks as the agent does: the first answer is greedy, and one that is not a
    valid plan or that the case's dry run refuses is asked again from the same prompt at
    :data:`PLANNER_RETRY_TEMPERATURE`, at most ``retries`` times; the time is that of all attempts.
    An answer that applies but repeats itself (:func:`repetitions`) is asked again too, and kept
    when no retry gives one that applies without repeating itself. With ``guided``, an answer the dry
    run refuses because a step selects nothing, or one that does a step twice, is first asked again
    greedily, at most ``guided`` times, under the schema without the choice at fault
    (:mod:`engine.planner.guided`); a server that refuses that schema is asked as before. With
    ``min_probability``, as the local profile's agent does, a plan the planner gives a lower
    probability (under the grammar it was decoded with, over all the parts of the request) is
    declined: it changes nothing, and the prediction says why."""
    from engine.config.profiles import Endpoint
    from engine.llm.client import ChatClient, EndpointError

    endpoint = Endpoint(base_url=base_url, model=model, api_key=api_key, timeout_s=timeout_s, max_retries=1,
                        timeout_setting="--timeout")  # fmt: skip
    client = ChatClient(endpoint)

    scored: Literal["processed"] | None = "processed" if min_probability > 0 else None

    def ask(case: Case, response_format: Any, temperature: float) -> tuple[str, float | None]:
        # Free decoding has no grammar to end it: it is cut at FREE_MAX_TOKENS (more than any gold
        # answer takes), or at the model's context when the prompt leaves less.
        limit = max_tokens if constrained else max_tokens or FREE_MAX_TOKENS
        messages = case_messages(case)
        try:
            reply = client.chat(messages, response_format=response_format, temperature=temperature, max_tokens=limit,
                                logprobs=scored)  # fmt: skip
        except EndpointError as exc:
            if limit is None or exc.status != 400:
                raise
            reply = client.chat(messages, response_format=response_format, temperature=temperature, logprobs=scored)
        return reply.content, reply.logprob

    def answer(case: Case, made: list[ViewEntry]) -> tuple[Any, str, str | None, float | None] | str:
        """The plan, text, parse problem and log probability of one request's answer, or why there is none."""
        response_format: Any = None
        # (As the agent does, a constrained answer comes with the folders it writes into made first.)
        folders = existing_folders([*entries_from_fixture(case.fixture, case.today), *made]) if constrained else None
        if constrained:
            schema = case_schema(case, made)
            response_format = {"type": "json_schema", "json_schema": {"name": "plan", "schema": schema}}
        kept: tuple[Any, str, float | None] | None = None  # the first answer that applies but repeats itself
        logprob: float | None = None
        guides, greedy = guided, True
        unguided: Any = None  # the response format before a guided ask
        attempt = 0
        while attempt <= retries:
            try:
                text, logprob = ask(case, response_format, 0.0 if greedy else PLANNER_RETRY_TEMPERATURE)
            except EndpointError as exc:
                if unguided is not None:
                    # A server that refuses the narrower schema: the refused answer at hand was this
                    # attempt; ask again as before, sampled, while retries are left.
                    response_format, unguided, guides, greedy = unguided, None, 0, False
                    attempt += 1
                    if attempt > retries:
                        break
                    continue
                if kept is None:
                    return str(exc)
                (plan, text, logprob), why = kept, None
                break
            unguided = None
            plan, why = parse_reply(text)
            if why is None and folders is not None:
                plan = with_parents(plan, folders)
            applies = why is None and plan_effect(case.fixture, case.today, plan).applied
            if applies and not repetitions(plan):
                break
            if guides and why is None and response_format is not None:
                # Refused by the dry run, or a step done twice: ask again, greedily, without the choice at fault.
                schema = response_format["json_schema"]["schema"]
                narrower = (None if applies else _guided(case, plan, schema)) or unrepeated_schema(schema, plan)
                if narrower is not None and narrower != schema:
                    guides, greedy, unguided = guides - 1, True, response_format
                    response_format = {"type": "json_schema", "json_schema": {"name": "plan", "schema": narrower}}
                    continue
            greedy = False
            if attempt == retries and kept is None:
                break
            kept = kept or ((plan, text, logprob) if applies else None)
            # (One refused for doing a step twice is kept done once, as the agent keeps it.)
            once = without_repeated_steps(plan) if why is None and not applies and kept is None else plan
            if once is not plan and plan_effect(case.fixture, case.today, once).applied:
                kept = (once, json.dumps(once), logprob)
            if attempt == retries and kept is not None:
                (plan, text, logprob), why = kept, None
            attempt += 1
        return plan, text, why, logprob

    def predict(case: Case) -> Prediction:
        started = time.perf_counter()
        parts = request_parts(case.request) if constrained else [case.request]
        answers = []
        logprobs: list[float | None] = []
        made: list[ViewEntry] = []  # folders the parts planned so far make
        for part in parts:
            got = answer(dataclasses.replace(case, request=part), made)
            if isinstance(got, str):
                return Prediction(None, time.perf_counter() - started, error=got)
            plan, text, why, logprob = got
            if why is not None or not _is_plan(plan):
                return Prediction(plan if len(parts) == 1 else None, time.perf_counter() - started, text, why)
            answers.append((plan, text))
            logprobs.append(logprob)
            made += made_entries(plan, [*entries_from_fixture(case.fixture, case.today), *made], case.today)
        if len(answers) == 1:
            ((plan, text),) = answers
        else:
            plan = joined_plan([plan for plan, _ in answers])
            text = json.dumps(plan)
        total = joint_logprob(logprobs)
        declined = None
        if plan.get("steps") and unsure(total, min_probability):
            chance = as_percent(math.exp(total or 0.0))
            declined = f"the planner gives its plan a probability of {chance}, under {min_probability:.0%}"
        probability = None if total is None else math.exp(total)
        return Prediction(plan, time.perf_counter() - started, text, declined=declined, probability=probability)

    return predict, client.close


#: The most ways :func:`gold_fits` tries to share a gold plan's steps among the parts of its request.
MAX_SPLITS = 256


def gold_fits(case: Case) -> bool:
    """Whether the gold plan of ``case`` is an answer the constrained planner could give: valid, part
    by part, under the schemas narrowed to the parts of its request (:func:`case_schema`, as the
    ``model`` predictor asks), its steps shared among the parts in order (each part's share decoded
    with the folders the shares before it make). The goal is left out: the planner writes its own.

    A gold plan that does not fit may still have one of the same effect that does (another glob that
    selects the same files); one whose steps can be shared in more than :data:`MAX_SPLITS` ways is
    counted as not fitting."""
    import itertools

    import jsonschema

    entries = entries_from_fixture(case.fixture, case.today)
    parts = request_parts(case.request)
    steps = case.plan["steps"]

    def fits(part: str, made: list[ViewEntry], share: list[Any]) -> bool:
        schema = case_schema(dataclasses.replace(case, request=part), made)
        return bool(jsonschema.Draft202012Validator(schema).is_valid({"version": 1, "steps": share}))

    cuts = itertools.islice(itertools.combinations(range(len(steps) + 1), len(parts) - 1), MAX_SPLITS)
    for cut in cuts:
        bounds = [0, *cut, len(steps)]
        made: list[ViewEntry] = []
        for at, part in enumerate(parts):
            share = steps[bounds[at] : bounds[at + 1]]
            if not fits(part, made, share):
                break
            made += made_entries({"steps": share}, [*entries, *made], case.today)
        else:
            return True
    return False


def score_case(case: Case, prediction: Prediction, scratch: Path) -> CaseResult:
    """Score ``prediction`` against ``case``'s gold plan, each applied in ``scratch``.

    Raises :class:`UsageError` naming the case when its gold plan does not apply (the dry run or the
    policy refuses it): every prediction would be scored against the workspace as it was."""
    want = plan_effect(case.fixture, case.today, case.plan, scratch=scratch)
    if not want.applied:
        where = f"{case.source}: " if case.source else ""
        raise UsageError(
            f'{where}case "{display_line(case.id)[:80]}": its gold plan does not apply: '
            f"{display_line(want.refused or 'refused')[:200]}"
        )
    kind = case.kinds[0] if case.kinds else "?"
    if prediction.declined is not None:
        # A plan not offered changes nothing: right only when the request asks for no change.
        exact = not changed_paths(want.before, want.tree)
        return CaseResult(case.id, kind, exact, True, None, [], prediction.seconds, None,
                          [] if exact else ["the plan was declined"], prediction.plan, prediction.declined,
                          prediction.probability)  # fmt: skip
    if prediction.plan is None:
        return CaseResult(case.id, kind, False, False, None, [], prediction.seconds, prediction.error or "no plan",
                          plan=prediction.plan)  # fmt: skip
    got = plan_effect(case.fixture, case.today, prediction.plan, scratch=scratch)
    expected = changed_paths(want.before, want.tree)
    overreach = sorted(changed_paths(got.before, got.tree) - expected)
    exact = got.tree == want.tree
    return CaseResult(case.id, kind, exact, got.valid, got.refused if got.valid else None, overreach,
                      prediction.seconds, None if got.valid else got.refused,
                      [] if exact else differences(got.tree, want.tree), prediction.plan,
                      probability=prediction.probability)  # fmt: skip


def _percentile(values: Sequence[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def summarise(results: Sequence[CaseResult]) -> dict[str, Any]:
    total = len(results) or 1
    seconds = [r.seconds for r in results]
    by_kind: dict[str, list[CaseResult]] = defaultdict(list)
    for result in results:
        by_kind[result.kind].append(result)
    return {
        "cases": len(results),
        "exact_effect": sum(r.exact for r in results) / total,
        "valid": sum(r.valid for r in results) / total,
        "refused": sum(r.refused is not None for r in results) / total,
        "overreach": sum(bool(r.overreach) for r in results) / total,
        "declined": sum(r.declined is not None for r in results) / total,
        "latency_p50_s": round(_percentile(seconds, 0.5), 4),
        "latency_p95_s": round(_percentile(seconds, 0.95), 4),
        "latency_mean_s": round(statistics.fmean(seconds), 4) if seconds else 0.0,
        "by_kind": {kind: round(sum(r.exact for r in rows) / len(rows), 4) for kind, rows in sorted(by_kind.items())},
    }


def evaluate(cases: Iterable[Case], predictor: Predictor, *, progress: Callable[[int], None] | None = None,
             cancel: Callable[[], bool] | None = None) -> tuple[dict[str, Any], list[CaseResult]]:  # fmt: skip
    """Score ``predictor`` on ``cases``; return the summary and one result per case."""
    results: list[CaseResult] = []
    with scratch_writes(Path(tempfile.gettempdir())):
        made = tempfile.TemporaryDirectory(prefix="routeshell-eval-planner-")
    with made as scratch:
        for case in cases:
            if cancel is not None and cancel():
                break
            results.append(score_case(case, predictor(case), Path(scratch)))
            if progress is not None:
                progress(len(results))
    return summarise(results), results
