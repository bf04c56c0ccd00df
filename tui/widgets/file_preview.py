"""The preview and metadata views of the Files pane."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from rich.style import Style
from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from engine.names import display_line, display_name, display_text
from engine.workspace.listing import Metadata, Preview

SYNTAX_THEME = "monokai"
TAB_SIZE = 4


def highlight(path: Path, preview: Preview) -> Text:
    """Return the preview as highlighted text. Slow for big files: call it from a worker.

    The file's text is shown literally: control characters and terminal escapes in it are
    escaped (:func:`engine.names.display_text`) before it is highlighted, and markup in it is
    never parsed.
    """
    if not preview.text:
        return Text(preview.note, style="italic")
    shown = display_text(preview.text, tab_size=TAB_SIZE)
    lexer = Syntax.guess_lexer(str(path), shown)
    syntax = Syntax(shown, lexer, theme=SYNTAX_THEME, background_color="default", tab_size=TAB_SIZE)
    text = _without_backgrounds(syntax.highlight(shown))
    text.rstrip()
    if preview.note:
        text.append(f"\n\n── {preview.note} ──", style="italic dim")
    return text


def _without_backgrounds(text: Text) -> Text:
    # The theme paints its own background behind each token; let the pane's show through.
    plain = Text(text.plain, end="")
    for span in text.spans:
        style = span.style if isinstance(span.style, Style) else Style.parse(span.style)
        plain.stylize(Style(color=style.color, bold=style.bold, italic=style.italic), span.start, span.end)
    return plain


class FilePreview(VerticalScroll):
    """A scrollable view of already-highlighted text."""

    def compose(self) -> ComposeResult:
        yield Static(id="preview-body", markup=False)

    def show(self, text: Text | str) -> None:
        """Show ``text`` from the top: a ``Text`` as it is (see :func:`highlight`), a plain ``str``
        literally (never parsed as markup, control characters escaped)."""
        self.query_one("#preview-body", Static).update(Text(display_text(text)) if isinstance(text, str) else text)
        self.scroll_home(animate=False)


@dataclass(frozen=True)
class Described:
    """An entry's metadata, ready to show."""

    name: str
    meta: Metadata | None
    error: str | None = None
    tags: tuple[str, ...] = ()


def human_size(size: int) -> str:
    """Format a byte count with binary units: ``1.5 KiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


class MetadataView(Static):
    """Name, type, size, mode, modification time, link target and tags of the highlighted entry."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)

    def describe(self, described: Described | None) -> None:
        """Show ``described``, or clear the view when None."""
        if described is None:
            self.update("")
            return
        text = Text()
        rows: list[tuple[str, str]] = [("name", display_name(described.name))]
        if described.error is not None:
            rows.append(("error", display_line(described.error)))
        elif described.meta is not None:
            meta = described.meta
            rows.append(("type", meta.kind))
            # A directory's st_size depends on the filesystem, not on its contents: not shown.
            if meta.kind != "directory":
                rows.append(("size", f"{human_size(meta.size)} ({meta.size:,} bytes)"))
            rows += [
                ("mode", f"{meta.mode} ({meta.permissions:04o})"),
                ("modified", time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(meta.mtime))),
            ]
            if meta.link_target is not None:
                rows.append(("target", display_name(meta.link_target)))
            if described.tags:
                rows.append(("tags", ", ".join(display_name(tag) for tag in described.tags)))
        for index, (key, value) in enumerate(rows):
            if index:
                text.append("\n")
            text.append(f"{key:>9} ", style="bold")
            text.append(value)
        self.update(text)
