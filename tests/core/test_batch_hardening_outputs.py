"""A call's output files are one set: redoing a call replaces the whole set, a kill leaves the old set or the new
one, a missing QA result is added to a finished call, another recording's transcript is never overwritten."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from batch_helpers import fast_engine, load_mono, run_cli, write_wav

from callscribe.batch import OutputLock
from callscribe.model import Transcript
from callscribe.outputs.writers import OutputSet


@pytest.fixture(scope="module")
def speech(evalset: Path) -> np.ndarray:
    return load_mono(evalset / "audio" / "en_whisper_jfk.flac")


def test_a_redone_call_keeps_no_file_of_its_earlier_run(tmp_path: Path, speech: np.ndarray) -> None:
    call = write_wav(tmp_path / "a.wav", speech[: 16000 * 5])
    out = tmp_path / "out"
    first = run_cli("transcribe", call, "-o", out, *fast_engine(), "--format", "json,txt,srt,vtt,tsv")
    assert first.returncode == 0, first.stderr
    assert sorted(p.name for p in out.glob("a.*")) == ["a.json", "a.srt", "a.tsv", "a.txt", "a.vtt"]
    # Redacted now: the unredacted subtitles and table of the first run must not survive next to the new files.
    redo = run_cli("transcribe", call, "-o", out, *fast_engine(), "--redact", "pii", "--format", "json,txt")
    assert redo.returncode == 0 and "1 transcribed" in redo.stderr, redo.stderr
    assert sorted(p.name for p in out.glob("a.*")) == ["a.json", "a.txt"]
    assert Transcript.from_json((out / "a.json").read_text()).options["redact"] == ["pii"]
    assert not list(out.glob(".*.tmp")) and not list(out.glob(".*.commit"))


def test_qa_on_finished_calls_adds_the_missing_result_in_utf8(tmp_path: Path, evalset: Path) -> None:
    call = evalset / "audio" / "zh_aishell1_BAC009S0764W0121.wav"
    out = tmp_path / "out"
    first = run_cli("transcribe", call, "-o", out, "--engine", "whisper", "--language", "zh")
    assert first.returncode == 0, first.stderr
    stem = call.stem
    assert not (out / f"{stem}.qa.json").exists()
    qa = run_cli("transcribe", call, "-o", out, "--engine", "whisper", "--language", "zh", "--qa")
    assert qa.returncode == 0 and "1 already done" in qa.stderr, qa.stderr
    text = (out / f"{stem}.qa.json").read_text(encoding="utf-8")
    assert json.loads(text)["call_id"] == stem
    assert "\\u" not in text and any("\u4e00" <= ch <= "\u9fff" for ch in text)
    for written in out.glob("*.json"):  # every JSON file callscribe wrote is plain UTF-8
        assert "\\u" not in written.read_text(encoding="utf-8"), written


def test_another_recordings_transcript_is_never_overwritten(tmp_path: Path, speech: np.ndarray) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first_call = write_wav(tmp_path / "a" / "x.wav", speech[: 16000 * 4])
    other_call = write_wav(tmp_path / "b" / "x.wav", speech[16000 * 4 : 16000 * 8])
    out = tmp_path / "out"
    assert run_cli("transcribe", first_call, "-o", out, *fast_engine()).returncode == 0
    before = (out / "x.json").read_bytes()
    refused = run_cli("transcribe", other_call, "-o", out, *fast_engine())
    assert refused.returncode == 1
    assert "holds the transcript of another recording" in refused.stderr
    assert (out / "x.json").read_bytes() == before


# -- kill at any moment of a commit: the old set or the new one, never a mix -----------------------------------------

_COMMITTER = """
import sys
from pathlib import Path
from callscribe.outputs.writers import OutputSet
out = Path(sys.argv[1])
print("ready", flush=True)
for i in range(int(sys.argv[2])):
    files = OutputSet(out, f"c{i}")
    files.add_text(".txt", "new\\n" * 2000)
    files.add_text(".json", "new\\n" * 2000)
    files.commit(replace_all=True)
"""
OLD = (".json", ".txt", ".srt", ".qa.json")
NEW = (".json", ".txt")


def _old_sets(out: Path, n: int) -> None:
    for i in range(n):
        files = OutputSet(out, f"c{i}")
        for suffix in OLD:
            files.add_text(suffix, "old\n")
        files.commit(replace_all=True)


def _state(out: Path, stem: str) -> str:
    present = tuple(s for s in OLD if (out / f"{stem}{s}").exists())
    contents = {(out / f"{stem}{s}").read_text()[:4] for s in present}
    if present == OLD and contents == {"old\n"}:
        return "old"
    if present == NEW and contents == {"new\n"}:
        return "new"
    return f"mixed {present} {contents}"


def test_a_kill_during_commits_leaves_each_call_old_or_new(tmp_path: Path) -> None:
    n = 40
    rng = random.Random(7)
    seen = set()
    for attempt in range(6):
        out = tmp_path / f"out{attempt}"
        out.mkdir()
        _old_sets(out, n)
        proc = subprocess.Popen([sys.executable, "-c", _COMMITTER, str(out), str(n)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.15))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with OutputLock(out):  # what the next run does first: finish journalled commits, sweep temp files
            pass
        states = [_state(out, f"c{i}") for i in range(n)]
        assert all(s in ("old", "new") for s in states), states
        assert [p for p in os.listdir(out) if p.startswith(".")] == [".callscribe.lock"], os.listdir(out)
        seen.update(states)
    assert seen == {"old", "new"}, "the kills should land mid-way at least once"


def test_a_commit_journalled_before_a_kill_is_rolled_forward(tmp_path: Path) -> None:
    _old_sets(tmp_path, 1)
    files = OutputSet(tmp_path, "c0")
    files.add_text(".json", "new\n")
    files.add_text(".txt", "new\n")
    files.write_journal(replace_all=True)  # killed here: journal on disk, nothing renamed yet
    assert _state(tmp_path, "c0") == "old"
    with OutputLock(tmp_path):
        pass
    assert _state(tmp_path, "c0") == "new"
    unjournalled = OutputSet(tmp_path, "c0")
    unjournalled.add_text(".json", "old\n")  # killed before the journal: only temp files, swept
    with OutputLock(tmp_path):
        pass
    assert _state(tmp_path, "c0") == "new" and sorted(os.listdir(tmp_path)) == [".callscribe.lock", "c0.json", "c0.txt"]
