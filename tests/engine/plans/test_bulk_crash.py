"""kill -9 in the middle of a bulk move, rename or classify: recovery returns the tree as it was.

The apply runs in a child process and is killed once a chosen number of renames have happened
(counted by what left the source directories), so the kill lands inside a batch of journaled steps:
some recorded moves done, some not yet.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.plans.apply import recover
from engine.plans.audit import read_audit
from engine.plans.journal import journals
from tests.engine.plans.test_crash import wait_then_kill
from tests.helpers import tree

FILES = 600


def start(root: Path, step: dict[str, Any]) -> subprocess.Popen[bytes]:
    script = (
        "import json, sys\nfrom pathlib import Path\nfrom engine.plans.apply import apply_plan\n"
        "from engine.plans.model import parse_plan\n"
        "root = Path(sys.argv[1])\n"
        "plan = parse_plan(json.dumps({'version': 1, 'steps': [json.loads(sys.argv[2])]}))\n"
        "apply_plan(root, plan, policy=__import__('engine.plans.policy', fromlist=['Policy']).Policy(max_batch=5000))\n"
    )
    return subprocess.Popen([sys.executable, "-c", script, str(root), json.dumps(step)])


def make_tree(root: Path) -> None:
    for d in range(6):
        (root / f"d{d}").mkdir(parents=True)
    for i in range(FILES):
        topic = "invoice" if i % 3 == 0 else "notes"
        (root / f"d{i % 6}" / f"f{i:03}.txt").write_text(f"{topic} {i}\n")


def left_in_place(root: Path) -> int:
    return sum(1 for _ in root.glob("d*/f*.txt"))


STEPS = [
    {"op": "move", "match": {"glob": "**/*.txt"}, "to": "archive", "keep_tree": True},
    {"op": "rename", "match": {"glob": "**/*.txt"}, "template": "{parent}-{n:04}{ext}"},
    {"op": "classify", "match": {"glob": "**/*.txt"},
     "rules": [{"contains": "invoice", "to": "finance"}, {"default": True, "to": "misc"}]},
]  # fmt: skip


@pytest.mark.parametrize("seed", range(6))
def test_kill_during_a_bulk_apply_then_recover_restores_everything(tmp_path: Path, seed: int) -> None:
    root = tmp_path / "ws"
    make_tree(root)
    before = tree(root)
    rng = random.Random(seed)
    step = STEPS[seed % len(STEPS)]
    moved_at_kill = rng.randint(1, FILES - 50)
    child = start(root, step)
    killed = wait_then_kill(child, lambda: left_in_place(root) <= FILES - moved_at_kill)
    assert killed, "the apply finished before the kill point"
    assert [journal.state for journal in journals(root)] == ["applying"]
    assert len(recover(root)) == 1
    assert tree(root) == before
    assert [journal.state for journal in journals(root)] == ["rolled-back"]
    [record], _ = read_audit(root)
    assert (record.action, record.plan_id) == ("failed", journals(root)[0].id)
    assert "interrupted" in (record.reason or "")
