"""``routeshell --plain``: the agent tasks, approvals and transcript as a line-mode prompt.

For dumb or slow terminals (a serial console, SSH over a bad link) where the full-screen shell
is too much: a prompt_toolkit prompt with history and completion, the same :class:`Transcript` as
``routeshell run``, and approvals asked as one question. When standard input is not a terminal,
lines are read from it as they come, so ``echo TASK | routeshell --plain`` works too.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import History, InMemoryHistory
from rich.console import Console
from rich.text import Text

from agents.session import AgentSession, Outcome, SessionOptions, approval_for, check_thread_id, new_thread_id
from agents.state import APPROVAL_MODES
from engine.config.profiles import Profile
from engine.errors import ExitCode, RouteshellError, UsageError
from engine.events import ApprovalAnswer, ApprovalEvent, emit
from engine.names import display_line, display_name
from engine.plans.policy import waits_for_approval
from engine.router.decision import TOPOLOGIES
from engine.serve.launcher import local_server_for
from engine.workspace.sandbox import SandboxError, Workspace, check_relpath
from tui.external_editor import EditorFailed, edit_text
from tui.sizes import MAX_TASK_BYTES, MAX_TASK_SIZE, size_text
from tui.task_history import append_task, history_path, load_history
from tui.transcript import Transcript

PROMPT = "routeshell> "
APPROVAL_QUESTION = "approve, edit, reject? [a/e/r] "
INTERRUPT_NOTE = (
    b"\ninterrupting: a streaming reply stops at its next piece, any other step finishes first"
    b" (Ctrl-C again to stop waiting)\n"
)
ABANDON_NOTE = b"\nnot waiting: the step in progress ends in the background (quitting waits for it)\n"
MAX_PATH_COMPLETIONS = 200

#: Commands and the arguments Tab offers for them (``None``: a free argument, or none).
COMMANDS: dict[str, tuple[str, ...] | None] = {
    "/help": None,
    "/quit": None,
    "/approve": APPROVAL_MODES,
    "/topology": ("auto", *TOPOLOGIES),
    "/undo": None,
    "/history": None,
    "/resume": None,
    "/anyway": None,
    "/stream": ("on", "off"),
}

HELP = """\
Type a task in plain words to run it with the agents, or one of these commands:
  /approve [ask|auto|never|all]          what may be applied without asking (no argument: show it)
  /topology [auto|single|pipeline|loop]  force a topology, or let the router choose (auto)
  /stream [on|off]                       echo the models' text as it streams in
  /undo [ID]                             undo the last plan applied to the workspace, or plan ID
                                         (its id or number, as /history lists them)
  /history                               list the plans applied to the workspace
  /resume THREAD                         continue a task that was interrupted or waits for approval
  /anyway                                ask again for the plan the local planner declined as unsure,
                                         and show it for approval (piped: shown, not applied)
  /help                                  this text
  /quit                                  leave (Ctrl-D too)
A plan waiting for approval asks 'approve, edit, reject?': a applies it, e opens it as JSON in
$EDITOR (default vi) and applies what you save, r rejects it with an optional reason.
Ctrl-C clears the line; during a task it stops the task once the step in progress is done, and
/resume THREAD continues it. Tab completes commands, their arguments and workspace paths.
Tasks are kept in {history}, the history the Agent pane recalls too.
When standard input is not a terminal, each line is a task or a command. Approvals cannot be
asked there: 'ask' counts as 'auto' (as in 'routeshell run'), and a task whose plan waits for
approval stops; answer it later with /resume THREAD at a terminal. The exit code is then the
worst of the lines run: 0 all went well, 1 a task or command failed (or waits for approval),
2 an unknown command, bad usage or a line that is not UTF-8, 3 the LLM endpoint failed,
130 interrupted."""


class TaskHistory(History):
    """prompt_toolkit's view of the task history the Agent pane keeps too (:mod:`tui.task_history`)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def load_history_strings(self) -> Iterable[str]:
        return reversed(load_history(self.path))  # newest first, as prompt_toolkit wants

    def store_string(self, string: str) -> None:
        # Only tasks are kept: a /command recalled in the Agent pane would run as a task there.
        if not string.strip() or string.lstrip().startswith("/"):
            return
        # Checked writable when the shell started; a failure now loses one line, not the shell.
        with contextlib.suppress(OSError):
            append_task(self.path, string)


def _open_history(path: Path) -> tuple[History, str | None]:
    """Return the task history at ``path``, or one in memory and why, when it cannot be kept."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600))
    except OSError as exc:
        return InMemoryHistory(), f"history is not saved: {path.parent}: {exc.strerror or exc}"
    return TaskHistory(path), None


class PlainCompleter(Completer):
    """Completes slash commands, their arguments, and paths in the workspace for any other word."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.realpath(root))

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterator[Completion]:
        """Yield the completions for the text before the cursor."""
        text = document.text_before_cursor
        if text.startswith("/"):
            command, space, argument = text.partition(" ")
            if not space:
                yield from _matching(COMMANDS, command)
            elif " " not in argument:
                yield from _matching(COMMANDS.get(command) or (), argument)
            return
        yield from self._paths(document.get_word_before_cursor(WORD=True))

    def _paths(self, word: str) -> Iterator[Completion]:
        folder, _, prefix = word.rpartition("/")
        if word.startswith("/") or ".." in folder.split("/"):
            return
        # Resolved by the workspace like every other path: a symlink leading out is not followed.
        try:
            with Workspace(self.root) as ws:
                found = ws.scandir(check_relpath(folder or "."))
                names = sorted((entry.name, entry.is_dir) for entry in found if entry.name.startswith(prefix))
        except (SandboxError, OSError):
            return
        # A name that is not one plain word could not be typed back as one; dotfiles only when asked for.
        shown = [(name, is_dir) for name, is_dir in names if name.isprintable() and " " not in name
                 and name != ".routeshell" and (prefix.startswith(".") or not name.startswith("."))]  # fmt: skip
        for name, is_dir in shown[:MAX_PATH_COMPLETIONS]:
            yield Completion(name + "/" * is_dir, start_position=-len(prefix))


def _matching(words: Iterable[str], typed: str) -> Iterator[Completion]:
    return (Completion(word, start_position=-len(typed)) for word in words if word.startswith(typed))


def make_console() -> Console:
    """Return the console for the transcript: no colour or styles on a dumb terminal or with NO_COLOR."""
    dumb = os.environ.get("TERM", "") in ("dumb", "unknown")
    # soft_wrap: the terminal wraps long lines itself; rich re-flowing them would garble diffs.
    return Console(highlight=False, soft_wrap=True, no_color=bool(os.environ.get("NO_COLOR")) or dumb,
                   color_system=None if dumb else "auto")  # fmt: skip


def edit_in_editor(document: dict[str, Any]) -> dict[str, Any]:
    """Open ``document`` as indented JSON in the user's editor and return what was saved.

    Raises :class:`UsageError` saying why when the editor fails or leaves no JSON object.
    """
    original = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    try:
        text = edit_text(None, "plan.json", original)
    except EditorFailed as exc:
        raise UsageError(f"{exc}; the plan was left as it was") from None
    from engine.jsonl import parse_json

    try:
        edited = parse_json(text)
    except ValueError as exc:
        raise UsageError(f"the edited plan is not valid JSON ({exc})") from None
    except RecursionError:
        raise UsageError("the edited plan is not valid JSON (nested too deeply)") from None
    if not isinstance(edited, dict):
        raise UsageError("the edited plan is not a JSON object")
    return edited


@contextmanager
def _interruptible() -> Iterator[None]:
    """Say at once that Ctrl-C was seen. The session stops the run: a streaming reply at its next
    piece, any other step once it ends. A second Ctrl-C stops waiting; the step ends on its own.
    """

    pressed: list[int] = []

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        os.write(sys.stderr.fileno(), ABANDON_NOTE if pressed else INTERRUPT_NOTE)
        pressed.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class PlainShell:
    """The read-run loop: one :class:`AgentSession` on ``workspace`` for the shell's lifetime.

    ``interactive`` says whether questions (approvals) can be asked on standard input.
    Use as a context manager, so that the session is closed.
    """

    def __init__(self, workspace: Path, profile: Profile, console: Console, *, interactive: bool) -> None:
        self.workspace = workspace
        self.console = console
        self.interactive = interactive
        self.transcript = Transcript(console, undo_hint="/undo")
        self.history_file = history_path()
        self._error_shown = False
        #: The task whose plan the local planner declined as unsure, which /anyway asks again.
        self.unsure_task: str | None = None
        #: The worst exit code of the lines run so far (the exit code of a piped shell).
        self.status = ExitCode.OK
        approval = approval_for(profile.data["approval"], attended=interactive)
        options = SessionOptions(approval=approval, topology="auto", env=os.environ)
        self.session = AgentSession(workspace, profile, options, self._on_event)
        # The profile's own model server (the local profile), started by the first task that needs it.
        self.server = local_server_for(profile, cwd=workspace)
        self._prompt: PromptSession[str] | None = None
        self._question: PromptSession[str] | None = None
        self._note: str | None = None
        if interactive and sys.stdout.isatty():
            history, self._note = _open_history(self.history_file)
            # Completion only on Tab: a menu redrawn on every key is what a slow link cannot afford.
            self._prompt = PromptSession(
                history=history, completer=PlainCompleter(workspace), complete_while_typing=False
            )
            self._question = PromptSession()

    def __enter__(self) -> PlainShell:
        return self

    def __exit__(self, *exc: object) -> None:
        self.session.close()
        if self.server is not None:
            self.server.close()

    def _on_event(self, event: dict[str, Any]) -> None:
        if event.get("type") == "error":
            self._error_shown = True
        self.transcript.handle(event)
        # As `run` shows it: a plan that does not wait for approval is shown step by step (one that
        # waits is shown by its approval event).
        if event.get("type") == "plan" and not waits_for_approval(self.session.options.approval, event["plan"]):
            from tui.run_cli import plan_previews

            for preview in plan_previews(self.workspace, event["plan"], False):
                self.transcript.handle(preview)

    def _failed(self, code: ExitCode) -> None:
        """Remember that a line ended with ``code``: the shell's status is the worst one."""
        self.status = max(self.status, code)

    def say(self, text: str, style: str = "") -> None:
        """Print one line, literally (never as markup)."""
        self.console.print(Text(text, style=style), highlight=False)

    def _ask(self, question: str, session: PromptSession[str] | None) -> str:
        return session.prompt(question) if session is not None else input(question)

    def loop(self, lines: Iterable[str] | None = None) -> int:
        """Read and run lines until ``/quit`` or end of input; return the exit code.

        Given ``lines`` (standard input that is not a terminal), the exit code is the worst status of
        the lines run (see :attr:`status`); at a terminal it is 0.
        """
        options = self.session.options
        self.say(f"routeshell --plain on {display_name(str(self.workspace))}: approval {options.approval}, "
                 f"topology {options.topology}; type a task, or /help", "bold")  # fmt: skip
        if self._note:
            self.say(f"note: {self._note}", "yellow")
        if lines is not None:
            for line in lines:
                if isinstance(line, OversizedLine):
                    if line.endless:
                        self.say(f"error: more than {size_text(MAX_SKIPPED_BYTES)} on standard input with no line "
                                 "break; stopped reading it", "bold red")  # fmt: skip
                        self._failed(ExitCode.USAGE)
                        break
                    self.say(f"error: a line longer than {MAX_TASK_SIZE}; skipped", "bold red")
                    self._failed(ExitCode.USAGE)
                    continue
                self.say(PROMPT + display_name(line.rstrip("\n")), "dim")
                if not self.handle(line):
                    break
            return self.status
        while True:
            try:
                line = self._ask(PROMPT, self._prompt)
            except KeyboardInterrupt:
                continue  # Ctrl-C at the prompt clears the line, as in a shell
            except EOFError:
                return ExitCode.OK
            if not self.handle(line):
                return ExitCode.OK

    def handle(self, line: str) -> bool:
        """Run one line: a slash command or a task. Return False when the shell should end."""
        line = line.strip()
        if not line:
            return True
        try:
            # Undecodable input arrives with its bytes as lone surrogates (see _stdin_lines).
            line.encode("utf-8")
        except UnicodeEncodeError as exc:
            self.say(f"error: this line is not UTF-8 text (byte {display_name(line[exc.start])} at offset "
                     f"{exc.start}); skipped", "bold red")  # fmt: skip
            self._failed(ExitCode.USAGE)
            return True
        if not line.startswith("/"):
            self._task(line)
            return True
        command, _, argument = line.partition(" ")
        argument = argument.strip()
        if command in ("/quit", "/exit"):
            return False
        if command not in COMMANDS:
            self.say(f"unknown command {display_name(command)} (type /help)", "red")
            self._failed(ExitCode.USAGE)
            return True
        handler: Callable[[str], None] = getattr(self, "_cmd_" + command[1:])
        try:
            handler(argument)
        except RouteshellError as exc:
            self.say(f"error: {display_line(str(exc))}", "bold red")
            self._failed(exc.exit_code)
        except KeyboardInterrupt:
            self.say("interrupted", "yellow")
            self._failed(ExitCode.INTERRUPTED)
        return True

    def _task(self, task: str) -> None:
        """Run ``task``; after the local planner declines its plan as unsure, say how to see it anyway."""
        from agents.nodes import UNSURE

        self.unsure_task = None
        thread = new_thread_id()
        outcome = self._run(lambda: self.session.start(task, thread), thread)
        final = outcome.final if outcome is not None else None
        if final and not final["ok"] and final["summary"].startswith(UNSURE):
            self.unsure_task = task
            self.say("/anyway asks again and shows that plan for your approval", "magenta")

    def _cmd_anyway(self, argument: str) -> None:
        if self.unsure_task is None:
            raise UsageError("no plan was declined as unsure: type a task")
        task, self.unsure_task = self.unsure_task, None
        options = self.session.options
        saved = options.approval, options.min_plan_probability
        # (asked before it is applied, at a terminal; piped, where nothing can be asked, only shown)
        options.approval, options.min_plan_probability = ("ask" if self.interactive else "never"), 0.0
        try:
            thread = new_thread_id()
            self._run(lambda: self.session.start(task, thread), thread)
        finally:
            options.approval, options.min_plan_probability = saved

    def _run(self, first: Callable[[], Outcome], thread: str) -> Outcome | None:
        """Run a task until it is done, answering approvals; errors and Ctrl-C end it with one line.
        Returns how it ended, or None when it did not (an error, Ctrl-C, an approval not asked)."""
        self._error_shown = False
        try:
            with _interruptible():
                if self.server is not None:
                    self.server.ensure(on_start=lambda line: self.say(f"{display_line(line)} …", "dim"))
                outcome = first()
            while outcome.status == "paused":
                answer = self._approval(outcome)
                if answer is None:
                    self._failed(ExitCode.FAILED)  # as in routeshell run: waiting is not done
                    return None
                with _interruptible():
                    outcome = self.session.resume(outcome.thread, answer)
        except (KeyboardInterrupt, EOFError):
            self.say(f"interrupted; /resume {thread} continues it", "yellow")
            self._failed(ExitCode.INTERRUPTED)
            return None
        except RouteshellError as exc:
            # Errors from inside the run already reached the transcript as an "error" event.
            if not self._error_shown:
                self.say(f"error: {display_line(str(exc))}", "bold red")
            self._failed(exc.exit_code)
            return None
        if not (outcome.final and outcome.final["ok"]):
            self._failed(ExitCode.FAILED)
        return outcome

    def _approval(self, outcome: Outcome) -> ApprovalAnswer | None:
        """Ask what to do with the plan the run waits for; None when it cannot be asked here."""
        approval = outcome.approval
        if not self.interactive:
            self.say(f"stop: approval needed for plan {approval['id'] if approval else '?'}; answer it at a terminal "
                     f"with /resume {outcome.thread}", "bold yellow")  # fmt: skip
            return None
        while True:
            choice = self._ask(APPROVAL_QUESTION, self._question).strip().lower()
            if choice in ("a", "approve"):
                return {"action": "approve"}
            if choice in ("r", "reject"):
                reason = self._ask("reason (optional): ", self._question).strip()
                return {"action": "reject", "reason": reason} if reason else {"action": "reject"}
            if choice in ("e", "edit"):
                try:
                    return {"action": "edit", "plan": edit_in_editor(approval["plan"] if approval else {})}
                except UsageError as exc:
                    self.say(f"error: {display_line(str(exc))}; edit it again, or answer a or r", "red")
                continue
            self.say("answer a (approve), e (edit in $EDITOR) or r (reject)")

    def _cmd_help(self, argument: str) -> None:
        self.console.print(Text(HELP.format(history=display_name(str(self.history_file)))), highlight=False)

    def _cmd_approve(self, argument: str) -> None:
        self._set_option("approval", argument, APPROVAL_MODES)

    def _cmd_topology(self, argument: str) -> None:
        self._set_option("topology", argument, ("auto", *TOPOLOGIES))

    def _set_option(self, name: str, value: str, choices: tuple[str, ...]) -> None:
        if value and value not in choices:
            raise UsageError(f"unknown {name} {value!r} (choose {', '.join(choices)})")
        if value:
            setattr(self.session.options, name, value)
        self.say(f"{name}: {getattr(self.session.options, name)}")

    def _cmd_stream(self, argument: str) -> None:
        if argument not in ("", "on", "off"):
            raise UsageError(f"unknown stream setting {argument!r} (choose on or off)")
        if argument:
            self.transcript.deltas = argument == "on"
        self.say(f"stream: {'on' if self.transcript.deltas else 'off'}")

    def _cmd_undo(self, argument: str) -> None:
        from engine.plans.undo import undo_journal

        if " " in argument:
            raise UsageError("usage: /undo [ID] (a plan's id or number, as /history lists them)")
        # As `routeshell plan undo [ID]`: that plan, and later ones are left alone; no ID, the last one.
        journal = undo_journal(self.workspace, argument or None)
        self.say(f"undid plan {display_name(journal.id)} ({len(journal.records())} step(s))", "green")

    def _cmd_history(self, argument: str) -> None:
        from engine.plans.apply import recover
        from engine.plans.journal import history

        recover(self.workspace)
        rows = history(self.workspace)
        if not rows:
            self.say(f"no plans applied in {display_name(str(self.workspace))}")
        for row in rows:
            self.say(row.line())

    def _cmd_resume(self, argument: str) -> None:
        if not argument or " " in argument:
            raise UsageError("usage: /resume THREAD (the thread id printed when the task started)")
        check_thread_id(argument)
        pending = self.session.pending(argument)
        if pending is None:
            self._run(lambda: self.session.resume(argument), argument)
            return
        # Waiting for an answer: show the plan again, since it may have been asked in another shell.
        event: ApprovalEvent = {"type": "approval", **pending}
        emit(self.transcript.handle, event)
        self._run(lambda: Outcome("paused", argument, approval=pending), argument)


#: The most bytes of one over-long line read past before standard input is given up on: what sends
#: more with no line break (``/dev/zero``) would never end.
MAX_SKIPPED_BYTES = 64 * MAX_TASK_BYTES


class OversizedLine(str):
    """A line of standard input longer than MAX_TASK_BYTES, read past and refused (its text is not
    kept); ``endless`` when no line break came in MAX_SKIPPED_BYTES, and nothing more is read."""

    endless = False


class EndlessLine(OversizedLine):
    endless = True


def _stdin_lines() -> Iterator[str]:
    """The lines of standard input, read as bytes: a line that is not UTF-8 keeps its bad bytes as
    lone surrogates, so that it alone is refused (whatever the locale) and the next lines still run.
    A line longer than MAX_TASK_BYTES is read past in bounded pieces and given as an OversizedLine;
    past MAX_SKIPPED_BYTES with no line break, as an EndlessLine, the last."""
    while line := sys.stdin.buffer.readline(MAX_TASK_BYTES + 1):
        if len(line) <= MAX_TASK_BYTES:
            yield line.decode("utf-8", "surrogateescape")
            continue
        skipped = len(line)
        while not line.endswith(b"\n") and (line := sys.stdin.buffer.readline(MAX_TASK_BYTES)):
            skipped += len(line)
            if skipped > MAX_SKIPPED_BYTES:
                yield EndlessLine()
                return
        yield OversizedLine()


def run_plain(workspace: Path, profile: Profile) -> int:
    """Run the line-mode shell on ``workspace`` with ``profile``; return the exit code.

    With standard input a terminal it prompts (exit code 0); otherwise it runs the lines of standard
    input and returns the worst status of those lines.
    """
    interactive = sys.stdin.isatty()
    with PlainShell(workspace, profile, make_console(), interactive=interactive) as shell:
        return shell.loop(None if interactive else _stdin_lines())
