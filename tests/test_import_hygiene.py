"""The core stays free of the UI, and start-up stays free of heavy libraries.

Each check imports modules in a fresh interpreter and inspects ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

UI = ("textual", "rich", "prompt_toolkit", "tui")
HEAVY = ("torch", "transformers", "peft", "datasets", "langgraph", "accelerate", "bitsandbytes", "sentencepiece")


def loaded_after(code: str) -> set[str]:
    """Run ``code`` in a fresh interpreter; return the top-level names of the modules it loaded."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


ROOT = Path(__file__).resolve().parents[1]


def core_modules() -> list[str]:
    """Every module of the pure core (engine and agents), found on disk so that none is forgotten."""
    return sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for package in ("engine", "agents")
        for path in (ROOT / package).rglob("*.py")
    )


CORE_MODULES = core_modules()


def test_core_modules_are_found() -> None:
    assert {"engine", "agents", "engine.plans.apply", "engine.workspace.sandbox", "agents.graph"} <= set(CORE_MODULES)


#: The core's third-party libraries. httpx's package init loads its command-line tool when rich is
#: installed, and langgraph imports httpx, so ``rich`` can arrive with them; the core itself must
#: add no UI module.
THIRD_PARTY = "import httpx, langgraph.graph, langgraph.types, langgraph.checkpoint.sqlite"
#: The heavy libraries some core packages import: loaded once before the children are forked, so
#: that each child does not pay for them again. They load no UI module of their own (checked below).
HEAVY_PRELOAD = "import torch, transformers, peft, datasets, accelerate, sentencepiece"

#: Imports the third-party libraries once, then each core module in a child forked from that
#: interpreter: the child starts with none of routeshell loaded, as a fresh interpreter would, without
#: paying for langgraph's and torch's imports again (one interpreter per module took a minute of a
#: worker). Prints the libraries' own top-level names (``""``), what the heavy ones add (``heavy``),
#: and per module the top-level names loaded once it is imported, or its import error.
FORKED_PROBE = """
import json, os, sys, traceback
THIRD_PARTY
baseline = {m.split(".")[0] for m in sys.modules}
print(json.dumps({"": sorted(baseline)}), flush=True)
HEAVY_PRELOAD
print(json.dumps({"heavy": sorted({m.split(".")[0] for m in sys.modules} - baseline)}), flush=True)
for module in sys.argv[1:]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            __import__(module)
            found = {"loaded": sorted({m.split(".")[0] for m in sys.modules})}
        except BaseException:
            found = {"error": traceback.format_exc()}
        with os.fdopen(write, "w") as out:
            out.write(json.dumps(found))
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as answer:
        text = answer.read()
    os.waitpid(pid, 0)
    print(json.dumps({module: json.loads(text) if text else {"error": "the child died"}}), flush=True)
""".replace("THIRD_PARTY", THIRD_PARTY).replace("HEAVY_PRELOAD", HEAVY_PRELOAD)


@pytest.fixture(scope="module")
def core_imports() -> dict[str, dict[str, list[str] | str]]:
    """What importing each core module loads, from :data:`FORKED_PROBE`; ``""`` holds the libraries' own."""
    result = subprocess.run(
        [sys.executable, "-c", FORKED_PROBE, *CORE_MODULES], capture_output=True, text=True, check=True, timeout=300
    )
    found: dict[str, dict[str, list[str] | str]] = {}
    for line in result.stdout.splitlines():
        ((name, what),) = json.loads(line).items()
        found[name] = {"loaded": what} if name in ("", "heavy") else what
    return found


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_never_imports_the_ui(module: str, core_imports: dict[str, dict[str, list[str] | str]]) -> None:
    found = core_imports[module]
    assert "error" not in found, found.get("error")
    loaded = set(found["loaded"])
    assert not (loaded - set(core_imports[""]["loaded"])) & set(UI)
    assert not loaded & {"textual", "prompt_toolkit", "tui"}


def test_the_libraries_alone_load_no_ui_framework(core_imports: dict[str, dict[str, list[str] | str]]) -> None:
    """The forked probe's starting point hides nothing: the heavy libraries it loads first add no UI
    module, and the libraries alone load what they load in a fresh interpreter."""
    assert not set(core_imports["heavy"]["loaded"]) & set(UI)
    assert not set(core_imports[""]["loaded"]) & {"textual", "prompt_toolkit", "tui"}
    assert set(core_imports[""]["loaded"]) == loaded_after(THIRD_PARTY)


def test_profile_loading_never_imports_the_ui() -> None:
    code = "from engine.config.profiles import load_profile, masked\nmasked(load_profile('openai'))"
    assert not loaded_after(code) & set(UI)


@pytest.mark.parametrize(
    "module",
    [
        "tui.cli",
        "tui.app",
        "tui.run_cli",
        "agents.session",
        "tui.train_cli",
        "engine.tinyllm.train",
        "tui.serve_cli",
        "tui.generate_cli",
        "engine.serve.protocol",
        "engine.serve.app",
        "engine.router.registry",
        "engine.router.evaluate",
        "engine.router.teacher",
        "engine.router.router_dir",
        "agents.oracle",
        "tui.router_cli",
        "tui.router_eval_cli",
        "tui.route_cli",
    ],
)
def test_entry_points_do_not_import_heavy_libraries(module: str) -> None:
    assert not loaded_after(f"import {module}") & set(HEAVY)


def test_help_and_version_import_neither_ui_nor_heavy_libraries() -> None:
    for flag in ("--help", "--version"):
        code = (
            "import contextlib, io\n"
            "from tui.cli import main\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            f"    main(['{flag}'])"
        )
        loaded = loaded_after(code)
        assert not loaded & {*HEAVY, "fastapi", "uvicorn", "starlette", "sse_starlette"}, flag
        assert "textual" not in loaded, flag


def command_loads(*argv: str) -> tuple[int, str, set[str]]:
    """Run ``routeshell ARGV`` through :func:`tui.cli.main` in a fresh interpreter; return its exit code,
    its standard error and the top-level names of the modules it loaded by the time it returned."""
    probe = (
        "import json, sys\nfrom tui.cli import main\ncode = main(sys.argv[1:])\n"
        "print(json.dumps([code, sorted({m.split('.')[0] for m in sys.modules})]))"
    )
    result = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, timeout=120, check=False)  # fmt: skip
    assert result.stdout, result.stderr
    code, loaded = json.loads(result.stdout.strip().splitlines()[-1])
    return code, result.stderr, set(loaded)


@pytest.mark.parametrize("output", [[], ["--json"]], ids=["transcript", "json"])
@pytest.mark.parametrize("refused", ["no-api-key", "no-model-to-serve"])
def test_a_run_refused_before_its_agents_start_does_not_import_langgraph(
    refused: str, output: list[str], isolated_home: Path, tmp_path: Path
) -> None:
    """LangGraph is most of a run's start-up: a run that cannot start says so without loading it."""
    from tests.engine.serve.test_launcher import free_port, write_local

    (tmp_path / "ws").mkdir()
    if refused == "no-model-to-serve":
        write_local(isolated_home, free_port())
        argv, expected, said = ["run", *output, "--workspace", str(tmp_path / "ws"), "add a README"], 3, "no model"
    else:
        argv = ["--profile", "openai", "run", *output, "--workspace", str(tmp_path / "ws"), "add a README"]
        expected, said = 2, "OPENAI_API_KEY/LLM_API_KEY is not set"
    code, stderr, loaded = command_loads(*argv)
    assert code == expected, stderr
    assert said in stderr
    assert "langgraph" not in loaded


def test_a_run_that_reaches_its_agents_imports_langgraph(isolated_home: Path, tmp_path: Path) -> None:
    """The check above can see LangGraph: a run whose agents start (and find no endpoint) loads it."""
    from tests.engine.serve.test_launcher import free_port

    (tmp_path / "ws").mkdir()
    unreachable = f"http://127.0.0.1:{free_port()}/v1"
    argv = ["--profile", "ci", "run", "--base-url", unreachable, "--workspace", str(tmp_path / "ws"), "add a README"]
    code, stderr, loaded = command_loads(*argv)
    assert code == 3, stderr
    assert "unreachable" in stderr
    assert "langgraph" in loaded


def test_a_run_imports_langgraph_while_the_local_server_starts(isolated_home: Path, tmp_path: Path) -> None:
    """The import overlaps the server's start: it is done by the time a server that dies at once is
    reported, though no agent started."""
    from tests.engine.serve.test_launcher import free_port, write_local

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("not json")
    (broken / "model.safetensors").write_bytes(b"junk")
    write_local(isolated_home, free_port(), f'model = "{broken}"\nstart_timeout_s = 300')
    (tmp_path / "ws").mkdir()
    code, stderr, loaded = command_loads("run", "--json", "--workspace", str(tmp_path / "ws"), "add a README")
    assert code == 3, stderr
    assert "the local model server exited with code 2" in stderr
    assert "langgraph" in loaded
