"""Clip clean-up: loudness normalisation and an optional spectral-gating denoiser, both in numpy.

Normalisation brings the RMS of the speech in a clip to about :data:`TARGET_DBFS`, never raising the
peak above :data:`PEAK_DBFS` and never boosting by more than :data:`MAX_GAIN_DB`; clips that are essentially
silent are left alone. The denoiser estimates a per-frequency noise floor from the quietest frames of the
clip, keeps time-frequency cells clearly above it and attenuates the rest by :data:`DENOISE_REDUCTION_DB`
(a gentle gate: hard gating hurts recognisers more than the noise does).
"""

from __future__ import annotations

import numpy as np

TARGET_DBFS = -20.0
PEAK_DBFS = -1.0
MAX_GAIN_DB = 30.0
SILENCE_DBFS = -60.0  # speech RMS below this: treat the clip as silence and leave it untouched

N_FFT = 512
HOP = 128
NOISE_PERCENTILE = 15.0  # per frequency bin, across frames: the noise floor estimate
GATE_DB = 6.0  # cells this far above the noise floor count as signal
DENOISE_REDUCTION_DB = 12.0
MASK_SMOOTH_FRAMES = 5
MASK_SMOOTH_BINS = 3
MIN_FRAMES = 16  # clips shorter than this many STFT frames are returned unchanged


def _db_to_amp(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def rms_dbfs(samples: np.ndarray) -> float:
    """RMS level in dBFS (``-inf`` for an all-zero or empty array)."""
    if samples.size == 0:
        return float("-inf")
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return 20.0 * np.log10(rms) if rms > 0 else float("-inf")


def normalize_loudness(samples: np.ndarray, speech: np.ndarray | None = None) -> np.ndarray:
    """Scale ``samples`` so the RMS of ``speech`` (default: all of it) is about -20 dBFS, peak-limited.

    Returns a new float32 array; a silent clip comes back unchanged.
    """
    measured = samples if speech is None or speech.size == 0 else speech
    level = rms_dbfs(measured)
    if not np.isfinite(level) or level < SILENCE_DBFS:
        return samples.astype(np.float32, copy=True)
    gain_db = min(TARGET_DBFS - level, MAX_GAIN_DB)
    peak = float(np.max(np.abs(samples)))
    if peak > 0:
        gain_db = min(gain_db, PEAK_DBFS - 20.0 * np.log10(peak))
    return (samples * _db_to_amp(gain_db)).astype(np.float32)


def _frames(samples: np.ndarray) -> tuple[np.ndarray, int]:
    pad = N_FFT // 2
    padded = np.pad(samples.astype(np.float64), (pad, pad + (-len(samples)) % HOP), mode="reflect")
    count = 1 + (len(padded) - N_FFT) // HOP
    strided = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][:count]
    return strided, len(padded)


def _moving_average(values: np.ndarray, width: int, axis: int) -> np.ndarray:
    """Centred moving average along ``axis`` (edges averaged over the cells that exist)."""
    if width <= 1:
        return values
    half = width // 2
    moved = np.moveaxis(values, axis, 0)
    padded = np.concatenate([np.zeros((1, *moved.shape[1:])), np.cumsum(moved, axis=0)])
    idx = np.arange(moved.shape[0])
    lo, hi = np.clip(idx - half, 0, moved.shape[0]), np.clip(idx + half + 1, 0, moved.shape[0])
    shape = (-1,) + (1,) * (moved.ndim - 1)
    averaged = (padded[hi] - padded[lo]) / (hi - lo).reshape(shape)
    return np.moveaxis(averaged, 0, axis)


def _smooth(mask: np.ndarray) -> np.ndarray:
    """Moving average of a (frames, bins) mask along both axes."""
    return _moving_average(_moving_average(mask, MASK_SMOOTH_FRAMES, 0), MASK_SMOOTH_BINS, 1)


def denoise(samples: np.ndarray) -> np.ndarray:
    """Spectral gating: attenuate time-frequency cells near the clip's own noise floor (float32 in/out)."""
    if len(samples) < N_FFT * 2:
        return samples.astype(np.float32, copy=True)
    window = np.hanning(N_FFT + 1)[:-1]
    frames, padded_len = _frames(samples)
    if len(frames) < MIN_FRAMES:
        return samples.astype(np.float32, copy=True)
    spec = np.fft.rfft(frames * window, axis=1)
    mag = np.abs(spec)
    floor = np.percentile(mag, NOISE_PERCENTILE, axis=0)
    keep = (mag > floor * _db_to_amp(GATE_DB)).astype(np.float64)
    keep = _smooth(keep)
    floor_gain = _db_to_amp(-DENOISE_REDUCTION_DB)
    gain = floor_gain + (1.0 - floor_gain) * keep
    cleaned = np.fft.irfft(spec * gain, n=N_FFT, axis=1) * window
    out = np.zeros(padded_len)
    norm = np.zeros(padded_len)
    for i, frame in enumerate(cleaned):
        at = i * HOP
        out[at : at + N_FFT] += frame
        norm[at : at + N_FFT] += window**2
    pad = N_FFT // 2
    out = out[pad : pad + len(samples)] / np.maximum(norm[pad : pad + len(samples)], 1e-8)
    return out.astype(np.float32)
