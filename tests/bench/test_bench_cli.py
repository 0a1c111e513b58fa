"""``callscribe bench`` on the example calls with the bundled Whisper model: structure and consistency of the
real measurements (never their speed)."""

from __future__ import annotations

import json
from pathlib import Path

import av
import pytest
from typer.testing import CliRunner

from callscribe.cli import app
from callscribe.engines import bundled

pytestmark = pytest.mark.skipif(not bundled.is_installed(), reason="bundled Whisper model is not installed")

STAGE_KEYS = {"decode", "vad", "speakers", "engine", "text"}


def _duration(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return float(stream.duration * stream.time_base)


def _bench(tmp: Path, *args: str) -> tuple[dict, str]:
    out = tmp / "bench.json"
    result = CliRunner().invoke(
        app, ["bench", *args, "--engine", "whisper", "--threads", "2", "--json", str(out)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text(encoding="utf-8")), result.output


@pytest.fixture(scope="module")
def pipelined(examples_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    return _bench(tmp_path_factory.mktemp("bench"), str(examples_dir))


def test_audio_seconds_are_the_files_durations(pipelined: tuple[dict, str], examples_dir: Path) -> None:
    report, _ = pipelined
    files = sorted(p for p in examples_dir.iterdir() if p.suffix in {".wav", ".mp3"})
    assert sorted(Path(c["path"]).name for c in report["calls"]) == [p.name for p in files]
    by_name = {Path(c["path"]).name: c for c in report["calls"]}
    for path in files:
        assert by_name[path.name]["audio_s"] == pytest.approx(_duration(path), abs=0.05)
    assert report["audio_s"] == pytest.approx(sum(_duration(p) for p in files), abs=0.1)


def test_rates_follow_from_wall_and_audio(pipelined: tuple[dict, str]) -> None:
    report, _ = pipelined
    assert report["wall_s"] > 0 and report["load_s"] > 0
    assert report["rtf"] == pytest.approx(report["wall_s"] / report["audio_s"], rel=1e-3)
    assert report["audio_hours_per_hour"] == pytest.approx(report["audio_s"] / report["wall_s"], rel=1e-3)
    assert report["mode"] == "pipelined"


def test_stage_sums_match_the_calls(pipelined: tuple[dict, str]) -> None:
    report, _ = pipelined
    for call in report["calls"]:
        assert call["error"] is None
        assert set(call["timings"]) >= STAGE_KEYS
        assert all(v >= 0 for v in call["timings"].values())
    for stage in STAGE_KEYS:
        summed = sum(c["timings"][stage] for c in report["calls"])
        assert report["stages"][stage] == pytest.approx(summed, abs=1e-3)
    # The engine's time as the pipeline shares it out equals the time the wrapped engine measured.
    assert report["stages"]["engine"] == pytest.approx(report["engine"]["seconds"], rel=0.01, abs=0.01)
    assert report["stages"]["engine"] <= report["wall_s"]


def test_engine_figures(pipelined: tuple[dict, str]) -> None:
    report, output = pipelined
    engine = report["engine"]
    assert engine["name"] == "whisper"
    assert "bundled whisper-base" in engine["description"]
    assert engine["device"] == "cpu" and engine["gpu_peak_mb"] is None
    assert engine["clips"] >= len(report["calls"]) and engine["calls"] >= 1
    assert engine["mean_clip_s"] == pytest.approx(engine["clip_seconds"] / engine["clips"], abs=1e-3)
    # Clips are cut from speech, at most 30 s each plus padding.
    assert 0 < engine["mean_clip_s"] <= 31
    assert report["peak_rss_mb"] >= report["rss_after_load_mb"] > 0
    for label in ("real-time factor", "audio hours / hour", "peak RSS", "engine"):
        assert label in output


def test_serial_stage_times_add_up_to_at_most_the_wall(examples_dir: Path, tmp_path: Path) -> None:
    report, _ = _bench(tmp_path, str(examples_dir / "zh_billing_stereo_8k.wav"), "--serial", "--language", "zh")
    assert report["mode"] == "serial"
    assert report["stages_total_s"] == pytest.approx(sum(report["stages"].values()), abs=1e-3)
    assert report["stages_total_s"] <= report["wall_s"]
    assert report["unattributed_s"] == pytest.approx(report["wall_s"] - report["stages_total_s"], abs=1e-3)
    assert report["calls"][0]["channels"] == 2 and report["calls"][0]["utterances"] > 0


def test_missing_file_fails_with_its_name(tmp_path: Path) -> None:
    missing = tmp_path / "nope.wav"
    result = CliRunner().invoke(app, ["bench", str(missing), "--engine", "whisper", "--threads", "2"])
    assert result.exit_code == 1
    assert str(missing) in result.output
