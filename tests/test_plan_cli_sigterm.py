"""``routeshell plan apply`` stopped by SIGTERM: the apply is rolled back, one line says so, exit code 143."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from tests.helpers import ROUTESHELL
from tests.test_plan_cli import PYTHON, json_lines, plan, plan_cmd, write_plan


def test_sigterm_rolls_back_an_apply_with_one_line_and_143(workspace: Path, tmp_path: Path) -> None:
    wait = "import pathlib, time; pathlib.Path('started').touch(); time.sleep(600)"
    document = plan({"op": "write", "path": "new.txt", "content": "made"}, {"op": "run", "argv": [PYTHON, "-c", wait]})
    argv = [ROUTESHELL, "plan", "apply", str(write_plan(tmp_path, "slow", document)), "--yes", "--json",
            "--workspace", str(workspace)]  # fmt: skip
    with subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as process:  # fmt: skip
        while not (workspace / "started").exists():  # the run step is under way: the write was made
            assert process.poll() is None, process.communicate()
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    assert err.splitlines()[-1] == "routeshell: terminated"
    assert json_lines(out)[-1] == {"type": "error", "exit_code": 143,
                                   "message": "terminated; whatever the plan had changed was rolled back"}  # fmt: skip
    assert not (workspace / "new.txt").exists()
    [row] = json_lines(plan_cmd("history", workspace, "--json").stdout)
    assert row["state"] == "rolled-back"
