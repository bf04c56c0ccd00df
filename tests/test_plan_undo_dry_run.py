"""``routeshell plan undo --dry-run`` says what an undo would do without reading the files it acts on:
what it found of them would be checked only by an undo answering a question, which a dry run is not."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.plans.apply import apply_plan
from engine.plans.model import parse_plan

MIB = 1 << 20

#: Runs the command line in-process twice and writes to a file how many bytes the second run read
#: (``rchar`` of ``/proc/self/io``: every read and pread, from any file): the first imports what it
#: uses (1.5 MB of modules), so what the second reads is what the command itself reads.
_COUNTED = """
import sys
from tui.cli import main

def read_so_far():
    with open("/proc/self/io") as io:
        return next(int(line.split()[1]) for line in io if line.startswith("rchar:"))

def run():
    try:
        return main()
    except SystemExit as exit:
        return exit.code

out = sys.argv.pop(1)
run()
before = read_so_far()
code = run()
after = read_so_far()
with open(out, "w") as file:
    file.write(str(after - before))
sys.exit(code)
"""


def test_a_dry_run_of_an_undo_reads_none_of_the_files_it_would_move(tmp_path: Path) -> None:
    if not Path("/proc/self/io").exists():
        pytest.skip("no /proc/self/io to count what a process reads")
    ws = tmp_path / "ws"
    ws.mkdir()
    count = 24
    for i in range(count):  # sparse: reading them costs no disk, and counts as much
        with open(ws / f"{i:02}.bin", "wb") as file:
            file.truncate(MIB)
    steps = [{"op": "move", "from": f"{i:02}.bin", "to": f"{i:02}.old"} for i in range(count)]
    apply_plan(ws, parse_plan(json.dumps({"version": 1, "goal": "rename", "steps": steps})))
    counted = tmp_path / "read"
    argv = [sys.executable, "-c", _COUNTED, str(counted), "plan", "undo", "--dry-run", "--workspace", str(ws)]
    result = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "move '23.old' back to '23.bin'" in result.stdout
    # The journal (a few KiB), and nothing of the 24 MiB the files hold.
    assert int(counted.read_text()) < MIB // 4
