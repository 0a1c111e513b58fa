"""A full or read-only output disk: one line per call, errors.jsonl never crashes the run, and a full disk stops the
run cleanly with what was and was not done; freeing space and rerunning finishes the rest without duplicates.

Needs root to mount a small tmpfs (CI runs as root); skips cleanly where mounting is not allowed.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from batch_helpers import fast_engine, load_mono, run_cli, write_wav

from callscribe.batch_store import ErrorLog
from callscribe.pipeline import CallError


@contextmanager
def tmpfs(path: Path, size: str, *, read_only: bool = False) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    except FileNotFoundError:
        pytest.skip("no mount command here")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _fill(folder: Path, leave: int) -> Path:
    """Take all the free space of ``folder``'s file system but ``leave`` bytes."""
    st = os.statvfs(folder)
    free = st.f_bavail * st.f_frsize
    filler = folder / "filler.bin"
    filler.write_bytes(b"\0" * max(0, free - leave))
    return filler


def test_a_full_disk_stops_the_run_cleanly_and_a_rerun_finishes(tmp_path: Path, evalset: Path) -> None:
    speech = load_mono(evalset / "audio" / "en_whisper_jfk.flac")
    calls = tmp_path / "calls"
    calls.mkdir()
    for i in range(6):
        write_wav(calls / f"call{i}.wav", np.roll(speech, i * 16000)[: 16000 * 4])
    with tmpfs(tmp_path / "disk", "512k") as disk:
        out = disk / "out"
        out.mkdir()
        filler = _fill(disk, leave=40 * 1024)
        first = run_cli("transcribe", calls, "-o", out, *fast_engine(), "--format", "json,txt,srt")
        assert "Traceback" not in first.stderr, first.stderr
        assert first.returncode == 1, first.stderr
        assert "stopped:" in first.stderr and "no space left" in first.stderr.lower(), first.stderr
        done_first = sorted(p.name for p in out.glob("call*.json"))
        assert 1 <= len(done_first) < 6, first.stderr
        assert "not tried" in first.stderr
        full = [line for line in first.stderr.splitlines() if "failed (disk-full)" in line]
        assert len(full) == 1 and "No space left on device" in full[0], first.stderr
        for name in done_first:  # what was written is whole
            json.loads((out / name).read_text())
        filler.unlink()
        second = run_cli("transcribe", calls, "-o", out, *fast_engine(), "--format", "json,txt,srt")
        assert second.returncode == 0, second.stderr
        assert f"{len(done_first)} already done" in second.stderr
        assert sorted(p.name for p in out.glob("*.json")) == [f"call{i}.json" for i in range(6)]
        assert not (out / "errors.jsonl").exists()
        assert not [p for p in os.listdir(out) if p.startswith(".") and p != ".callscribe.lock"]


def test_error_log_on_a_read_only_disk_never_raises(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "64k", read_only=True) as ro:
        log = ErrorLog(ro)
        log.record(CallError("x.wav", "decode", "x.wav: empty file (0 bytes)"))  # must not raise
        assert log.save_error is not None and "Read-only file system" in log.save_error
        assert log.entries["x.wav"]["reason"] == "x.wav: empty file (0 bytes)"


def test_a_read_only_output_folder_is_refused_before_any_work(tmp_path: Path, evalset: Path) -> None:
    with tmpfs(tmp_path / "ro", "64k", read_only=True) as ro:
        result = run_cli("transcribe", evalset / "audio" / "en_whisper_jfk.flac", "-o", ro, *fast_engine())
        assert result.returncode == 2 and "engine:" not in result.stderr
        assert (
            result.stderr.count("\n") == 1 and "output folder is not writable (Read-only file system)" in result.stderr
        )
