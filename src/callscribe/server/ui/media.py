"""Waveform peaks and the audio the browser plays, made once per recording and kept in the server's data folder.

- Peaks: the loudest sample of each short bin, per channel (``PEAKS_PER_S`` bins a second, at most ``MAX_BINS``
  per channel), as integers 0-100, decoded with PyAV block by block (memory stays flat for long calls) and kept
  in ``DATA/ui/peaks/<sha256>.v1.json``. The player draws them instead of decoding the whole recording in the
  browser, so a long call's page does not wait for its audio.
- Playback: the recording itself when the browser can play its codec and nothing is to be masked; otherwise a
  16-bit WAV made by :func:`callscribe.audio_redact.redact_audio` (a 1 kHz tone over the masked stretches, or no
  tone for a plain copy of a codec browsers cannot play, e.g. μ-law) in ``DATA/ui/audio/<sha256>-<key>.wav``.
  A new set of stretches (a correction added a number) makes a new copy and removes the outdated one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import av
import numpy as np

from callscribe.audio_redact import redact_audio

PEAKS_VERSION = 1
PEAKS_PER_S = 50
MAX_BINS = 20_000  # per channel: a 30-minute call gets ~11 bins a second
PEAK_SCALE = 100
BROWSER_CODECS = frozenset(
    {"pcm_s16le", "pcm_u8", "pcm_s24le", "pcm_s32le", "pcm_f32le", "mp3", "aac", "opus", "vorbis", "flac"}
)
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock(key: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def compute_peaks(path: Path, duration: float, *, per_s: int = PEAKS_PER_S, max_bins: int = MAX_BINS) -> dict[str, Any]:
    """Peaks of every channel of ``path``; ``duration`` (seconds, from the transcript) sizes the bins."""
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise ValueError(f"{path.name}: cannot decode audio ({exc})") from None
    try:
        if not container.streams.audio:
            raise ValueError(f"{path.name}: no audio stream")
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        layout = stream.codec_context.layout
        channels = layout.nb_channels
        step = max(1, math.ceil(rate / per_s))
        if duration * rate / step > max_bins:
            step = math.ceil(duration * rate / max_bins)
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        parts: list[np.ndarray] = []
        carry = np.zeros((channels, 0), dtype=np.float32)
        total = 0

        def take(block: np.ndarray) -> np.ndarray:
            nonlocal total
            total += block.shape[1]
            joined = np.concatenate([carry, block], axis=1) if carry.shape[1] else block
            full = joined.shape[1] // step * step
            if full:
                parts.append(np.abs(joined[:, :full]).reshape(channels, -1, step).max(axis=2))
            return joined[:, full:]

        for frame in container.decode(stream):
            for block in resampler.resample(frame):
                carry = take(block.to_ndarray().reshape(channels, -1))
        for block in resampler.resample(None):
            carry = take(block.to_ndarray().reshape(channels, -1))
        if carry.shape[1]:
            parts.append(np.abs(carry).max(axis=1, keepdims=True))
    except av.error.FFmpegError as exc:
        raise ValueError(f"{path.name}: cannot decode audio ({exc})") from None
    finally:
        container.close()
    peaks = np.concatenate(parts, axis=1) if parts else np.zeros((channels, 0), dtype=np.float32)
    scaled = np.clip(np.rint(peaks * PEAK_SCALE), 0, PEAK_SCALE).astype(int)
    return {
        "version": PEAKS_VERSION,
        "sample_rate": rate,
        "channels": channels,
        "samples_per_peak": step,
        "duration": total / rate if rate else 0.0,
        "scale": PEAK_SCALE,
        "data": scaled.tolist(),
    }


def peaks_bytes(cache: Path, sha256: str, audio: Path, duration: float) -> bytes:
    """The recording's peaks as JSON bytes, computed the first time and then read from ``cache``."""
    path = cache / f"{sha256}.v{PEAKS_VERSION}.json"
    with _lock(f"peaks:{sha256}"):
        try:
            return path.read_bytes()
        except FileNotFoundError:
            pass
        data = json.dumps(compute_peaks(audio, duration), separators=(",", ":")).encode()
        _atomic_write(path, data)
        return data


def codec_of(path: Path) -> str:
    try:
        with av.open(str(path)) as container:
            return container.streams.audio[0].codec_context.name if container.streams.audio else ""
    except (av.error.FFmpegError, OSError):
        return ""


def span_key(spans: Sequence[tuple[float, float]]) -> str:
    """A short name for a set of masked stretches (``plain`` when there are none)."""
    if not spans:
        return "plain"
    text = json.dumps([[round(a, 3), round(b, 3)] for a, b in spans])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def playback_file(cache: Path, sha256: str, audio: Path, spans: Sequence[tuple[float, float]]) -> Path:
    """The file to send: ``audio`` itself when the browser plays its codec and nothing is masked, else a WAV copy
    with a tone over ``spans`` (made once, kept in ``cache``)."""
    if not spans and codec_of(audio) in BROWSER_CODECS:
        return audio
    key = span_key(spans)
    out = cache / f"{sha256}-{key}.wav"
    with _lock(f"audio:{sha256}"):
        if out.is_file():
            return out
        cache.mkdir(parents=True, exist_ok=True)
        redact_audio(audio, [_Span(a, b) for a, b in spans], out)
        if key != "plain":  # an outdated masked copy of the same recording goes
            for old in cache.glob(f"{sha256}-*.wav"):
                if old != out and not old.name.endswith("-plain.wav"):
                    old.unlink(missing_ok=True)
        return out


class _Span:
    def __init__(self, start: float, end: float) -> None:
        self.start, self.end = start, end
