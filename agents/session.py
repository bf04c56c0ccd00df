"""Agent sessions: one task on one workspace, run through the graph, durable in the workspace.

A session is a LangGraph thread checkpointed in ``.routeshell/sessions.sqlite``. It runs until it
finishes or a plan needs approval; :meth:`AgentSession.resume` answers the approval, or simply
continues a run that was killed, from its last completed node. Every frontend (``routeshell run``,
the Agent pane, ``--plain``) drives this class and reads the same events.
"""

from __future__ import annotations

import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from agents.errors import RunStopped
from agents.ledger import UsageLedger
from agents.session_db import SESSIONS_DB, checkpointer, database_problem, open_sessions_db
from agents.state import AgentContext
from engine.config.profiles import Endpoint, Profile
from engine.errors import RouteshellError, UsageError
from engine.events import ApprovalAnswer, ApprovalEvent, ApprovalRequest, ErrorEvent, RunOutcome, emit
from engine.kinds import APPROVAL_MODES, ROLES, TOPOLOGIES, ApprovalMode, EndpointRole, Topology
from engine.llm.client import ChatClient
from engine.names import display_line
from engine.plans.journal import state_dir
from engine.plans.policy import Policy
from engine.plans.runner import Limits
from engine.router.decision import Router
from engine.router.registry import load_router
from engine.urls import checked_api_key
from engine.workspace.state import StateError, existing_state_dir, move_aside_hint, odd_database_file

Event = dict[str, Any]  # an engine.events.Event, as the JSON object it is for the sinks


@dataclass
class Outcome:
    """Where a session stands after :meth:`AgentSession.start` or :meth:`AgentSession.resume`.

    ``status`` is ``done`` (``final`` holds the outcome) or ``paused`` (``approval`` holds the
    plan waiting for an answer).
    """

    status: Literal["done", "paused"]
    thread: str
    final: RunOutcome | None = None
    approval: ApprovalRequest | None = None


@dataclass
class SessionOptions:
    """How to run: approval mode, topology override, endpoint overrides and token budget."""

    approval: ApprovalMode = "ask"
    topology: Topology | Literal["auto"] = "auto"
    base_url: str | None = None
    model: str | None = None
    budget: int | None = None
    stream: bool = True
    env: Mapping[str, str] | None = None
    #: The least probability a local plan must have to be offered, instead of the profile's
    #: ``planner.min_probability`` (``run --min-probability``); None keeps the profile's.
    min_plan_probability: float | None = None

    def __post_init__(self) -> None:
        # The modes arrive as plain strings from the command line and profiles: the types hold only once checked.
        if self.approval not in APPROVAL_MODES:
            raise UsageError(f"unknown approval mode {self.approval!r} (choose one of {', '.join(APPROVAL_MODES)})")
        if self.topology not in ("auto", *TOPOLOGIES):
            raise UsageError(f"unknown topology {self.topology!r} (choose auto, {', '.join(TOPOLOGIES)})")
        if self.budget is not None and self.budget < 1:
            raise UsageError("--max-cost-tokens must be a positive number of tokens")
        least = self.min_plan_probability
        if least is not None and not 0 <= least <= 1:  # (nan is neither)
            raise UsageError(f"--min-probability must be a number from 0 to 1 (0 offers every plan), not {least}")


def approval_for(mode: ApprovalMode, *, attended: bool) -> ApprovalMode:
    """Return the approval mode a run uses, given the profile's ``mode`` and whether anyone can answer.

    ``ask`` counts as ``auto`` when unattended (``routeshell run``, ``--plain`` without a terminal):
    nobody is there to answer every plan, and a plan with run steps still stops and waits.
    """
    return "auto" if mode == "ask" and not attended else mode


def plain_text(text: str) -> str:
    """Return ``text`` with every lone surrogate replaced, so that it can be stored and sent as UTF-8.

    An undecodable byte carried by ``surrogateescape`` (a task from argv or a pipe that is not
    UTF-8) becomes ``\\xNN``, the way the model sees such a byte in a file name; any other lone
    surrogate becomes U+FFFD. Newlines and other text are kept.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub(_escape_surrogate, text)
    return text


_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape_surrogate(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else "\ufffd"


#: A thread id as given with --thread: letters, digits, dots, dashes and underscores, not starting
#: with a dot or a dash (the ids routeshell makes are such: 20261123-190312-a3f9).
THREAD_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")


def check_thread_id(thread: str) -> str:
    """``thread``, when it is a valid thread id (:data:`THREAD_ID`); else a UsageError that says why."""
    if THREAD_ID.fullmatch(thread) is None:
        raise UsageError(f"thread id '{display_line(thread)[:80]}' is not valid: use at most 64 letters, digits, "
                         "dots, dashes and underscores, not starting with a dot or a dash")  # fmt: skip
    return thread


def new_thread_id() -> str:
    """Return a fresh, sortable thread id such as ``20261123-190312-a3f9``."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)


def resolve_endpoint(profile: Profile, role: EndpointRole, options: SessionOptions) -> Endpoint:
    """Return ``role``'s endpoint: ``--base-url``/``--model`` over the profile's; the key from the
    profile, else ``OPENAI_API_KEY`` or ``LLM_API_KEY``.

    Raises :class:`UsageError` naming the variable when the profile's key comes from an unset one.
    """
    endpoint = profile.endpoint(role)
    env = os.environ if options.env is None else options.env
    key = endpoint.api_key or env.get("OPENAI_API_KEY") or env.get("LLM_API_KEY") or None
    missing = profile.unset.get(f"llm.{role}.api_key") or profile.unset.get("llm.default.api_key")
    if key is None and missing and options.base_url is None:
        raise UsageError(f"{missing} is not set: profile {profile.name} needs an API key from the environment")
    # A key no HTTP header can carry would fail every request (one that is not ASCII, with a traceback).
    section = role if "api_key" in profile.data["llm"].get(role, {}) else "default"
    source = (f"profile {profile.name}'s llm.{section}.api_key" if endpoint.api_key
              else "$OPENAI_API_KEY" if env.get("OPENAI_API_KEY") else "$LLM_API_KEY")  # fmt: skip
    key = checked_api_key(key, source)
    return Endpoint(
        base_url=options.base_url or endpoint.base_url,
        model=options.model or endpoint.model,
        api_key=key,
        timeout_s=endpoint.timeout_s,
        max_retries=endpoint.max_retries,
        max_reply_bytes=endpoint.max_reply_bytes,
    )


class AgentSession:
    """Runs tasks on one workspace; events go to ``on_event`` as they happen.

    ``router`` and ``clients`` may be given (tests, benchmarks); by default they come from the
    profile. Call :meth:`close` (or use ``with``) to release the endpoints and the database.
    """

    def __init__(
        self,
        root: Path,
        profile: Profile,
        options: SessionOptions,
        on_event: Callable[[Event], None],
        *,
        router: Router | None = None,
        clients: Mapping[str, ChatClient] | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.profile = profile
        self.options = options
        self.on_event = on_event
        self.router_note: str | None = None
        if router is None:
            router, self.router_note = load_router(profile.data["router"])
        self.router = router
        # Only when the builder is the profile's own: --base-url or --model send it to another model.
        self.files_only = (
            profile.prompt_style("builder") == "planner" and options.base_url is None and options.model is None
        )
        self._own_clients = clients is None
        if clients is None:
            endpoints = {role: resolve_endpoint(profile, role, options) for role in ROLES}
            clients = {role: ChatClient(endpoint) for role, endpoint in endpoints.items()}
        self.clients = clients
        self.limits = Limits.from_profile(profile.data.get("sandbox", {}))
        self.database = state_dir(self.root) / SESSIONS_DB
        self._conn = open_sessions_db(self.database)
        from agents.graph import build_graph

        self.checkpointer = checkpointer(self._conn)
        # The ledger writes from the graph's worker threads: a connection of its own, not the saver's.
        self._ledger_conn = open_sessions_db(self.database)
        with self._database():
            self.ledger = UsageLedger(self._ledger_conn)
        self._running: list[threading.Event] = []
        self._stops: list[threading.Event] = []
        self.graph = build_graph(self.checkpointer)

    @contextmanager
    def _database(self) -> Iterator[None]:
        """Turn an error of the session database in the block into its one-line :class:`StateError`."""
        try:
            yield
        except sqlite3.Error as exc:
            raise database_problem(exc, self.database) from None

    def __enter__(self) -> AgentSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the endpoints this session opened and the session database.

        A run whose caller stopped waiting for it (a second Ctrl-C) is waited for first: it
        still uses the database until its step in progress ends.
        """
        for done in self._running:
            _wait_for(done)
        if self._own_clients:
            for client in self.clients.values():
                client.close()
        self._ledger_conn.close()
        self._conn.close()

    def stop(self) -> None:
        """Ask the run in progress to stop (from any thread): a streaming model reply is cut off at
        its next piece, and no step after the current one starts. The run then raises
        :class:`RunStopped`; :meth:`resume` continues its thread from the last completed step."""
        for stop in list(self._stops):
            stop.set()

    def _context(
        self, thread: str, answers: dict[str, ApprovalAnswer] | None = None, stop: threading.Event | None = None
    ) -> AgentContext:
        return AgentContext(
            root=self.root,
            clients=self.clients,
            router=self.router,
            thread_id=thread,
            approval=self.options.approval,
            topology=self.options.topology,
            limits=self.limits,
            budget=self.options.budget,
            stream=self.options.stream,
            router_note=self.router_note,
            answers=answers or {},
            ledger=self.ledger,
            run_timeout_s=self.profile.data.get("sandbox", {}).get("run_timeout_s"),
            stop=stop or threading.Event(),
            context=self.profile.context,
            policy=Policy.from_profile(self.profile.data.get("policy")),
            files_only=self.files_only,
            **self._least_probability(),
        )

    def _least_probability(self) -> dict[str, Any]:
        """The bound under which a local plan is declined, and where it comes from."""
        if self.options.min_plan_probability is not None:
            return {"min_plan_probability": self.options.min_plan_probability,
                    "min_plan_probability_from": "--min-probability"}  # fmt: skip
        return {"min_plan_probability": float(self.profile.data.get("planner", {}).get("min_probability", 0.0))}

    def exists(self, thread: str) -> bool:
        """Return whether ``thread`` has been started in this workspace."""
        with self._database():
            return bool(self.graph.get_state({"configurable": {"thread_id": thread}}).values)

    def start(self, task: str, thread: str | None = None) -> Outcome:
        """Start ``task`` on a new thread (``thread`` or a fresh id) and run it as far as it goes."""
        if not task.strip():
            raise UsageError("the task is empty; say what to do, for example: routeshell run 'add a README'")
        task = plain_text(task)
        thread = thread or new_thread_id()
        if self.exists(thread):
            raise UsageError(f"thread {thread!r} already exists in this workspace; pass --resume to continue it")
        return self._drive(thread, {"task": task})

    def resume(self, thread: str, answer: ApprovalAnswer | None = None) -> Outcome:
        """Continue ``thread``: answer its pending approval, or pick up a killed run where it stopped.

        An ``answer`` decides the plan the thread waits for whatever this session's approval mode is;
        the mode decides only the plans after it (and that one when no answer is given).
        """
        with self._database():
            state = self.graph.get_state({"configurable": {"thread_id": thread}})
        if not state.values:
            raise UsageError(f"no thread {thread!r} in this workspace; start one with routeshell run TASK")
        checked_values(state.values, self.database, thread)
        if not state.tasks:
            outcome = state.values.get("outcome") or {}
            raise UsageError(f"thread {thread!r} already finished (ok: {outcome.get('ok')}); nothing to resume")
        from langgraph.types import Command

        if answer is None:
            return self._drive(thread, None)
        waiting = self.pending(thread)
        if waiting is None:
            raise UsageError(f"thread {thread!r} is not waiting for an approval; resume it without an answer")
        seen = waiting.get("seen")
        if answer.get("action") == "approve" and _is_seen(seen):
            # The approval is of what the question showed: the apply checks that nothing it read changed since.
            answer = cast(ApprovalAnswer, {**answer, "seen": seen})
        return self._drive(thread, Command(resume=answer), {waiting["id"]: answer})

    def pending(self, thread: str) -> ApprovalRequest | None:
        """Return the approval ``thread`` is waiting for, if any."""
        with self._database():
            state = self.graph.get_state({"configurable": {"thread_id": thread}})
        for task in state.tasks:
            for pending in task.interrupts:
                return cast(ApprovalRequest, dict(pending.value))  # what review() paused with
        return None

    def _drive(self, thread: str, graph_input: Any, answers: dict[str, ApprovalAnswer] | None = None) -> Outcome:
        """Run the graph in a thread of its own while this one waits, waking often.

        A Ctrl-C may be delivered to any thread of the process; the waiting thread wakes every
        0.1 s, so the main thread's handler runs at once wherever the signal landed. The first
        KeyboardInterrupt stops the graph after the step in progress (nothing after it runs) and
        is raised once that step is saved; a second one stops waiting for it.
        """
        # A run the caller stopped waiting for (a second Ctrl-C) ends its step first: one run at a time.
        for earlier in self._running:
            _wait_for(earlier)
        stop = threading.Event()
        self._stops.append(stop)
        result: list[Outcome] = []
        failure: list[BaseException] = []

        done = threading.Event()

        def run() -> None:
            try:
                result.append(self._stream(thread, graph_input, answers, stop))
            except BaseException as exc:  # handed to the waiting thread, which raises it
                failure.append(exc)
            finally:
                done.set()

        runner = threading.Thread(target=run, name=f"routeshell-agent-{thread}", daemon=True)
        self._running = [*(event for event in self._running if not event.is_set()), done]
        runner.start()
        interrupted: KeyboardInterrupt | None = None
        while True:
            try:
                # The whole wait is inside the try: the signal's exception can come at any bytecode.
                _wait_for(done)
                break
            except KeyboardInterrupt as exc:
                if interrupted is not None:
                    raise
                interrupted = exc
                stop.set()
        self._stops.remove(stop)
        if interrupted is not None:
            raise interrupted
        if failure:
            raise failure[0]
        if stop.is_set():
            raise RunStopped("stopped after the step in progress; resume continues from there")
        return result[0]

    def _stream(
        self, thread: str, graph_input: Any, answers: dict[str, ApprovalAnswer] | None, stop: threading.Event
    ) -> Outcome:
        config = {"configurable": {"thread_id": thread}}
        approval: ApprovalRequest | None = None
        try:
            # A full disk can first show at any checkpoint, in the middle of the run.
            # Closed here, in this thread, whatever ends the loop (a sink that cannot write raises in
            # it): left to the garbage collector, the graph's clean-up could run at exit, after the
            # thread pools it uses are shut down, and print a traceback.
            with self._database(), closing(self.graph.stream(
                graph_input, config, context=self._context(thread, answers, stop),
                stream_mode=["custom", "updates"], durability="sync",
            )) as chunks:  # fmt: skip
                for mode, chunk in chunks:
                    if mode == "custom":
                        self.on_event(chunk)
                    elif "__interrupt__" in chunk:
                        # what review() paused with
                        approval = cast(ApprovalRequest, dict(chunk["__interrupt__"][0].value))
                        event: ApprovalEvent = {"type": "approval", **approval}
                        emit(self.on_event, event)
                    if stop.is_set():
                        break  # the graph saves the step that was running and goes no further
        except RunStopped:
            raise  # not an error: the caller asked for it
        except RouteshellError as exc:
            code = int(exc.exit_code)
            error: ErrorEvent = {"type": "error", "message": str(exc), "exit_code": code, "thread": thread}
            emit(self.on_event, error)
            raise
        if approval is not None:
            return Outcome("paused", thread, approval=approval)
        with self._database():
            final = self.graph.get_state(config).values.get("outcome")
        return Outcome("done", thread, final=final)


def _is_seen(value: object) -> bool:
    """Whether ``value`` has the shape of a :class:`~engine.events.Seen` (it comes from the session database)."""
    if not isinstance(value, dict) or not isinstance(value.get("steps"), str):
        return False
    paths = value.get("paths")
    return isinstance(paths, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in paths.items())


def _wait_for(done: threading.Event) -> None:
    # Waking every 0.1 s lets the main thread run a signal handler even when the kernel handed the
    # signal to another thread. An Event, not Thread.join: in Python 3.11 a KeyboardInterrupt
    # inside join() can mark a thread that is still running as stopped.
    while not done.wait(0.1):
        pass


def list_sessions(root: Path) -> list[dict[str, Any]]:
    """Return the sessions of a workspace, newest first: thread, task, last update, status, outcome.

    ``status`` is ``done``, ``waiting for approval``, or ``stopped`` (killed, interrupted or ended
    by an error: ``routeshell run --thread ID --resume`` continues it). Creates nothing. Raises
    :class:`StateError` when the database, or a file SQLite keeps beside it, is not ours.
    """
    state = existing_state_dir(Path(root).resolve())
    if state is None:
        return []
    database = state / SESSIONS_DB
    odd = odd_database_file(database)  # (checked here too: a listing creates no database to open)
    if odd is not None:
        raise StateError(odd)
    if not database.exists():
        return []
    with closing(open_sessions_db(database, write=False)) as conn:
        try:
            return _session_rows(conn, database)
        except sqlite3.Error as exc:
            raise database_problem(exc, database, "cannot read") from None


def checked_values(values: Mapping[str, Any], database: Path, thread: str) -> Mapping[str, Any]:
    """The state of session ``thread`` as read back from ``database``, when it has the shape a run
    writes; else :class:`StateError`, naming the database and how to move it aside. What the
    checkpointer would not build (a type it does not allow) comes back as data and fails here."""
    task, outcome = values.get("task", ""), values.get("outcome") or {}
    shaped = isinstance(outcome, dict) and outcome.get("ok") in (True, False, None)
    if not (isinstance(task, str) and shaped and isinstance(outcome.get("summary", ""), str)):
        raise StateError(
            f"{database} holds a session routeshell never wrote (thread {thread!r}); {move_aside_hint(database)}"
        )
    return values


def _session_rows(conn: sqlite3.Connection, database: Path) -> list[dict[str, Any]]:
    from agents.graph import build_graph

    saver = checkpointer(conn)
    graph = build_graph(saver)
    latest: dict[str, str] = {}
    for checkpoint in saver.list(None):
        thread = checkpoint.config["configurable"]["thread_id"]
        latest[thread] = max(latest.get(thread, ""), checkpoint.checkpoint["ts"])
    rows = []
    for thread, updated in sorted(latest.items(), key=lambda item: item[1], reverse=True):
        state = graph.get_state({"configurable": {"thread_id": thread}})
        checked_values(state.values, database, thread)
        outcome = state.values.get("outcome") or {}
        waiting = any(task.interrupts for task in state.tasks)
        status = "done" if not state.tasks else "waiting for approval" if waiting else "stopped"
        rows.append({"thread": thread, "task": state.values.get("task", ""), "updated": updated,
                     "status": status, "ok": outcome.get("ok"), "summary": outcome.get("summary", "")})  # fmt: skip
    return rows
