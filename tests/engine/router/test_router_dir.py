"""Replacing a trained directory (a router, a planner adapter) survives a kill at any point."""

from __future__ import annotations

from pathlib import Path

from engine.router.router_dir import replace_dir, restore_replaced, staging_dir


def _made(path: Path, text: str) -> Path:
    path.mkdir()
    (path / "planner_meta.json").write_text(text)
    return path


def test_a_directory_killed_between_the_two_renames_is_put_back_by_the_next_run(tmp_path: Path) -> None:
    out = tmp_path / "planner"
    # What a kill between moving the old directory aside and moving the new one in leaves.
    _made(tmp_path / ".planner.old", "old")
    _made(tmp_path / ".planner.partial", "new, maybe half")

    staging = staging_dir(out, meta_file="planner_meta.json", what="a planner adapter")

    assert (out / "planner_meta.json").read_text() == "old"
    assert not (tmp_path / ".planner.old").exists()
    assert staging == tmp_path / ".planner.partial"
    assert list(staging.iterdir()) == []  # the unfinished one is not trusted


def test_restore_leaves_a_finished_replacement_alone(tmp_path: Path) -> None:
    out = _made(tmp_path / "planner", "new")
    _made(tmp_path / ".planner.old", "old")  # killed after the second rename, before the clean-up
    assert restore_replaced(out) is False
    assert (out / "planner_meta.json").read_text() == "new"

    replace_dir(_made(tmp_path / ".planner.partial", "newer"), out)
    assert (out / "planner_meta.json").read_text() == "newer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["planner"]


def test_restore_never_follows_a_link(tmp_path: Path) -> None:
    elsewhere = _made(tmp_path / "elsewhere", "not ours")
    (tmp_path / ".planner.old").symlink_to(elsewhere)
    assert restore_replaced(tmp_path / "planner") is False
    assert not (tmp_path / "planner").exists()
    assert (elsewhere / "planner_meta.json").read_text() == "not ours"
