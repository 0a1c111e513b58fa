"""The Qwen3-ASR command line and benchmark scripts, run for real: the CLI's one-line layout errors, the GPU check
on the tiny checkpoints (CPU), and the bucketing benchmark's padding arithmetic."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from callscribe.cli import app

ROOT = Path(__file__).resolve().parents[2]
HF_PYTHON = ROOT / ".venv-hf" / "bin" / "python"
EN_CALL = "audio/en_pocketsphinx_cards_005_numbers.wav"
HAS_QWEN_ASR = importlib.util.find_spec("qwen_asr") is not None


def _folder(tmp_path: Path, name: str, config: dict[str, object]) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


@pytest.mark.evalset
@pytest.mark.parametrize(
    ("config", "said"),
    [
        ({"model_type": "qwen3_asr", "audio_config": {}}, r"is not a Qwen3-ASR checkpoint of a known layout"),
        ({"model_type": "whisper", "d_model": 384}, r"model_type 'whisper' and no \*_config sections"),
    ],
)
def test_a_folder_of_neither_layout_is_one_line_from_the_command_line(
    tmp_path: Path, evalset: Path, config: dict[str, object], said: str
) -> None:
    import re

    folder = _folder(tmp_path, "odd", config)
    out = tmp_path / "out"
    args = ["transcribe", str(evalset / EN_CALL), "-o", str(out), "--engine", "qwen3", "--model", str(folder)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and re.search(said, " ".join(lines)), result.output
    assert "Traceback" not in result.output and "thinker_config" in result.output
    assert not list(out.glob("*.json")), "nothing transcribed"


@pytest.mark.evalset
def test_an_hf_folder_without_its_library_names_the_extra_on_the_command_line(tmp_path: Path, evalset: Path) -> None:
    if importlib.util.find_spec("transformers.models.qwen3_asr") is not None:
        pytest.skip("transformers here runs the -hf layout")
    folder = _folder(tmp_path, "hf", {"model_type": "qwen3_asr", "audio_config": {}, "text_config": {}})
    args = ["transcribe", str(evalset / EN_CALL), "-o", str(tmp_path / "out"), "--engine", "qwen3", "--model"]
    result = CliRunner().invoke(app, [*args, str(folder)])
    assert result.exit_code == 2
    assert "callscribe[qwen-hf]" in result.output and "Traceback" not in result.output


def test_padded_frames_are_counted_per_batch() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    pytest.importorskip("qwen_asr")
    from qwen3_bucketing import summarize

    batches = [
        {"rows": 3, "frames": [300, 200, 100], "steps": 10, "second": False},  # 100 + 200 padded frames
        {"rows": 2, "frames": [50, 50], "steps": 4, "second": False},  # none
        {"rows": 1, "frames": [80], "steps": 3, "second": True},  # a second decode: counted apart
    ]
    got = summarize(batches)
    assert got["padded_frames_per_batch"] == 150.0 and got["batches"] == 2
    assert got["padded_audio"] == round(300 / (900 + 100), 4)
    assert got["row_steps"] == 3 * 10 + 2 * 4 and got["second_decode_batches"] == 1


@pytest.mark.evalset
@pytest.mark.skipif(not HAS_QWEN_ASR, reason="qwen-asr is not installed")
def test_the_gpu_check_runs_end_to_end_on_the_tiny_checkpoints(tmp_path: Path, evalset: Path) -> None:
    """benchmarks/qwen3_gpu_check.py --tiny on CPU: both backends (the -hf one under .venv-hf's Python when that
    environment exists), the batched vs one-by-one check and the throughput rows with and without a glossary."""
    report_path = tmp_path / "report.json"
    command = [sys.executable, str(ROOT / "benchmarks" / "qwen3_gpu_check.py"), "--tiny", "--device", "cpu",
               "--batches", "2", "--minutes", "0.15", "--check-clips", "2", "--glossary-terms", "5",
               "--evalset", str(evalset), "--json", str(report_path)]  # fmt: skip
    both = HF_PYTHON.is_file()
    if both:
        command += ["--other-python", str(HF_PYTHON)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(report_path.read_text(encoding="utf-8"))
    ran = {c["backend"] for c in report["checks"]}
    assert ran == ({"qwen-asr", "hf"} if both else {"qwen-asr"}), report["skipped"]
    if not both:
        assert "hf" in report["skipped"]
    for check in report["checks"]:
        assert check["clips"] == 5 and check["identical"] + check["differs"] == 5
        assert check["shortest_s"] <= 0.3 < check["longest_s"]
        # float32 on a CPU: no row may come out as NaN logits or a run of "!" (the mixed-length failure).
        assert check["nan_rows_batched"] == check["nan_rows_alone"] == 0
        assert check["bang_batched"] == check["bang_alone"] == 0 and check["nan_batch_flags"] == 0
    rows = report["throughput"]
    assert sorted((r["backend"], r["glossary_terms"]) for r in rows) == sorted((b, n) for b in ran for n in (0, 5))
    for r in rows:
        assert "error" not in r and r["audio_s_per_s"] > 0 and r["estimate_mib_per_row"] > 0
    glossed = {r["backend"]: r["estimate_mib_per_row"] for r in rows if r["glossary_terms"]}
    plain = {r["backend"]: r["estimate_mib_per_row"] for r in rows if not r["glossary_terms"]}
    assert all(glossed[b] > plain[b] for b in ran), "the glossary lengthens the prompt the estimate reads"
    table = done.stdout
    assert "(a) batched vs one by one" in table and "(b) throughput" in table
    assert sum(line.startswith("| qwen-asr | tiny |") for line in table.splitlines()) == 3
    if both:
        assert sum(line.startswith("| hf | tiny |") for line in table.splitlines()) == 3
