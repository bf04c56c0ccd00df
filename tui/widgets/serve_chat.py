"""The Serve pane's chat box: try the running server with a few messages, the reply streaming in.

A message goes to the server's ``/v1/chat/completions`` through the shell's own OpenAI client
(:class:`engine.llm.client.ChatClient`, streaming), in a thread worker; each piece of the reply
comes back as a message and is shown escaped (``engine.names.display_text``), never as markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Input, Select, Static

from engine.config.profiles import Endpoint
from engine.errors import RouteshellError
from engine.llm.wire import ChatMessage, MessageRole
from engine.names import display_name, display_text
from tui.error_line import error_text

CHAT_HINT = "Start a server, then type a message below: the reply streams in here."
#: How long the chat waits for the server's reply; a tiny model on a busy CPU can be slow.
CHAT_TIMEOUT_S = 120.0


@dataclass
class Turn:
    """One message of the conversation; ``error`` marks a reply that failed (not sent back)."""

    role: MessageRole  # "user" or "assistant"
    content: str  # not yet escaped
    error: bool = False


class ServeChat(Vertical):
    """The conversation with the served model and the line to type the next message on."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+n", "new_chat", "New chat", id="serve.new_chat", tooltip="Forget the conversation"),
    ]

    @dataclass
    class Piece(Message):
        """A piece of the streaming reply."""

        text: str

    @dataclass
    class Replied(Message):
        """The reply is complete (``error`` None) or failed (``error`` one line, not yet escaped)."""

        error: str | None = None
        finish_reason: str | None = None

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.turns: list[Turn] = []
        self.base_url: str | None = None
        self.api_key: str | None = None
        self.replying = False
        #: How many pieces of streamed reply have arrived, over the whole conversation.
        self.pieces = 0

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="serve-chat-scroll"):
            yield Static(Text(CHAT_HINT, style="dim"), id="serve-chat-text")
        with Horizontal(id="serve-chat-row"):
            yield Select[str]([], prompt="model", compact=True, id="serve-chat-model")
            yield Input(placeholder="a message to the served model; Enter sends", compact=True, id="serve-chat-input")

    @property
    def transcript(self) -> str:
        """The conversation as shown (plain characters)."""
        rendered = self.query_one("#serve-chat-text", Static).content
        return rendered.plain if isinstance(rendered, Text) else str(rendered)

    def connect(self, base_url: str | None, models: list[str], api_key: str | None) -> None:
        """Talk to the server at ``base_url`` (None: no server runs) as one of ``models``."""
        self.base_url = base_url
        self.api_key = api_key
        select = self.query_one("#serve-chat-model", Select)
        select.set_options([(display_name(m), m) for m in models])
        if models:
            select.value = models[0]

    @property
    def model(self) -> str | None:
        value = self.query_one("#serve-chat-model", Select).value
        return value if isinstance(value, str) else None

    def action_new_chat(self) -> None:
        if self.replying:
            self.notify("The model is still replying: wait for it to finish", severity="warning")
            return
        self.turns.clear()
        self._show()

    @on(Input.Submitted, "#serve-chat-input")
    def _on_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if not text:
            return
        if self.base_url is None or self.model is None:
            self.notify("No server is running: start one first (ctrl+g)", severity="warning", markup=False)
            return
        if self.replying:
            self.notify("The model is still replying: wait for it to finish", severity="warning", markup=False)
            return
        event.input.value = ""
        self.turns.append(Turn("user", text))
        history: list[ChatMessage] = [{"role": t.role, "content": t.content} for t in self.turns if not t.error]
        self.turns.append(Turn("assistant", ""))
        self.replying = True
        self._show()
        # The chat's wait is fixed: a timeout names no profile setting, which would not change it.
        endpoint = Endpoint(base_url=self.base_url, model=self.model, api_key=self.api_key, timeout_s=CHAT_TIMEOUT_S,
                            max_retries=0, timeout_setting="")  # fmt: skip
        self._ask(endpoint, history)

    @work(thread=True, exclusive=True, group="serve-chat", exit_on_error=False)
    def _ask(self, endpoint: Endpoint, history: list[ChatMessage]) -> None:
        from engine.llm.client import ChatClient

        try:
            with ChatClient(endpoint) as client:
                reply = client.chat(history, stream=True, on_delta=self._post_piece)
        except RouteshellError as exc:
            self.post_message(self.Replied(error=str(exc)))
        except Exception as exc:
            # A bug costs this reply, never the app.
            self.post_message(self.Replied(error=error_text(exc, unexpected=True)))
        else:
            self.post_message(self.Replied(finish_reason=reply.finish_reason))

    def _post_piece(self, piece: str) -> None:
        self.post_message(self.Piece(piece))

    @on(Piece)
    def _on_piece(self, message: Piece) -> None:
        self.pieces += 1
        if self.turns and self.turns[-1].role == "assistant":
            self.turns[-1].content += message.text
            self._show()

    @on(Replied)
    def _on_replied(self, message: Replied) -> None:
        self.replying = False
        if message.error is not None and self.turns:
            last = self.turns[-1]
            last.error = True
            last.content = (last.content + "\n" if last.content else "") + f"(no reply: {message.error})"
        elif message.finish_reason == "length" and self.turns:
            self.turns[-1].content += "\n(cut off: the reply reached its length limit)"
        self._show()

    def _show(self) -> None:
        text = Text()
        if not self.turns:
            text.append(CHAT_HINT, style="dim")
        for index, turn in enumerate(self.turns):
            if index:
                text.append("\n")
            who = "you" if turn.role == "user" else (self.model or "model")
            text.append(f"{display_name(who)}: ", style="bold" if turn.role == "user" else "bold green")
            shown = display_text(turn.content)
            if turn.role == "assistant" and not shown and self.replying and index == len(self.turns) - 1:
                text.append("…", style="dim")
            text.append(shown, style="red" if turn.error else "")
        self.query_one("#serve-chat-text", Static).update(text)
        self.query_one("#serve-chat-scroll", VerticalScroll).scroll_end(animate=False)
