"""The batch CLI end to end: real files through the real pipeline and the bundled Whisper model, in subprocesses.

Covers bad inputs in a batch (the rest finishes, errors.jsonl names each), resume after ``kill -9``, skipping done
work, and the setup errors that stop a run before it starts.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from batch_helpers import CLI, load_mono, run_cli, write_wav

from callscribe.model import Transcript


@pytest.fixture(scope="module")
def speech_files(evalset: Path) -> list[Path]:
    return [
        evalset / "audio" / "en_whisper_jfk.flac",
        evalset / "audio" / "zh_aishell1_BAC009S0764W0121.wav",
        evalset / "audio" / "en_timit_LDC93S1_8k.wav",
    ]


def test_bad_inputs_fail_alone_and_the_batch_finishes(tmp_path: Path, speech_files: list[Path]) -> None:
    calls = tmp_path / "calls"
    calls.mkdir()
    shutil.copy(speech_files[0], calls / "good.flac")
    (calls / "empty.wav").write_bytes(b"")
    (calls / "notes.wav").write_text("this is not audio\n")
    data = (speech_files[1]).read_bytes()
    (calls / "truncated.wav").write_bytes(data[:60])  # header only: no samples
    write_wav(calls / "silence.wav", np.zeros(16000 * 3, np.float32))
    out = tmp_path / "out"
    missing = tmp_path / "nowhere.wav"
    names = ("good.flac", "empty.wav", "notes.wav", "truncated.wav", "silence.wav")
    result = run_cli("transcribe", *(calls / n for n in names), missing, "-o", out, "--engine", "whisper")
    assert result.returncode == 1, result.stderr
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    by_name = {Path(e["path"]).name: e for e in errors}
    assert set(by_name) == {"empty.wav", "notes.wav", "truncated.wav", "nowhere.wav"}
    for name, entry in by_name.items():
        assert name in entry["reason"] and "\n" not in entry["reason"]
        assert entry["stage"]
    assert "empty" in by_name["empty.wav"]["reason"] or "zero bytes" in by_name["empty.wav"]["reason"]
    assert "not found" in by_name["nowhere.wav"]["reason"] or "does not exist" in by_name["nowhere.wav"]["reason"]
    good = Transcript.from_json((out / "good.json").read_text())
    assert "country" in good.text.lower()
    silent = Transcript.from_json((out / "silence.json").read_text())
    assert silent.utterances == () and any("no speech" in n for n in silent.notes)
    assert "4 failed" in result.stderr


def test_killed_run_resumes_without_loss_or_duplicates(tmp_path: Path, speech_files: list[Path]) -> None:
    # Calls of many short utterances, so the engine batches (32 clips) finish calls a few at a time.
    calls = tmp_path / "calls"
    calls.mkdir()
    pause = np.zeros(16000 * 5 // 2, np.float32)
    for i in range(4):
        speech = load_mono(speech_files[i % len(speech_files)])[: 16000 * 3]
        write_wav(calls / f"call{i}.wav", np.concatenate([np.concatenate([speech, pause])] * (12 + i)))
    out = tmp_path / "out"
    args = [*CLI, "transcribe", str(calls), "-o", str(out), "--engine", "whisper", "--format", "json,txt,srt"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and not list(out.glob("*.json")):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = {p.name: p.stat().st_mtime_ns for p in out.glob("*.json")}
    assert 1 <= len(first) < 4, "the kill should land mid-batch"
    result = run_cli("transcribe", calls, "-o", out, "--engine", "whisper", "--format", "json,txt,srt", "-v")
    assert result.returncode == 0, result.stderr
    jsons = sorted(p.name for p in out.glob("*.json"))
    assert jsons == [f"call{i}.json" for i in range(4)]
    for name, mtime in first.items():  # finished calls were skipped, not redone
        assert (out / name).stat().st_mtime_ns == mtime
    for i in range(4):
        assert (out / f"call{i}.txt").is_file() and (out / f"call{i}.srt").is_file()
    assert not list(out.glob(".*.tmp")), "temp files left behind"
    assert f"{len(first)} already done" in result.stderr
    # A third run does nothing but skip.
    again = run_cli("transcribe", calls, "-o", out, "--engine", "whisper", "--format", "json,txt,srt")
    assert again.returncode == 0 and "4 already done" in again.stderr


def test_changed_options_redo_and_new_formats_come_from_the_saved_json(
    tmp_path: Path, speech_files: list[Path]
) -> None:
    out = tmp_path / "out"
    assert run_cli("transcribe", speech_files[0], "-o", out, "--engine", "whisper").returncode == 0
    stamp = (out / "en_whisper_jfk.json").stat().st_mtime_ns
    more = run_cli("transcribe", speech_files[0], "-o", out, "--engine", "whisper", "--format", "vtt,tsv")
    assert more.returncode == 0 and "1 already done" in more.stderr
    assert (out / "en_whisper_jfk.vtt").is_file() and (out / "en_whisper_jfk.json").stat().st_mtime_ns == stamp
    redo = run_cli("transcribe", speech_files[0], "-o", out, "--engine", "whisper", "--language", "en")
    assert redo.returncode == 0 and "1 transcribed" in redo.stderr


def test_setup_errors_stop_early_with_one_line(tmp_path: Path, speech_files: list[Path]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = run_cli("transcribe", speech_files[0], "-o", blocker / "out", "--engine", "whisper")
    assert r.returncode == 2 and "not writable" in r.stderr
    empty_model = tmp_path / "model"
    empty_model.mkdir()
    r = run_cli("transcribe", speech_files[0], "-o", tmp_path / "o", "--engine", "whisper", "--model", empty_model)
    assert r.returncode == 2 and "model.bin is missing" in r.stderr
    (empty_model / "model.bin").write_bytes(b"garbage")
    r = run_cli("transcribe", speech_files[0], "-o", tmp_path / "o", "--engine", "whisper", "--model", empty_model)
    assert r.returncode == 2 and "cannot load Whisper model" in r.stderr
    from callscribe.batch import OutputLock

    busy = tmp_path / "busy"
    busy.mkdir()
    with OutputLock(busy):
        r = run_cli("transcribe", speech_files[0], "-o", busy, "--engine", "whisper")
    assert r.returncode == 2 and "another callscribe run is writing to this folder" in r.stderr
    bad = tmp_path / "hot.txt"
    bad.write_text("=> nothing\n")
    r = run_cli("transcribe", speech_files[0], "-o", tmp_path / "o", "--hotwords", bad)
    assert r.returncode == 2 and "hot.txt:1" in r.stderr


def test_max_duration_refuses_long_calls(tmp_path: Path, speech_files: list[Path]) -> None:
    r = run_cli("transcribe", speech_files[0], "-o", tmp_path / "o", "--engine", "whisper", "--max-duration", "5")
    assert r.returncode == 1
    entry = json.loads((tmp_path / "o" / "errors.jsonl").read_text().splitlines()[0])
    assert "max-duration" in entry["reason"] and "en_whisper_jfk.flac" in entry["reason"]
