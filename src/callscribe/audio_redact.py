"""Cover redacted stretches of a recording with a tone, writing a new WAV file.

The recording is decoded with PyAV block by block (every channel kept, native sample rate) and written as 16-bit
PCM with the stdlib ``wave`` module, so memory stays flat however long the call. Every sample inside a span, on
every channel (the other party's channel often carries bleed of the same words), is replaced by a 1 kHz sine. The
output goes to a temporary file next to the target and is moved into place; the input is never overwritten.
"""

from __future__ import annotations

import logging
import math
import os
import wave
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import av
import numpy as np

log = logging.getLogger("callscribe")

TONE_HZ = 1000.0
TONE_LEVEL = 0.25  # peak amplitude of the tone, as a share of full scale (about -12 dBFS)
_INT16_MAX = 32767


class _TimeSpan(Protocol):
    @property
    def start(self) -> float: ...

    @property
    def end(self) -> float: ...


def merge_spans(spans: Sequence[_TimeSpan]) -> list[tuple[float, float]]:
    """Sorted, non-overlapping ``(start, end)`` pairs covering every span."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted((max(0.0, s.start), s.end) for s in spans if s.end > s.start):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def redact_audio(
    source: str | Path,
    spans: Sequence[_TimeSpan],
    out_path: str | Path,
    *,
    tone_hz: float = TONE_HZ,
    level: float = TONE_LEVEL,
) -> None:
    """Write ``out_path`` (a ``.wav``): ``source`` with a tone over every span (seconds from the start)."""
    src, out = Path(source), Path(out_path)
    if not src.is_file():
        raise FileNotFoundError(f"{src}: no such recording")
    if out.suffix.lower() != ".wav":
        raise ValueError(f"{out}: redacted audio is written as WAV; give a .wav path")
    if out.exists() and out.resolve() == src.resolve():
        raise ValueError(f"{out}: refusing to overwrite the input recording; choose another output path")
    ranges = merge_spans(spans)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        container = av.open(str(src))
    except (av.error.FFmpegError, OSError) as exc:
        raise ValueError(f"{src}: cannot decode audio ({exc})") from exc
    try:
        if not container.streams.audio:
            raise ValueError(f"{src}: no audio stream")
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        layout = stream.codec_context.layout
        channels = layout.nb_channels
        sample_ranges = [(round(a * rate), round(b * rate)) for a, b in ranges]
        resampler = av.AudioResampler(format="s16", layout=layout, rate=rate)
        written = 0
        out.parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(tmp), "wb") as sink:
            sink.setnchannels(channels)
            sink.setsampwidth(2)
            sink.setframerate(rate)
            for frame in container.decode(stream):
                for block in resampler.resample(frame):
                    written += _write_block(sink, block, channels, written, sample_ranges, rate, tone_hz, level)
            for block in resampler.resample(None):
                written += _write_block(sink, block, channels, written, sample_ranges, rate, tone_hz, level)
        os.replace(tmp, out)
    except av.error.FFmpegError as exc:
        raise ValueError(f"{src}: cannot decode audio ({exc})") from exc
    finally:
        container.close()
        if tmp.exists():
            tmp.unlink()
    covered = sum(b - a for a, b in ranges)
    log.info("redacted %.2f s in %d span(s) of %s -> %s", covered, len(ranges), src, out)


def _write_block(
    sink: wave.Wave_write,
    block: av.AudioFrame,
    channels: int,
    offset: int,
    ranges: Sequence[tuple[int, int]],
    rate: int,
    tone_hz: float,
    level: float,
) -> int:
    samples = block.to_ndarray().reshape(-1, channels).copy()
    n = samples.shape[0]
    for a, b in ranges:
        lo, hi = max(a, offset), min(b, offset + n)
        if lo >= hi:
            continue
        t = np.arange(lo, hi, dtype=np.float64) / rate
        tone = (level * _INT16_MAX * np.sin(2.0 * math.pi * tone_hz * t)).astype(np.int16)
        samples[lo - offset : hi - offset, :] = tone[:, None]
    sink.writeframes(samples.tobytes())
    return n
