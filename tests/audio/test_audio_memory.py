"""Long calls are decoded in bounded blocks and spooled to disk, not held in memory."""

from __future__ import annotations

import tracemalloc
import wave
from pathlib import Path

import numpy as np
import pytest
import soxr
from audio_samples import dominant_frequency, real_speech, tone

from callscribe.audio import BLOCK_FRAMES, SAMPLE_RATE, decode

MINUTES = 15
RATE = 8_000


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return real_speech()


def _long_stereo_wav(path: Path, speech: np.ndarray) -> Path:
    """MINUTES of 8 kHz stereo: a 440 Hz tone on the left, real speech repeated on the right."""
    right = soxr.resample(speech, SAMPLE_RATE, RATE).astype(np.float32)
    left = tone(440.0, len(right) / RATE, RATE)
    block = np.stack([left, right]).T  # (n, 2) interleaved
    pcm = (np.clip(block, -1, 1) * 32767).astype("<i2").tobytes()
    total = MINUTES * 60 * RATE
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(RATE)
        written = 0
        while written < total:
            take = min(len(block), total - written)
            out.writeframes(pcm[: take * 4])
            written += take
    return path


def test_long_call_is_decoded_in_bounded_blocks(tmp_path: Path, speech: np.ndarray) -> None:
    path = _long_stereo_wav(tmp_path / "long.wav", speech)
    shapes: list[tuple[int, ...]] = []
    full_size = MINUTES * 60 * SAMPLE_RATE * 2 * 4  # what the whole call would take as float32 in memory

    tracemalloc.start()
    try:
        audio = decode(path, consumers=[lambda block: shapes.append(block.shape)])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    with audio:
        assert audio.frames == MINUTES * 60 * SAMPLE_RATE
        assert audio.duration == pytest.approx(MINUTES * 60)
        assert all(shape[0] == 2 and 0 < shape[1] <= BLOCK_FRAMES for shape in shapes)
        assert sum(shape[1] for shape in shapes) == audio.frames
        assert sum(1 for shape in shapes if shape[1] == BLOCK_FRAMES) == len(shapes) - 1
        # Python-side allocations stay a fraction of the decoded call (the first two minutes are held in
        # memory before spilling, the rest goes straight to the spool).
        assert audio.spooled
        assert peak < full_size / 4
        # Positional reads from the spool give the right channel at the right place.
        late = MINUTES * 60 - 30.0
        assert dominant_frequency(audio.read(0, late, late + 1.0), SAMPLE_RATE) == pytest.approx(440.0, abs=1.5)
        right = audio.read(1, late, late + 5.0)
        assert len(right) == 5 * SAMPLE_RATE
        assert np.sqrt(np.mean(right**2)) > 0.01
    assert audio.frames == 0  # closed: the spool is gone
