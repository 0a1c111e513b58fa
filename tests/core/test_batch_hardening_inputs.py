"""Hostile inputs to the batch runner: pipes, devices, sockets, clashing names, its own outputs, NaN samples.

Real speech (evalset-dev) through the real CLI in a subprocess where the case is about the process (a hang).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
from batch_helpers import fast_engine, load_mono, one_line_errors, run_cli, write_wav

from callscribe.batch import discover
from callscribe.model import Transcript


@pytest.fixture(scope="module")
def jfk(evalset: Path) -> Path:
    return evalset / "audio" / "en_whisper_jfk.flac"


@pytest.fixture(scope="module")
def speech(jfk: Path) -> np.ndarray:
    return load_mono(jfk)


def _socket_file(path: Path) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
    finally:
        sock.close()


def test_pipes_devices_and_sockets_fail_in_one_line_and_never_hang(tmp_path: Path, speech: np.ndarray) -> None:
    calls = tmp_path / "calls"
    calls.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write_wav(calls / "good.wav", speech[: 16000 * 4])
    write_wav(elsewhere / "real.wav", speech[16000 * 4 : 16000 * 8])
    os.mkfifo(calls / "x.wav")  # a named pipe nobody writes to: opening or reading it would block forever
    _socket_file(calls / "s.wav")
    (calls / "link.wav").symlink_to(elsewhere / "real.wav")  # a symlink to a regular file is fine
    (calls / "z.wav").symlink_to("/dev/urandom")  # one to a device is not
    (calls / "dangling.wav").symlink_to(tmp_path / "gone.wav")
    os.mkfifo(calls / "notes")  # a pipe without a recording's name is skipped without a read
    out = tmp_path / "out"
    result = run_cli("transcribe", calls, "/dev/zero", "-o", out, *fast_engine(), timeout=300)
    assert result.returncode == 1, result.stderr
    errors = {Path(e["path"]).name: e for e in map(json.loads, (out / "errors.jsonl").read_text().splitlines())}
    assert set(errors) == {"x.wav", "s.wav", "z.wav", "dangling.wav", "zero"}
    assert "named pipe" in errors["x.wav"]["reason"]
    assert "socket" in errors["s.wav"]["reason"]
    assert "character device" in errors["z.wav"]["reason"] and "character device" in errors["zero"]["reason"]
    assert "broken symbolic link" in errors["dangling.wav"]["reason"]
    for name, entry in errors.items():
        assert name in entry["reason"] and "\n" not in entry["reason"]
    reported = one_line_errors(result.stderr)
    for name in errors:  # each failure is reported once, not three times
        assert sum(name in line for line in reported) == 1, result.stderr
    assert "americans" in Transcript.from_json((out / "good.json").read_text()).text.lower()
    assert (out / "link.json").is_file()
    assert "5 failed" in result.stderr


def _small_folder(root: Path, speech: np.ndarray) -> dict[str, Path]:
    sub = root / "sub"
    sub.mkdir(parents=True)
    piece = speech[: 16000 * 3]
    files = {
        "x.wav": write_wav(root / "x.wav", piece),
        "x.2.wav": write_wav(root / "x.2.wav", speech[16000 * 3 : 16000 * 6]),
        "sub/y.wav": write_wav(sub / "y.wav", speech[16000 * 6 : 16000 * 9]),
        "sub__y.wav": write_wav(root / "sub__y.wav", speech[16000 * 2 : 16000 * 5]),
    }
    files["x.mp3"] = root / "x.mp3"  # any container; the name is what clashes
    shutil.copy(files["x.2.wav"], files["x.mp3"])
    return files


def test_output_names_never_clash_and_stay_the_same_across_runs(tmp_path: Path, speech: np.ndarray) -> None:
    files = _small_folder(tmp_path / "calls", speech)
    jobs, skipped = discover([tmp_path / "calls"])
    assert skipped == []
    stems = {j.path: j.stem for j in jobs}
    assert len(set(stems.values())) == 5 and all(j.error is None for j in jobs)
    assert stems[files["x.wav"]] == "x.wav" and stems[files["x.mp3"]] == "x.mp3" and stems[files["x.2.wav"]] == "x.2"
    assert stems[files["sub/y.wav"]] != stems[files["sub__y.wav"]]
    # Same inputs, same names, whatever the order they are given in.
    again, _ = discover(list(reversed(list(files.values()))))
    by_name, _ = discover(list(files.values()))
    assert {j.path: j.stem for j in again} == {j.path: j.stem for j in by_name}
    assert {j.stem for j in discover([tmp_path / "calls"])[0]} == set(stems.values())
    # A stem whose transcript would be another stem's QA file (a.qa.json) is also a clash.
    (tmp_path / "q").mkdir()
    write_wav(tmp_path / "q" / "a.wav", speech[:16000])
    write_wav(tmp_path / "q" / "a.qa.wav", speech[:16000])
    q_stems = {j.stem for j in discover([tmp_path / "q"])[0]}
    assert q_stems == {"a.wav", "a.qa.wav"}


def test_clashing_inputs_give_one_transcript_each_and_reruns_skip_them(tmp_path: Path, speech: np.ndarray) -> None:
    files = _small_folder(tmp_path / "calls", speech)
    out = tmp_path / "out"
    later = tmp_path / "later"
    later.mkdir()
    for name in ("x.mp3", "x.2.wav", "sub__y.wav"):  # first only x.wav and sub/y.wav are there
        files[name].rename(later / name)
    first = run_cli("transcribe", tmp_path / "calls", "-o", out, *fast_engine())
    assert first.returncode == 0, first.stderr
    assert sorted(p.name for p in out.glob("*.json")) == ["sub__y.json", "x.json"]
    for name in ("x.mp3", "x.2.wav", "sub__y.wav"):
        (later / name).rename(files[name])
    # Inputs that clash with earlier work arrive: the earlier transcripts keep their names, the new ones get others.
    second = run_cli("transcribe", tmp_path / "calls", "-o", out, *fast_engine())
    assert second.returncode == 0 and "2 already done" in second.stderr, second.stderr
    transcripts = sorted(out.glob("*.json"))
    assert len(transcripts) == 5
    assert {"x.json", "sub__y.json", "x.mp3.json", "x.2.json"} <= {p.name for p in transcripts}
    recorded = {p.name: Transcript.from_json(p.read_text()).call.path for p in transcripts}
    assert sorted(recorded.values()) == sorted(str(p) for p in files.values())
    assert recorded["x.json"] == str(files["x.wav"]) and recorded["sub__y.json"] == str(files["sub/y.wav"])
    stamps = {p.name: p.stat().st_mtime_ns for p in transcripts}
    third = run_cli("transcribe", tmp_path / "calls", "-o", out, *fast_engine())
    assert third.returncode == 0 and "5 already done" in third.stderr
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.json")} == stamps


def test_a_folder_used_as_its_own_output_is_not_fed_back_in(tmp_path: Path, speech: np.ndarray) -> None:
    calls = tmp_path / "calls"
    calls.mkdir()
    write_wav(calls / "t.wav", speech[: 16000 * 6])
    args = ("transcribe", calls, "-o", calls, *fast_engine(), "--redact-audio", "--format", "all")
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    assert (calls / "t.redacted.wav").is_file()
    second = run_cli(*args)
    assert second.returncode == 0, second.stderr
    assert "1 already done" in second.stderr and "hold no audio" not in second.stderr
    assert sorted(p.name for p in calls.glob("*.wav")) == ["t.redacted.wav", "t.wav"]


def test_non_finite_samples_are_repaired_and_counted(tmp_path: Path, speech: np.ndarray) -> None:
    damaged = speech.copy()
    damaged[[1000, 20000, 40000]] = np.nan
    damaged[60000] = np.inf
    damaged[80000] = -np.inf
    path = write_wav(tmp_path / "nan.wav", damaged, float32=True)
    out = tmp_path / "out"
    result = run_cli("transcribe", path, "-o", out, *fast_engine())
    assert result.returncode == 0, result.stderr
    t = Transcript.from_json((out / "nan.json").read_text())
    assert "country" in t.text.lower()
    assert not any("no speech" in n for n in t.notes)
    assert any("repaired 5 non-finite samples" in n for n in t.notes), t.notes


def test_decode_and_from_array_repair_non_finite_samples(tmp_path: Path, speech: np.ndarray) -> None:
    from callscribe.audio import decode, from_array

    damaged = speech[: 16000 * 3].copy()
    damaged[[10, 500, 9000]] = [np.nan, np.inf, -np.inf]
    with decode(write_wav(tmp_path / "f.wav", damaged, float32=True)) as audio:
        assert np.isfinite(audio.read(0)).all()
        assert audio.notes == ["repaired 3 non-finite samples (NaN/inf) by setting them to 0"]
    with decode(write_wav(tmp_path / "clean.wav", speech[: 16000 * 3], float32=True)) as audio:
        assert audio.notes == []
    with from_array(damaged, 16000) as audio:
        assert np.isfinite(audio.read(0)).all() and audio.notes[0].startswith("repaired 3 ")
    assert np.isnan(damaged[10]), "the caller's array is left as it was"
