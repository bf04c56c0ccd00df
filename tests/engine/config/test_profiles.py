from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.config import profiles
from engine.config.profiles import ProfileError, load_profile, masked
from engine.errors import UsageError

SHIPPED = ["ci", "files", "local", "ollama", "openai", "vllm"]


def user_profile(name: str, text: str) -> Path:
    directory = profiles.user_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_profile_is_valid(name: str) -> None:
    profile = load_profile(name)
    assert profile.source.origin == "shipped"
    endpoint = profile.endpoint("builder")
    assert endpoint.base_url.startswith("http")
    assert endpoint.model


def test_discover_lists_shipped_profiles_sorted() -> None:
    assert list(profiles.discover()) == SHIPPED


def test_openai_profile_reads_the_seed_environment_variables() -> None:
    env = {**os.environ, "LLM_API_BASE": "http://127.0.0.1:9/v1", "OPENAI_MODEL": "m1", "LLM_API_KEY": "k" * 20}
    endpoint = load_profile("openai", env).endpoint("planner")
    assert (endpoint.base_url, endpoint.model, endpoint.api_key) == ("http://127.0.0.1:9/v1", "m1", "k" * 20)
    env["OPENAI_API_KEY"] = "sk-openai-key-0001"
    assert load_profile("openai", env).endpoint("planner").api_key == "sk-openai-key-0001"


def test_unset_key_is_reported_not_invented() -> None:
    profile = load_profile("openai", {"HOME": os.environ["HOME"]})
    assert profile.endpoint("builder").api_key is None
    assert profile.unset == {"llm.default.api_key": "OPENAI_API_KEY/LLM_API_KEY"}
    assert masked(profile)["llm"]["default"]["api_key"] == "<unset: OPENAI_API_KEY/LLM_API_KEY>"


def test_secrets_are_masked() -> None:
    env = {**os.environ, "OPENAI_API_KEY": "sk-supersecretvalue-WXYZ"}
    shown = masked(load_profile("openai", env))
    assert shown["llm"]["default"]["api_key"] == "****WXYZ"
    assert "supersecret" not in repr(shown)
    assert profiles.mask_secret("short") == "****"
    assert profiles.mask_secret("") == "(none)"


def test_user_profile_overrides_shipped_one() -> None:
    path = user_profile(
        "local",
        'extends = "local"\ndescription = "mine"\nworkspace = "~/code"\n[sandbox]\nmemory_mb = 512\n',
    )
    profile = load_profile("local")
    assert profile.source.path == path
    assert profile.source.origin == "user"
    assert profile.data["description"] == "mine"
    assert profile.data["sandbox"]["memory_mb"] == 512
    assert profile.data["sandbox"]["cpu_s"] == 60  # inherited from the shipped local profile
    assert profile.workspace == Path(os.environ["HOME"]) / "code"


def test_role_endpoint_overrides_default() -> None:
    user_profile("split", 'extends = "local"\ndescription = "split"\n[llm.tester]\nmodel = "small"\n')
    profile = load_profile("split")
    assert profile.endpoint("tester").model == "small"
    assert profile.endpoint("tester").base_url == profile.endpoint("builder").base_url
    assert profile.endpoint("planner").model == "tinyllm-base"
    assert profile.endpoint("builder").model == "planner"
    assert profile.prompt_style("builder") == "planner"
    assert profile.prompt_style("tester") == "chat"


def test_the_local_planner_declines_plans_under_the_probability_the_evaluation_measures() -> None:
    from engine.planner.prompt import PLANNER_MIN_PROBABILITY

    assert load_profile("local").data["planner"]["min_probability"] == PLANNER_MIN_PROBABILITY
    assert load_profile("files").data["planner"]["min_probability"] == PLANNER_MIN_PROBABILITY


@pytest.mark.parametrize(
    ("body", "key", "reason"),
    [
        ('extends = "local"\n[sandbox]\nmemory_mb = "lots"\n', "sandbox.memory_mb", "must be of type integer"),
        ('extends = "local"\n[sandbox]\nmemory_mb = 1\n', "sandbox.memory_mb", "must be at least 64"),
        ('extends = "local"\napproval = "sometimes"\n', "approval", 'must be one of "ask", "auto", "never"'),
        ('extends = "local"\ncolour = "blue"\n', "colour", "unknown key"),
        ('extends = "local"\n[llm.default]\nmodle = "x"\n', "llm.default.modle", "unknown key"),
        ('extends = "local"\n[router]\nkind = "model"\nmodel_dir = ""\n', "router.model_dir", "at least 1"),
        ('extends = "local"\n[planner]\nmin_probability = 1.5\n', "planner.min_probability", "at most 1"),
        ('extends = "local"\n[planner]\nmin_probability = "20%"\n', "planner.min_probability", "type number"),
        ('extends = "local"\n[planner]\nmin_probability = nan\n', "planner.min_probability", "a finite number"),
        ('extends = "local"\n[llm.default]\ntimeout_s = inf\n', "llm.default.timeout_s", "a finite number"),
        ('description = "alone"\n', "workspace", "missing required key"),
        ('extends = "local"\nworkspace = "${HOME"\n', "workspace", "expected '}'"),
        ('extends = "local"\n[llm.default]\nbase_url = "not a url"\n', "llm.default.base_url", "not an http(s) URL"),
        ('extends = "local"\n[llm.planner]\nbase_url = "file:///etc/passwd"\n', "llm.planner.base_url", "http(s)"),
    ],
)
def test_bad_profile_names_file_and_key(body: str, key: str, reason: str) -> None:
    path = user_profile("broken", body)
    with pytest.raises(ProfileError) as info:
        load_profile("broken")
    message = str(info.value)
    assert message.startswith(f"{path}: key {key}: ")
    assert reason in message
    assert "\n" not in message
    assert info.value.exit_code == 2


def test_error_in_parent_blames_the_parent_file() -> None:
    parent = user_profile("base", 'extends = "local"\n[sandbox]\ncpu_s = -1\n')
    user_profile("child", 'extends = "base"\ndescription = "child"\n')
    with pytest.raises(ProfileError, match=rf"^{parent}: key sandbox.cpu_s: must be at least 1"):
        load_profile("child")


def test_invalid_toml() -> None:
    path = user_profile("broken", "description = \n")
    with pytest.raises(ProfileError, match=rf"^{path}: invalid TOML: .*line 1"):
        load_profile("broken")
    path = user_profile("huge", "description = 1" + "0" * 4300 + "\n")
    with pytest.raises(ProfileError, match=rf"^{path}: invalid TOML: a number of more than 4300 digits$"):
        load_profile("huge")
    path = user_profile("deep", "description = " + "[" * 100_000 + "\n")
    with pytest.raises(ProfileError, match=rf"^{path}: invalid TOML: nested too deeply$"):
        load_profile("deep")


def test_a_profile_that_is_endless_a_fifo_huge_or_not_utf8_is_one_line() -> None:
    import os

    directory = profiles.user_dir()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "endless.toml").symlink_to("/dev/zero")
    os.mkfifo(directory / "fifo.toml")
    with (directory / "huge.toml").open("wb") as handle:
        handle.truncate(20 << 30)  # sparse
    (directory / "latin1.toml").write_bytes(b'description = "caf\xe9"\n')
    for name, reason in (("endless", "cannot read: not a regular file"), ("fifo", "cannot read: not a regular file"),
                         ("huge", "cannot read: longer than 1 MiB"), ("latin1", "not UTF-8 text")):  # fmt: skip
        with pytest.raises(ProfileError, match=rf"^{directory / name}.toml: {reason}$"):
            load_profile(name)


def test_extends_cycle_and_unknown_parent() -> None:
    user_profile("a", 'extends = "b"\n')
    user_profile("b", 'extends = "a"\n')
    with pytest.raises(ProfileError, match="cycle"):
        load_profile("a")
    user_profile("orphan", 'extends = "nowhere"\n')
    with pytest.raises(ProfileError, match="no profile named 'nowhere'"):
        load_profile("orphan")


def test_unknown_profile_lists_known_ones() -> None:
    with pytest.raises(ProfileError, match=r"unknown profile 'nope' \(known profiles: ci, files, local, ollama"):
        load_profile("nope")


def test_resolve_workspace_asks_before_adopting_an_unusual_directory(tmp_path: Path) -> None:
    profile = load_profile("ci")
    home = tmp_path / "home"
    (home / "project").mkdir(parents=True)
    env = {"HOME": str(home)}
    asked: list[str] = []

    def answer(reply: bool) -> Callable[[str], bool]:
        def confirm(question: str) -> bool:
            asked.append(question)
            return reply

        return confirm

    assert profile.resolve_workspace(str(home / "project"), env=env, confirm=answer(False)) == home / "project"
    assert asked == []
    with pytest.raises(UsageError, match="choose another with --workspace"):
        profile.resolve_workspace(str(tmp_path), env=env, confirm=answer(False))
    assert asked == [f"use {tmp_path} (outside your home directory {home}) as a workspace? "
                     f"routeshell keeps its state in {tmp_path / '.routeshell'}"]  # fmt: skip
    assert profile.resolve_workspace(str(home), env=env, confirm=answer(True)) == home
    assert "(your home directory)" in asked[-1]
    assert profile.resolve_workspace("/", env=env, yes=True) == Path("/")
    with pytest.raises(UsageError, match="it is the root directory; if it is meant to be, pass --yes"):
        profile.resolve_workspace("/", env=env)
    with pytest.raises(UsageError, match="--workspace is empty"):
        profile.resolve_workspace("", env=env, yes=True)


def test_an_unset_variable_in_a_required_key_is_named() -> None:
    path = user_profile("mine", 'extends = "ci"\n[llm.default]\nbase_url = "${MY_LLM_URL}"\n')
    with pytest.raises(ProfileError) as caught:
        load_profile("mine", {"XDG_CONFIG_HOME": os.environ["XDG_CONFIG_HOME"]})
    message = str(caught.value)
    assert message.startswith(f"{path}: MY_LLM_URL is not set (used by key llm.default.base_url in profile mine)")
    assert "${MY_LLM_URL:-VALUE}" in message
    assert "missing required key" not in message
    env = {"XDG_CONFIG_HOME": os.environ["XDG_CONFIG_HOME"], "MY_LLM_URL": "http://127.0.0.1:9/v1"}
    assert load_profile("mine", env).endpoint("builder").base_url.endswith("/v1")


def test_the_state_directory_name_matches_the_workspace_layer() -> None:
    from engine.workspace.sandbox import STATE_DIR

    assert profiles.STATE_DIR == STATE_DIR
