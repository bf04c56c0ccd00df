"""A router directory's files are read with a bound: a link to ``/dev/zero``, a FIFO or a huge file
where ``router.json``, ``tfidf.json``, ``knn.json`` or ``router_lora_meta.json`` should be is one
line of error, never a MemoryError, a hang or a traceback."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.router.baselines import MAX_TFIDF_BYTES
from engine.router.router_dir import MAX_META_BYTES, RouterDirError, load_model
from tests.helpers import assert_one_line_error, endless, fifo, run_routeshell, sparse

SHIPPED = Path(__file__).resolve().parents[3] / "engine" / "router" / "default"


def _huge(limit: int) -> Callable[[Path], None]:
    def plant(path: Path) -> None:
        sparse(path, limit + 1)  # one byte past the limit

    return plant


NOT_REGULAR = [pytest.param(endless, "not a regular file", id="dev-zero"),
               pytest.param(fifo, "not a regular file", id="fifo")]  # fmt: skip


def _router(tmp_path: Path, kind: str) -> Path:
    """A router directory of ``kind``: the shipped TF-IDF one, or its router.json relabelled."""
    directory = tmp_path / f"router-{kind}"
    directory.mkdir()
    shutil.copy(SHIPPED / "router.json", directory / "router.json")
    if kind == "tfidf":
        shutil.copy(SHIPPED / "tfidf.json", directory / "tfidf.json")
    else:
        meta = json.loads((directory / "router.json").read_text(encoding="utf-8"))
        (directory / "router.json").write_text(json.dumps({**meta, "kind": kind}), encoding="utf-8")
    if kind == "knn":
        import torch
        from safetensors.torch import save_file

        save_file({"vectors": torch.zeros(2, 384).half(), "labels": torch.zeros(2, dtype=torch.long)},
                  str(directory / "knn.safetensors"))  # fmt: skip
    return directory


def test_the_shipped_router_is_well_inside_the_limits() -> None:
    assert (SHIPPED / "router.json").stat().st_size * 100 < MAX_META_BYTES
    assert (SHIPPED / "tfidf.json").stat().st_size * 10 < MAX_TFIDF_BYTES


@pytest.mark.parametrize(("plant", "why"), [*NOT_REGULAR, pytest.param(_huge(MAX_META_BYTES), "longer than 1 MiB",
                                                                       id="huge")])  # fmt: skip
def test_router_json(tmp_path: Path, plant: Callable[[Path], None], why: str) -> None:
    directory = _router(tmp_path, "tfidf")
    plant(directory / "router.json")
    result = run_routeshell("route", "move the pdfs into finance", "--router", str(directory))
    assert_one_line_error(result, 2, f"cannot read {directory}/router.json: {why}")
    assert "MemoryError" not in result.stderr


@pytest.mark.parametrize(("plant", "why"), [*NOT_REGULAR, pytest.param(_huge(MAX_TFIDF_BYTES), "longer than 64 MiB",
                                                                       id="huge")])  # fmt: skip
def test_tfidf_json(tmp_path: Path, plant: Callable[[Path], None], why: str) -> None:
    directory = _router(tmp_path, "tfidf")
    plant(directory / "tfidf.json")
    result = run_routeshell("route", "move the pdfs into finance", "--router", str(directory))
    assert_one_line_error(result, 2, f"cannot load the tfidf router in {directory}: tfidf.json: {why}")
    assert "MemoryError" not in result.stderr


@pytest.mark.parametrize(("plant", "why"), NOT_REGULAR)
def test_knn_json(tmp_path: Path, plant: Callable[[Path], None], why: str) -> None:
    directory = _router(tmp_path, "knn")
    plant(directory / "knn.json")
    with pytest.raises(RouterDirError, match=f"cannot load the knn router in .*: knn.json: {why}$"):
        load_model(directory)
    if plant is endless:
        result = run_routeshell("route", "move the pdfs into finance", "--router", str(directory))
        assert_one_line_error(result, 2, f"cannot load the knn router in {directory}: knn.json: {why}")


@pytest.mark.parametrize(("plant", "why"), NOT_REGULAR)
def test_router_lora_meta_json(tmp_path: Path, plant: Callable[[Path], None], why: str) -> None:
    from engine.errors import UsageError
    from engine.router.lora import merge_adapter

    directory = _router(tmp_path, "lora")
    plant(directory / "router_lora_meta.json")
    with pytest.raises(RouterDirError, match=f"cannot load the lora router in .*: router_lora_meta.json: {why}$"):
        load_model(directory)
    # export --merge reads the same file for the base it records.
    # (An adapter's own files are looked at first: they are there, so the record is what is read.)
    (directory / "adapter_config.json").write_text("{}", encoding="utf-8")
    (directory / "adapter_model.safetensors").write_bytes(b"")
    with pytest.raises(UsageError, match="does not record its base; give --base DIR"):
        merge_adapter(None, directory, tmp_path / "staging")
    if plant is endless:
        result = run_routeshell("route", "move the pdfs into finance", "--router", str(directory))
        assert_one_line_error(result, 2, f"cannot load the lora router in {directory}: router_lora_meta.json: {why}")
        out = tmp_path / "merged"
        result = run_routeshell("export", "--merge", "--adapter", str(directory), "--out", str(out))
        assert_one_line_error(result, 2, "does not record its base; give --base DIR")
        assert not out.exists()


def test_deeply_nested_router_json_is_one_line_or_the_heuristic_router(tmp_path: Path, isolated_home: Path) -> None:
    # Under the size cap, but each level of nesting is a frame of json's parser: a RecursionError.
    directory = _router(tmp_path, "tfidf")
    (directory / "router.json").write_text("[" * 400_000 + "]" * 400_000, encoding="utf-8")
    why = f"cannot read {directory}/router.json: JSON nested too deeply"
    assert_one_line_error(run_routeshell("route", "--router", str(directory), "move a.txt to b"), 2, why)
    data = tmp_path / "files.jsonl"
    labels = run_routeshell("train", "labels", "--source", "files", "--count", "8", "--labeler", "gold",
                            "--out", str(data))  # fmt: skip
    assert labels.returncode == 0, labels.stderr
    assert_one_line_error(run_routeshell("eval", "router", "--data", str(data), "--router", str(directory)), 2, why)
    profiles = isolated_home / ".config" / "routeshell" / "profiles"
    profiles.mkdir(parents=True)
    (profiles / "deep.toml").write_text(f'extends = "local"\n[router]\nkind = "model"\nmodel_dir = "{directory}"\n')
    result = run_routeshell("--profile", "deep", "route", "move a.txt to b")
    assert result.returncode == 0, result.stderr
    assert why in result.stderr
    assert "using the heuristic router" in result.stderr
    assert "Traceback" not in result.stderr
