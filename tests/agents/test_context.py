"""What a role sends to the model about the workspace: secrets, big and binary files stay home."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from agents.roles import workspace_context
from agents.session import AgentSession, SessionOptions, list_sessions
from engine.config.profiles import DEFAULT_NEVER_SEND, ContextPolicy, load_profile
from tests.helpers import run_routeshell
from tests.scripted_llm import Reply, ScriptedLLM

PLAN: dict[str, Any] = {"version": 1, "goal": "b", "steps": [{"op": "write", "path": "b.txt", "content": "b\n"}]}
SECRETS = {
    "id_rsa": "PRIVATE-KEY-MATERIAL-1",
    "keys/server.pem": "PRIVATE-KEY-MATERIAL-2",
    "deploy/app.key": "PRIVATE-KEY-MATERIAL-3",
    "id_ed25519/inner.txt": "PRIVATE-KEY-MATERIAL-4",
}


def run_once(root: Path, llm: ScriptedLLM, task: str, env: dict[str, str] | None = None) -> str:
    """Run ``task`` with the ``ci`` profile pointed at ``llm``; return every request body as sent."""
    env = {**os.environ, "LLM_API_BASE": llm.base_url, **(env or {})}
    llm.enqueue(Reply(PLAN))
    with AgentSession(root, load_profile("ci", env), SessionOptions(approval="all", env=env), lambda e: None) as s:
        final = s.start(task, thread="t").final
    assert final is not None
    assert final["ok"] is True
    return json.dumps(llm.requests, ensure_ascii=False)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    workspace = tmp_path / "ws"
    for path, text in SECRETS.items():
        (workspace / path).parent.mkdir(parents=True, exist_ok=True)
        (workspace / path).write_text(text)
    (workspace / "notes.txt").write_text("ORDINARY-NOTES\n")
    (workspace / "big.txt").write_text("BIG-FILE-TEXT " * 10_000)
    (workspace / "blob.dat").write_bytes(b"BINARY-TEXT\0\1\2")
    (workspace / "latin1.txt").write_bytes(b"LATIN1-TEXT caf\xe9\n")
    return workspace


def test_secret_big_and_binary_files_never_reach_the_model(scripted_llm: ScriptedLLM, root: Path) -> None:
    # The task names every file, which puts each at the head of the queue for the context.
    sent = run_once(root, scripted_llm, "look at " + " ".join([*SECRETS, "big.txt", "blob.dat", "latin1.txt"]))
    for text in [*SECRETS.values(), "BIG-FILE-TEXT", "BINARY-TEXT", "LATIN1-TEXT"]:
        assert text not in sent
    assert "ORDINARY-NOTES" in sent
    # They are still listed, with the reason, so a plan does not write over them unknowingly.
    assert "id_rsa  (contents withheld: the profile's context.never_send)" in sent
    assert "big.txt  (140000 bytes, over the context.max_file_bytes limit of 65536)" in sent
    assert "blob.dat  (binary, not shown)" in sent


def test_the_profile_sets_what_is_never_sent(scripted_llm: ScriptedLLM, root: Path, isolated_home: Path) -> None:
    profiles = isolated_home / ".config" / "routeshell" / "profiles"
    profiles.mkdir(parents=True)
    (profiles / "ci.toml").write_text('extends = "ci"\n[context]\nnever_send = ["notes.*"]\nmax_file_bytes = 1000\n')
    sent = run_once(root, scripted_llm, "look at notes.txt big.txt id_rsa")
    assert "ORDINARY-NOTES" not in sent
    assert "big.txt  (140000 bytes, over the context.max_file_bytes limit of 1000)" in sent
    # A profile's list replaces the default one.
    assert SECRETS["id_rsa"] in sent


def test_a_file_name_that_is_not_utf8_is_listed_escaped(scripted_llm: ScriptedLLM, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (Path(os.fsdecode(bytes(root))) / os.fsdecode(b"caf\xe9.txt")).write_text("CAFE-TEXT\n")
    sent = run_once(root, scripted_llm, "look at the files")
    assert "caf\\\\xe9.txt  (name shown escaped; contents not sent)" in sent
    assert "CAFE-TEXT" not in sent


@pytest.mark.parametrize(
    ("path", "withheld"),
    [
        (".env", True),
        ("config/.env", True),
        ("certs/site.pem", True),
        ("a/b/c.key", True),
        ("id_rsa", True),
        ("id_x/readme.md", True),
        ("src/key.py", False),
        ("env.txt", False),
        ("docs/pem.md", False),
        ("my_id_rsa", False),
    ],
)
def test_default_never_send_globs_match_any_component(path: str, withheld: bool) -> None:
    assert ContextPolicy().withholds(path) is withheld
    assert ContextPolicy().never_send == DEFAULT_NEVER_SEND


def test_a_glob_with_a_slash_matches_from_the_workspace_root() -> None:
    policy = ContextPolicy(never_send=("secrets/*.txt", "private/"))
    assert policy.withholds("secrets/a.txt")
    assert not policy.withholds("other/secrets/a.txt")
    assert not policy.withholds("a.txt")
    assert policy.withholds("private/deep/down.md")
    assert not policy.withholds("public/private.md")


def test_context_skips_withheld_text_within_the_budget(root: Path) -> None:
    text = workspace_context(root, "notes.txt", policy=ContextPolicy(never_send=(), max_file_bytes=100))
    assert SECRETS["id_rsa"] in text
    assert "BIG-FILE-TEXT" not in text
    assert "ORDINARY-NOTES" in text


def test_a_task_that_is_not_utf8_is_sent_and_saved_escaped(scripted_llm: ScriptedLLM, root: Path) -> None:
    sent = run_once(root, scripted_llm, "write caf\udce9.txt and \ud83d")
    assert "Task: write caf\\\\xe9.txt and \ufffd" in sent
    [row] = list_sessions(root)
    assert row["task"] == "write caf\\xe9.txt and \ufffd"


@pytest.mark.parametrize("json_mode", [True, False])
def test_run_on_a_workspace_with_a_name_that_is_not_utf8(scripted_llm: ScriptedLLM, tmp_path: Path,
                                                          json_mode: bool) -> None:  # fmt: skip
    root = tmp_path / "ws"
    root.mkdir()
    (root / os.fsdecode(b"caf\xe9.txt")).write_text("x\n")
    scripted_llm.enqueue(Reply(PLAN))
    result = run_routeshell("run", "--profile", "ci", "--base-url", scripted_llm.base_url, "--workspace", str(root),
                            "--approve", "all", "--topology", "single", *(["--json"] if json_mode else []),
                            "add b.txt")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert (root / "b.txt").read_text() == "b\n"
