"""The newcomer's path: a missing optional extra is one line with the command that installs it, bad options stop
the run at once in one short line, the output lock comes before the model, ``--version``, and progress moves during
a long call."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
from batch_helpers import fast_engine, load_mono, run_cli, write_wav

from callscribe.batch import OutputLock
from callscribe.extras import MissingExtra, install_command, missing_extra_message, require

BLOCKER = """
import os
import sys

for name in os.environ.get("CALLSCRIBE_TEST_BLOCK", "").split(","):
    if name:
        sys.modules[name] = None  # importing it now fails as if it were not installed
"""


@pytest.fixture(scope="module")
def jfk(evalset: Path) -> Path:
    return evalset / "audio" / "en_whisper_jfk.flac"


def without(tmp_path: Path, *modules: str) -> dict[str, str]:
    """Environment for a subprocess in which ``modules`` cannot be imported."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER)
    return {"PYTHONPATH": str(site), "CALLSCRIBE_TEST_BLOCK": ",".join(modules)}


def single_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


def test_missing_extras_are_one_line_naming_the_extra(tmp_path: Path, jfk: Path) -> None:
    env = without(tmp_path, "jieba", "jiwer")
    empty = tmp_path / "empty"
    empty.mkdir()
    qa_run = run_cli("transcribe", jfk, "-o", tmp_path / "out", "--qa", env=env)
    line = single_error_line(qa_run.stderr)
    assert qa_run.returncode == 2 and "[qa]" in line and "pip install 'callscribe[qa]'" in line
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.json"))  # before any work
    for args, extra in (
        (("qa", empty), "qa"),
        (("insights", empty), "qa"),
        (("eval", "--ref", empty, "--hyp", empty), "eval"),
    ):
        result = run_cli(*args, env=env)
        line = single_error_line(result.stderr)
        assert result.returncode == 2, result.stderr
        assert f"[{extra}]" in line and f"pip install 'callscribe[{extra}]'" in line, line


def test_install_commands_put_cpu_torch_first() -> None:
    assert install_command("diarize") == "pip install torch==2.13.0 && pip install 'callscribe[diarize]'"
    assert install_command("qa") == "pip install 'callscribe[qa]'"
    message = missing_extra_message(ModuleNotFoundError("No module named 'resemblyzer'", name="resemblyzer"))
    assert "[diarize]" in message and "torch==2.13.0" in message and "\n" not in message
    with pytest.raises(MissingExtra, match=r"\[eval\]"):
        require("callscribe_no_such_module_for_tests", "eval")
    assert require("json").dumps([1]) == "[1]"


def test_bad_options_stop_at_once_in_one_short_line(tmp_path: Path, jfk: Path) -> None:
    out = tmp_path / "out"
    for args, expected in (
        (("--language", "xx"), "--language xx"),
        (("--format", "json,docx"), "docx"),
        (("--qa", "--scorecard", str(tmp_path / "missing.yaml")), "missing.yaml"),
    ):
        result = run_cli("transcribe", jfk, "-o", out, *args)
        line = single_error_line(result.stderr)
        assert result.returncode == 2 and expected in line and len(line) < 200, line
        assert not out.exists() or not list(out.glob("*.json"))


def test_the_output_lock_is_taken_before_the_model_loads(tmp_path: Path, jfk: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    with OutputLock(busy):  # a model that cannot load: the lock must be what stops this run
        result = run_cli("transcribe", jfk, "-o", busy, "--engine", "whisper", "--model", tmp_path / "nowhere")
    line = single_error_line(result.stderr)
    assert result.returncode == 2 and "another callscribe run is writing to this folder" in line


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"callscribe {version('callscribe')}"


def test_progress_moves_during_a_long_call(tmp_path: Path, jfk: Path) -> None:
    speech = load_mono(jfk)
    call = np.zeros(16000 * 240, np.float32)  # four minutes, speech at the start, the middle and the end
    for at in (0, 110, 225):
        call[16000 * at : 16000 * at + len(speech)] = speech
    path = write_wav(tmp_path / "long.wav", call)
    result = run_cli("transcribe", path, "-o", tmp_path / "out", *fast_engine(), env={"CALLSCRIBE_PROGRESS_EVERY": "0"})
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    done_at = next(i for i, line in enumerate(lines) if "[1/1] done" in line)
    decoding = [line for line in lines[:done_at] if line.startswith("... decoding")]
    hearing = [line for line in lines[:done_at] if line.startswith("... transcribing")]
    seconds = [
        int(h) * 3600 + int(m) * 60 + int(s)
        for h, m, s in (re.search(r"(\d+):(\d\d):(\d\d) of", x).groups() for x in decoding)
    ]  # type: ignore[union-attr]
    assert len(seconds) >= 10 and seconds == sorted(seconds) and seconds[-1] >= 200, decoding
    assert all("of 0:04:00" in line for line in decoding)
    assert hearing and "long.wav" in hearing[-1]
