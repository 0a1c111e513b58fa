"""Helpers for the audio tests: real speech, a PyAV encoder for test files, tones, a frequency probe."""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from pathlib import Path

import av
import numpy as np
import pytest

from callscribe.audio import decode
from conftest import EVALSET, evalset_items

SPEECH_FILE = "audio/en_librispeech_1995-1837-0001.wav"
ESPEAK_TEXT = (
    "Thank you for calling. My name is Anna, how can I help you today? "
    "I would like to check the balance of my account, please."
)

LAYOUTS = {1: "mono", 2: "stereo", 6: "5.1"}


def write_audio(
    path: Path,
    samples: np.ndarray,
    rate: int,
    codec: str,
    *,
    container_format: str | None = None,
    sample_format: str | None = None,
    bit_rate: int | None = None,
) -> Path:
    """Encode float32 ``(channels, n)`` samples with PyAV into ``path``."""
    data = np.atleast_2d(samples).astype(np.float32)
    layout = LAYOUTS.get(data.shape[0], f"{data.shape[0]}c")
    with av.open(str(path), mode="w", format=container_format) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        if sample_format:
            stream.format = sample_format
        if bit_rate:
            stream.bit_rate = bit_rate
        step = 4096
        for first in range(0, data.shape[1], step):
            chunk = np.ascontiguousarray(data[:, first : first + step])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
            frame.sample_rate = rate
            frame.pts = first
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def tone(freq: float, seconds: float, rate: int, level: float = 0.3) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (level * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))


@functools.cache
def real_speech() -> np.ndarray:
    """About 9 s of real speech from evalset-dev, 16 kHz mono float32 (espeak-ng speech when it is absent)."""
    if any(row["file"] == SPEECH_FILE for row in evalset_items("en")):
        with decode(EVALSET / SPEECH_FILE) as audio:
            return audio.read(0)
    if shutil.which("espeak-ng") is None:
        pytest.skip("neither evalset-dev nor espeak-ng is available for test speech")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "espeak.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(wav), ESPEAK_TEXT], check=True, capture_output=True)
        with decode(wav) as audio:
            return audio.read(0)
