"""The shapes of plan steps (validated and normalised) and of their journal records, one per op."""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

from engine.plans.files import Fingerprint


class MkdirStep(TypedDict):
    op: Literal["mkdir"]
    path: str


class WriteStep(TypedDict):
    op: Literal["write"]
    path: str
    content: str
    overwrite: bool
    if_sha256: NotRequired[str]  # replace only content with this digest (an edit of what was read)


class AppendStep(TypedDict):
    op: Literal["append"]
    path: str
    content: str


class PatchStep(TypedDict):
    op: Literal["patch"]
    path: str
    find: str
    replace: str
    count: int


MoveStep = TypedDict("MoveStep", {"op": Literal["move"], "from": str, "to": str})
CopyStep = TypedDict("CopyStep", {"op": Literal["copy"], "from": str, "to": str})


class DeleteStep(TypedDict):
    op: Literal["delete"]
    path: str


class RunStep(TypedDict):
    op: Literal["run"]
    argv: list[str]
    timeout_s: int
    check: bool


Step = MkdirStep | WriteStep | AppendStep | PatchStep | MoveStep | CopyStep | DeleteStep | RunStep
FileStep = WriteStep | AppendStep | PatchStep


class MkdirRecord(TypedDict):
    i: int
    op: str
    created: list[str]  # the directories it made, outermost first


class FileRecord(TypedDict):
    i: int
    op: str
    path: str
    existed: bool
    mode: int
    sha: str  # of the content the step leaves
    _new: NotRequired[bytes]  # carried from prepare to execute, never journaled


TransferRecord = TypedDict(
    "TransferRecord",
    # tree: what a copy made (journals written before it was recorded lack it); _remark: what the
    # preview adds to the step's summary (a copy's .git left out), never journaled.
    {"i": int, "op": str, "from": str, "to": str, "tree": NotRequired[Fingerprint], "_remark": NotRequired[str]},
)


class DeleteRecord(TypedDict):
    i: int
    op: str
    path: str


class RunRecord(TypedDict):
    i: int
    op: str
    argv: list[str]
