"""What undo says it will do names each path escaped once, as the screen shows names."""

from __future__ import annotations

import os
from typing import Any

import pytest

from engine.names import display_line
from engine.plans.undo import describe_undo

BYTE = os.fsdecode(b"bad\xff.txt")  # a name that is not UTF-8: "bad\udcff.txt"


MOVED = {"op": "move", "from": BYTE, "to": "sub/bad\udcff (1).txt"}
MADE = {"op": "mkdir", "created": ["d\udce9", "d\udce9/e"]}
TAGGED = {"op": "tag", "path": "it's.md", "how": "front-matter"}


@pytest.mark.parametrize(
    ("record", "said"),
    [
        (MOVED, "move 'sub/bad\\xff (1).txt' back to 'bad\\xff.txt'"),
        ({"op": "delete", "path": "sub/esc\x1b[31mred.txt"}, "put 'sub/esc\\x1b[31mred.txt' back from the trash"),
        ({"op": "write", "path": "new\nline", "existed": False}, "move 'new\\nline', which it created, to the trash"),
        ({"op": "copy", "from": "a", "to": "back\\slash"}, "move the copy 'back\\\\slash' to the trash"),
        (MADE, "remove the directories it made, if empty: 'd\\xe9', 'd\\xe9/e'"),
        (TAGGED, "restore the previous content of 'it's.md' (its front matter tags)"),
    ],
)
def test_each_name_is_escaped_once(record: dict[str, Any], said: str) -> None:
    assert describe_undo(record) == said
    assert display_line(said) == said  # shown as it is: nothing is escaped a second time
