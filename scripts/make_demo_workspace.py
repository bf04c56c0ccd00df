"""Create the demo workspace that `make run` opens, unless it already exists.

An existing directory is left exactly as it is, so work done in the demo is never overwritten.
"""

from __future__ import annotations

import sys
from pathlib import Path

FILES = {
    "README.md": "# Demo workspace\n\nA small Python project to try routeshell on.\n\n"
    "Run its tests with `python -m pytest -q`.\n",
    "src/calc/__init__.py": '"""A tiny calculator."""\n\n'
    'from calc.ops import add, divide\n\n__all__ = ["add", "divide"]\n',
    "src/calc/ops.py": "def add(a: float, b: float) -> float:\n"
    '    """Return a + b."""\n    return a + b\n\n\n'
    "def divide(a: float, b: float) -> float:\n"
    '    """Return a / b; dividing by zero raises ZeroDivisionError."""\n    return a / b\n',
    "tests/test_ops.py": "from calc.ops import add, divide\n\n\n"
    "def test_add() -> None:\n    assert add(2, 3) == 5\n\n\n"
    "def test_divide() -> None:\n    assert divide(6, 3) == 2\n",
    "pyproject.toml": '[project]\nname = "calc"\nversion = "0.1.0"\n\n'
    '[tool.pytest.ini_options]\npythonpath = ["src"]\n',
    "notes/todo.md": "- [ ] add multiply\n- [ ] handle division by zero nicely\n",
    ".gitignore": "__pycache__/\n",
    # Papers and pictures to try the offline agent's file management on ("move the PDFs into docs").
    "downloads/invoice-2025-03.pdf": "%PDF-1.4 invoice March 2025\n",
    "downloads/invoice-2025-04.pdf": "%PDF-1.4 invoice April 2025\n",
    "downloads/bank-statement-2025-04.pdf": "%PDF-1.4 statement\n",
    "downloads/holiday-1.jpg": "JPEG holiday picture 1\n",
    "downloads/holiday-2.jpg": "JPEG holiday picture 2\n",
    "downloads/setup.tmp": "x\n",
    "notes/architecture.md": "# Architecture\n\nThe calculator is one module, ops.py.\n",
    "notes/meeting-notes.md": "# Meeting\n\n- discuss the architecture of the API\n",
    "logs/app.log": "INFO started\n",
}


def main(target: str) -> int:
    root = Path(target)
    if root.exists():
        print(f"demo workspace {root} exists; leaving it as it is")
        return 0
    for relative, content in FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    print(f"created demo workspace {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "demo-workspace"))
