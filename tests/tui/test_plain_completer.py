"""Tab completion of workspace paths in --plain goes through the workspace resolver."""

from __future__ import annotations

from pathlib import Path

from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from tui.plain import PlainCompleter


def completions(root: Path, text: str) -> list[str]:
    return [c.text for c in PlainCompleter(root).get_completions(Document(text), CompleteEvent())]


def test_paths_complete_inside_the_workspace(workspace: Path) -> None:
    assert completions(workspace, "edit src/") == ["pkg/"]
    assert completions(workspace, "edit src/pkg/he") == ["hello.py"]
    assert "docs/" in completions(workspace, "edit ")


def test_a_symlink_leading_out_is_never_listed_through(workspace: Path, tmp_path: Path) -> None:
    sibling = tmp_path / "ws-evil"  # same prefix as the workspace: a string check would let it in
    sibling.mkdir()
    (sibling / "secret.txt").write_text("secret\n")
    (workspace / "evil").symlink_to("../ws-evil")
    assert completions(workspace, "cat evil/") == []
    assert completions(workspace, "cat outside-link/") == []
    assert completions(workspace, "cat ../") == []
    # The link itself is a name in the workspace, but not a directory to complete into.
    assert completions(workspace, "cat ev") == ["evil"]
