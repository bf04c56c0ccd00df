"""A small workspace of documents whose names and first lines say plainly what they are about."""

from __future__ import annotations

from pathlib import Path

#: Every regular file :func:`build_library` makes.
LIBRARY = {"finance/tax-return-2024.pdf", "photos/beach.jpg", "recipes/pancakes.md", "src/server.py", "notes.txt"}


def build_library(root: Path) -> Path:
    """Make the library under ``root`` and return ``root``."""
    for directory in ("finance", "photos", "recipes", "src"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    (root / "finance" / "tax-return-2024.pdf").write_bytes(b"%PDF-1.7\n\x00\x01\x02 binary body")
    (root / "photos" / "beach.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00")
    (root / "recipes" / "pancakes.md").write_text("# Pancakes\n\nFlour, eggs, milk and a pinch of salt.\n")
    (root / "src" / "server.py").write_text('"""An HTTP server that answers health checks."""\n')
    (root / "notes.txt").write_text("Remember to book the train to Lyon.\n")
    return root
