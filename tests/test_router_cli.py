"""``routeshell train labels`` end to end: the files it writes and the errors it gives."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from engine.router.labels import read_samples
from engine.router.tasks import is_held_out
from tests.helpers import ROUTESHELL, assert_one_line_error, read_only_view, run_routeshell, small_disk


def test_labels_from_every_offline_source(tmp_path: Path) -> None:
    for source, labeler, count in (("humaneval", "heuristic", 164), ("icalfa", "gold", 300), ("files", "gold", 50)):
        out = tmp_path / f"{source}.jsonl"
        extra = ["--count", "50"] if source == "files" else []
        result = run_routeshell("train", "labels", "--source", source, "--labeler", labeler, "--out", str(out), *extra)
        assert result.returncode == 0, result.stderr
        samples, dropped = read_samples([out])
        assert len(samples) == count
        assert dropped == 0
        assert {s.sample_type for s in samples} == {f"{source}_{labeler}"}
        assert any(is_held_out(s.task.task_id) for s in samples)


def test_events_are_json_lines(tmp_path: Path) -> None:
    out = tmp_path / "l.jsonl"
    result = run_routeshell("train", "labels", "--source", "files", "--count", "5", "--labeler", "heuristic",
                            "--out", str(out), "--events")  # fmt: skip
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["type"] for e in events] == ["label_start", "label_task", "label_done"]
    assert events[-1]["samples"] == 5


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["--source", "humaneval", "--labeler", "gold"], 2, "carries no decision"),
        (["--labeler", "gold"], 2, "needs --source and --labeler"),
        (["--source", "icalfa", "--labeler", "gold", "--count", "3"], 2, "--count is for --source files"),
        (["--source", "missing.jsonl", "--labeler", "heuristic"], 2, "neither humaneval"),
        (["--source", "files", "--labeler", "judge"], 2, "invalid choice"),
        (["--source", "files", "--labeler", "oracle"], 2, "needs tasks with tests"),
        (["--source", "humaneval", "--labeler", "oracle", "--oracle-candidates", "loop:x"], 2, "unknown decision"),
        (["--source", "files", "--labeler", "gold", "--timeout", "5"], 2, "--timeout is for --labeler teacher"),
    ],
)
def test_bad_label_commands_are_one_line(tmp_path: Path, args: list[str], code: int, needle: str) -> None:
    result = run_routeshell("train", "labels", *args, "--out", str(tmp_path / "x.jsonl"))
    assert_one_line_error(result, code, needle)
    assert not (tmp_path / "x.jsonl").exists()


@pytest.mark.parametrize("bad", ["0", "-1", "nan", "inf", "1e999", "soon", ""])
def test_a_timeout_that_is_no_positive_number_of_seconds_is_one_line(tmp_path: Path, bad: str) -> None:
    result = run_routeshell("train", "labels", "--source", "files", "--labeler", "teacher", "--timeout", bad,
                            "--out", str(tmp_path / "x.jsonl"))  # fmt: skip
    assert_one_line_error(result, 2, "argument --timeout: expected a", f"number of seconds, got {bad!r}")
    assert not (tmp_path / "x.jsonl").exists()


def test_a_full_or_read_only_disk_is_one_line_and_leaves_no_file(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    with read_only_view(tmp_path / "src", tmp_path / "ro") as ro:
        result = run_routeshell("train", "labels", "--source", "files", "--labeler", "gold", "--out", str(ro / "x"))
    _fails_with(result, "cannot write", "Read-only file system")
    with small_disk(tmp_path / "full", "64k") as full:
        result = run_routeshell("train", "labels", "--source", "files", "--count", "1000", "--labeler", "gold",
                                "--out", str(full / "x.jsonl"))  # fmt: skip
        _fails_with(result, "cannot write", "No space left on device")
        assert list(full.iterdir()) == []


def _fails_with(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit code 1, no traceback, and the error as the last line, after the progress lines."""
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("routeshell: error: "), last
    assert all(needle in last for needle in needles), last


def test_train_router_route_and_eval_router_end_to_end(tmp_path: Path) -> None:
    data = tmp_path / "files.jsonl"
    assert run_routeshell("train", "labels", "--source", "files", "--count", "400", "--labeler", "gold",
                          "--out", str(data)).returncode == 0  # fmt: skip
    router = tmp_path / "router"
    result = run_routeshell("train", "router", "--kind", "tfidf", "--data", str(data), "--out", str(router))
    assert result.returncode == 0, result.stderr
    assert "held-out decision exact match" in result.stderr
    meta = json.loads((router / "router.json").read_text())
    assert meta["kind"] == "tfidf"
    assert meta["label_sources"] == {"files_gold": meta["train_tasks"]}
    assert meta["data"][0]["sha256"]
    assert meta["command"].startswith("routeshell train router --kind tfidf")

    result = run_routeshell("route", "--router", str(router), "--json", "the scheduler tests fail, fix them")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["decision"]["topology"] == "loop"
    assert len(answer["candidates"]) == 28
    assert abs(sum(c["probability"] for c in answer["candidates"]) - 1) < 1e-3

    result = run_routeshell("eval", "router", "--data", str(data), "--only", "heuristic,majority,tfidf",
                            "--router", str(router), "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [row["router"] for row in report["rows"]] == ["heuristic", "majority", "tfidf", str(router)]
    result = run_routeshell("eval", "router", "--data", str(data), "--only", "heuristic")
    assert result.returncode == 0, result.stderr
    assert "held-out split" in result.stdout
    assert "decision exact" in result.stdout


def test_route_uses_the_shipped_router_and_falls_back_with_a_note(tmp_path: Path, isolated_home: Path) -> None:
    result = run_routeshell("route", "--json", "add tests for parse_date")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["router"].startswith("model:")
    assert answer["note"] is None
    # - reads the task from standard input, as for run (it was routed as the text "-").
    piped = run_routeshell("route", "--json", "-", stdin_text="add tests for parse_date\n")
    assert piped.returncode == 0, piped.stderr
    assert json.loads(piped.stdout) == answer
    assert_one_line_error(run_routeshell("route", "-", stdin_text=""), 2, "the task is empty")
    profiles = isolated_home / ".config" / "routeshell" / "profiles"
    profiles.mkdir(parents=True)
    (profiles / "mine.toml").write_text(f'extends = "local"\ndescription = "mine"\n\n[router]\nkind = "model"\n'
                                        f'model_dir = "{tmp_path}/none"\n')  # fmt: skip
    result = run_routeshell("--profile", "mine", "route", "add tests for parse_date")
    assert result.returncode == 0
    assert "using the heuristic router" in result.stderr
    assert "topology:   loop" in result.stdout


def test_bad_routers_and_data_are_one_line(tmp_path: Path) -> None:
    assert_one_line_error(run_routeshell("route", "--router", str(tmp_path), "x"), 2, "not a router directory")
    data = tmp_path / "d.jsonl"
    data.write_text('{"messages": [{"role": "user", "content": "x"}]}\n')
    assert_one_line_error(run_routeshell("eval", "router", "--data", str(data)), 2, "d.jsonl:1")
    assert_one_line_error(run_routeshell("eval", "router", "--data", str(data), "--only", "oracle"), 2, "unknown")
    assert_one_line_error(run_routeshell("train", "router", "--out", str(tmp_path / "r")), 2, "needs --data")


def test_eval_router_reports_quality_against_cost_with_oracle_records(tmp_path: Path) -> None:
    data = tmp_path / "files.jsonl"
    assert run_routeshell("train", "labels", "--source", "files", "--count", "200", "--labeler", "gold",
                          "--out", str(data)).returncode == 0  # fmt: skip
    held = [s.task.task_id for s in read_samples([data])[0] if is_held_out(s.task.task_id)]
    records = tmp_path / "records.jsonl"
    with records.open("w") as handle:
        for n, task_id in enumerate(held):
            for candidate, passed, tokens in (("single:builder", n % 2 == 0, 100),
                                              ("loop:planner+builder+tester+refactor:3", True, 900)):  # fmt: skip
                row = {"key": f"{task_id}{candidate}", "task_id": task_id, "candidate": candidate, "passed": passed,
                       "tokens": tokens, "seconds": 1.0, "problem": None}  # fmt: skip
                handle.write(json.dumps(row) + "\n")
    result = run_routeshell("eval", "router", "--data", str(data), "--only", "always-single,always-pipeline,heuristic",
                            "--oracle", str(records), "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = {row["router"]: row for row in json.loads(result.stdout)["rows"]}
    assert rows["always-single"]["cost"]["mean_tokens"] == 100
    # A router with no signal sends every task past single at once: the diagonal, as in RouteLLM.
    assert rows["always-single"]["cost"]["apgr"] == 0.5
    assert rows["always-pipeline"]["cost"]["pass_rate"] == 1.0
    result = run_routeshell("eval", "router", "--data", str(data), "--only", "heuristic", "--oracle", str(records))
    assert "APGR" in result.stdout


def test_route_help_says_which_routers_fall_back() -> None:
    result = run_routeshell("route", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "A profile's router that cannot be loaded" in text
    assert "--router DIR that cannot be loaded is an error (exit code 2)" in text


def test_a_router_resumes_only_its_own_run_and_never_replaces_a_read_only_out(tmp_path: Path) -> None:
    data = tmp_path / "labels.jsonl"
    made = run_routeshell("train", "labels", "--source", "files", "--count", "40", "--labeler", "gold",
                          "--out", str(data))  # fmt: skip
    assert made.returncode == 0, made.stderr
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text("{}")
    partial = tmp_path / ".router.partial"
    partial.mkdir()
    (partial / "run.json").write_text(json.dumps({"stage": "planner", "--count": 64}))
    result = run_routeshell("train", "router", "--data", str(data), "--base", str(base), "--resume", "--events",
                            "--out", str(tmp_path / "router"))  # fmt: skip
    assert_one_line_error(result, 2, "holds a planner run, not a router one")
    assert json.loads((partial / "run.json").read_text()) == {"stage": "planner", "--count": 64}

    read_only = tmp_path / "read-only"
    read_only.mkdir()
    read_only.chmod(0o555)
    try:
        result = run_routeshell("train", "router", "--kind", "tfidf", "--data", str(data), "--events",
                                "--out", str(read_only))  # fmt: skip
        assert_one_line_error(result, 1, "is read-only")
        assert not any(read_only.iterdir())
        assert read_only.stat().st_mode & 0o777 == 0o555
    finally:
        read_only.chmod(0o755)


@pytest.mark.parametrize("stage", ["router", "planner"])
@pytest.mark.parametrize("out", [".", "..", "/", "sub/.."])
def test_an_out_that_is_the_current_directory_or_holds_it_is_one_line(tmp_path: Path, stage: str, out: str) -> None:
    """OUT is replaced as a whole when the run ends: the directory the command runs in (or one that
    holds it) is never renamed away, and nothing is made beside it."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "keep.txt").write_text("mine")
    data = ["--kind", "tfidf", "--data", str(tmp_path / "labels.jsonl")] if stage == "router" else []
    result = run_routeshell("train", stage, *data, "--out", out, cwd=tmp_path)
    assert_one_line_error(result, 2, f"--out {out} is the current directory or holds it", "--out router")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt", "sub"]


@pytest.mark.parametrize("task", ["", "  \t", b"\xff\xfe"], ids=["empty", "white-space", "not-utf8"])
def test_a_task_route_cannot_take_is_refused_as_run_refuses_it(task: str | bytes) -> None:
    # An empty task was routed (to the builder); one that is not UTF-8 too, its bytes as surrogates.
    said: dict[str, str] = {}
    for command in ("route", "run"):
        raw = subprocess.run([ROUTESHELL, command, task], capture_output=True, stdin=subprocess.DEVNULL, check=False)
        result = subprocess.CompletedProcess(raw.args, raw.returncode, raw.stdout.decode(), raw.stderr.decode())
        assert_one_line_error(result, 2, "the task is")
        assert result.stdout == ""
        said[command] = result.stderr.replace(f"routeshell {command} ", "routeshell COMMAND ")
    assert said["route"] == said["run"]
