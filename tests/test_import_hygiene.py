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


@pytest.fixture(scope="module")
def third_party_baseline() -> set[str]:
    """What the core's third-party libraries load by themselves.

    httpx's package init loads its command-line tool when rich is installed, and langgraph
    imports httpx, so ``rich`` can arrive with them; the core itself must add no UI module.
    """
    return loaded_after("import httpx, langgraph.graph, langgraph.types, langgraph.checkpoint.sqlite")


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_never_imports_the_ui(module: str, third_party_baseline: set[str]) -> None:
    loaded = loaded_after(f"import {module}")
    assert not (loaded - third_party_baseline) & set(UI)
    assert not loaded & {"textual", "prompt_toolkit", "tui"}


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
