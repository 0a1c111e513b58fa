"""Split-channel calls: are the channels separate parties or copies, and how each party leaks into the other.

Levels are taken frame by frame (20 ms RMS, in dB). On a split-channel call each party's own voice reaches the
other party's channel only as crosstalk or echo: the same signal, some 15-30 dB down and a few milliseconds late.
:func:`measure` finds, for each direction, that delay (the cross-correlation peak of the two channels) and that
gain (how far below the other channel a channel sits while only the other party talks), so the bleed expected on
a channel at any moment is known; :mod:`callscribe.speakers.bleed` compares each frame with it. Only unmistakable
bleed is removed before recognition; the rest is settled after it by comparing texts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from callscribe.model import Span
from callscribe.speakers.bleed import (
    BLEED_MARGIN_DB,
    MIN_BLEED_MARGIN_DB,
    OWN_MARGIN_DB,
    BleedResult,
    classify,
    max_filter,
    noise_floor,
    split_speech,
)

log = logging.getLogger("callscribe")

SAMPLE_RATE = 16_000
FRAME_S = 0.02
FRAME = int(SAMPLE_RATE * FRAME_S)
BLOCK_S = 60.0  # channels are read in blocks this long, so hour-long calls stay small in memory
FLOOR_DB = -90.0
# When no bleed gain can be measured (too little speech), a frame within this of the other channel is its own.
BLEED_DB = 12.0
DELAY_FRAMES = 2  # without a measured delay the other channel's level is taken as its max over ±40 ms
MAX_DELAY_S = 0.1  # crosstalk arrives at most this late
DELAY_BAND_HZ = (200.0, 3400.0)  # delays are measured on the band every phone line carries
DELAY_PEAK = 12.0  # a cross-correlation peak this many times the median magnitude is a real delay
GAIN_PERCENTILE = 25  # the bleed gain: this percentile of (channel - other) over the other's loud frames
GAIN_MIN_FRAMES = 50
JITTER_MARGINS = 2.7  # bleed margin = this many spreads of the bleed level (0.67 from P25 to the median, +2)
GAIN_RANGE_DB = (-60.0, -6.0)
COPY_CORRELATION = 0.9  # channels correlating more than this are copies of one mix
COPY_LEVEL_DB = 6.0  # ... when their speech levels also differ by less than this
SILENT_SPEECH_S = 0.5  # a channel with less VAD speech than this is treated as empty

__all__ = ["BLEED_DB", "BleedResult", "ChannelLevels", "choose_mode", "measure", "remove_bleed"]


class AudioSource(Protocol):
    """What speaker planning reads: ``callscribe.audio.DecodedAudio`` satisfies it."""

    @property
    def channels(self) -> int: ...

    @property
    def duration(self) -> float: ...

    def read(self, channel: int, start: float = 0.0, end: float | None = None) -> np.ndarray: ...


@dataclass
class ChannelLevels:
    """20 ms frame levels (dB) per channel for the whole call, and how each channel's bleed is expected.

    ``aligned[c]`` is the level of the other channels' signal as it arrives on ``c`` (delayed by ``delay_s[c]``),
    ``gain_db[c]`` how far below that the bleed on ``c`` sits.
    """

    db: dict[int, np.ndarray]
    correlation: float  # Pearson correlation of channels 0 and 1 over their loud frames (0 for mono)
    level_diff_db: float  # median per-frame level difference ch0 - ch1 over speech frames
    aligned: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    delay_s: dict[int, float] = field(default_factory=dict)
    gain_db: dict[int, float] = field(default_factory=dict)
    margin_db: dict[int, float] = field(default_factory=dict)  # how far above the gain a frame is still bleed
    _classes: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def frames(self, span: Span) -> slice:
        first = int(span.start / FRAME_S)
        return slice(first, max(first + 1, int(np.ceil(span.end / FRAME_S))))

    def classes(self, channel: int) -> np.ndarray | None:
        """Per-frame QUIET/BLEED/UNSURE/OWN of ``channel`` (see :mod:`callscribe.speakers.bleed`)."""
        if channel not in self.db:
            return None
        if channel not in self._classes:
            other = self.aligned.get(channel)
            gain = self.gain_db.get(channel, -(BLEED_DB + OWN_MARGIN_DB))  # unmeasured: own when > other - 12 dB
            margin = self.margin_db.get(channel, BLEED_MARGIN_DB)
            self._classes[channel] = classify(self.db[channel], other, gain, margin)
        return self._classes[channel]


def frame_db(x: np.ndarray) -> np.ndarray:
    n = len(x) // FRAME
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    frames = x[: n * FRAME].astype(np.float64).reshape(n, FRAME)
    rms = np.sqrt(np.mean(frames * frames, axis=1))
    return np.maximum(20.0 * np.log10(np.maximum(rms, 1e-12)), FLOOR_DB).astype(np.float32)


def estimate_delays(x: np.ndarray, y: np.ndarray) -> tuple[float | None, float | None]:
    """``(delay of x's voice on y, delay of y's voice on x)`` in seconds, from the phase-transform
    cross-correlation peak on each side of zero; ``None`` where no clear peak stands out."""
    n = min(len(x), len(y))
    lags = int(MAX_DELAY_S * SAMPLE_RATE)
    if n <= 4 * lags:
        return None, None
    size = 1 << int(np.ceil(np.log2(2 * n)))
    spec = np.conj(np.fft.rfft(x[:n], size)) * np.fft.rfft(y[:n], size)
    freqs = np.fft.rfftfreq(size, 1.0 / SAMPLE_RATE)
    band = (freqs >= DELAY_BAND_HZ[0]) & (freqs <= DELAY_BAND_HZ[1])  # telephone speech band only
    spec = np.where(band, spec / np.maximum(np.abs(spec), 1e-12), 0.0)
    cc = np.fft.irfft(spec, size)
    window = np.concatenate([cc[-lags:], cc[: lags + 1]])  # lags -lags..+lags
    scale = float(np.median(np.abs(window))) or 1e-12
    late_y = cc[1 : lags + 1]  # y lags x by 1..lags samples: x's voice on y
    late_x = cc[-lags:][::-1]  # x lags y by 1..lags samples: y's voice on x

    def peak(part: np.ndarray) -> float | None:
        k = int(np.argmax(part))
        return (k + 1) / SAMPLE_RATE if part[k] >= DELAY_PEAK * scale else None

    return peak(late_y), peak(late_x)


def _read_late(audio: AudioSource, channel: int, start: float, end: float, delay: float) -> np.ndarray:
    """Samples of ``channel`` as heard ``delay`` seconds late over ``start..end``."""
    lo = start - delay
    x = audio.read(channel, max(0.0, lo), max(0.0, end - delay))
    lead = round(max(0.0, -lo) * SAMPLE_RATE)
    return np.concatenate([np.zeros(lead, np.float32), x]) if lead else x


def _gain(mine: np.ndarray, other: np.ndarray) -> tuple[float, float] | None:
    """``(gain, margin)``: how far below ``other`` the channel sits while the other is loud (mostly bleed-only
    moments), and how far above that a frame may still be called bleed (wider where the bleed level jitters)."""
    m = min(len(mine), len(other))
    mine, other = mine[:m], other[:m]
    talking = other > noise_floor(other) + 10.0
    if talking.sum() < GAIN_MIN_FRAMES:
        return None
    loud = talking & (other >= np.percentile(other[talking], 50))
    if loud.sum() < GAIN_MIN_FRAMES:
        return None
    low, g = np.percentile(mine[loud] - other[loud], [5, GAIN_PERCENTILE])
    spread = float(g - low)  # about one standard deviation of the bleed level around its gain
    margin = float(np.clip(JITTER_MARGINS * spread, MIN_BLEED_MARGIN_DB, BLEED_MARGIN_DB))
    return float(np.clip(g, *GAIN_RANGE_DB)), margin


def measure(audio: AudioSource) -> ChannelLevels:
    """Frame levels of every channel, how alike channels 0 and 1 are, and each channel's expected bleed."""
    db: dict[int, list[np.ndarray]] = {c: [] for c in range(audio.channels)}
    late: dict[int, list[np.ndarray]] = {0: [], 1: []}
    delays: dict[int, float | None] = {}
    num = sx = sy = sxx = syy = 0.0
    n_all = 0
    t = 0.0
    while t < audio.duration:
        end = min(audio.duration, t + BLOCK_S)
        blocks = [audio.read(c, t, end) for c in range(audio.channels)]
        for c, b in enumerate(blocks):
            db[c].append(frame_db(b))
        if audio.channels == 2:
            if not delays:
                d1, d0 = estimate_delays(blocks[0], blocks[1])
                delays = {0: d0, 1: d1}
            for c in (0, 1):
                d = delays[c]
                if d is not None:
                    late[c].append(frame_db(_read_late(audio, 1 - c, t, end, d)[: len(blocks[c])]))
        if audio.channels >= 2:
            n = min(len(blocks[0]), len(blocks[1]))
            x = blocks[0][:n].astype(np.float64)
            y = blocks[1][:n].astype(np.float64)
            num += float(x @ y)
            sx += float(x.sum())
            sy += float(y.sum())
            sxx += float(x @ x)
            syy += float(y @ y)
            n_all += n
        t = end
    levels = {c: np.concatenate(v) if v else np.zeros(0, np.float32) for c, v in db.items()}
    corr = diff = 0.0
    aligned: dict[int, np.ndarray] = {}
    delay_s: dict[int, float] = {}
    gain_db: dict[int, float] = {}
    margin_db: dict[int, float] = {}
    if audio.channels >= 2:
        cov = num - sx * sy / max(n_all, 1)
        var = (sxx - sx * sx / max(n_all, 1)) * (syy - sy * sy / max(n_all, 1))
        corr = float(cov / np.sqrt(var)) if var > 0 else 0.0
        a, b = levels[0], levels[1]
        m = min(len(a), len(b))
        peak = np.maximum(a[:m], b[:m])
        loud = peak > np.percentile(peak, 70) if m else np.zeros(0, bool)
        diff = float(np.median(a[:m][loud] - b[:m][loud])) if loud.any() else 0.0
        n = min(len(v) for v in levels.values())
        for c in levels:
            d = delays.get(c)
            if d is not None and late[c]:
                aligned[c] = np.concatenate(late[c])[:n]
                delay_s[c] = round(d, 4)
                radius = 0
            else:
                aligned[c] = np.max(np.stack([levels[o][:n] for o in levels if o != c]), axis=0)
                radius = DELAY_FRAMES
            aligned[c] = max_filter(aligned[c], radius)
            found = _gain(levels[c][:n], aligned[c])
            if found is not None:
                g, margin = found
                if c not in delay_s:  # no coherent crosstalk found: never trust a gain above the fixed rule's
                    g = min(g, -(BLEED_DB + OWN_MARGIN_DB))
                gain_db[c], margin_db[c] = round(g, 1), round(margin, 1)
        log.debug("bleed model: delays %s s, gains %s dB, margins %s dB", delay_s, gain_db, margin_db)
    return ChannelLevels(levels, corr, diff, aligned, delay_s, gain_db, margin_db)


def speech_seconds(spans: list[Span]) -> float:
    return sum(s.duration for s in spans)


def choose_mode(
    requested: str, levels: ChannelLevels, speech: dict[int, list[Span]]
) -> tuple[str, int | None, list[str]]:
    """``(mode, mix_channel, notes)``: ``split`` is one party per channel, ``mix`` one signal to diarize."""
    notes: list[str] = []
    n = len(levels.db)
    if n < 2:
        return "mono", 0, notes
    loud = {c: float(np.percentile(levels.db[c], 95)) if len(levels.db[c]) else FLOOR_DB for c in levels.db}
    best = max(loud, key=lambda c: loud[c])
    if requested == "mix":  # mixing is done as the file is decoded: picking a channel here would drop the others
        raise ValueError("channels=mix averages the channels as the audio is decoded (prepare with these options)")
    if requested == "split":
        return "split", None, notes
    if requested != "auto":
        raise ValueError(f"channels must be auto, split or mix, not {requested!r}")
    talking = [c for c in range(n) if speech_seconds(speech.get(c, [])) >= SILENT_SPEECH_S]
    if len(talking) <= 1:
        ch = talking[0] if talking else best
        notes.append(f"only channel {ch} carries speech; diarizing it as a mono call")
        return "mix", ch, notes
    if levels.correlation >= COPY_CORRELATION and abs(levels.level_diff_db) < COPY_LEVEL_DB:
        notes.append(
            f"channels are copies (correlation {levels.correlation:.2f}, level difference "
            f"{levels.level_diff_db:+.1f} dB); diarizing channel {best}"
        )
        return "mix", best, notes
    notes.append(
        f"split channels: one party per channel (correlation {levels.correlation:.2f}, "
        f"level difference {levels.level_diff_db:+.1f} dB)"
    )
    return "split", None, notes


def remove_bleed(levels: ChannelLevels, speech: dict[int, list[Span]]) -> BleedResult:
    """Drop the stretches of each channel's speech that are unmistakably the other channels' voices leaking in.

    Stretches with the channel's own voice, or that cannot be told apart by level, are kept (``unsure`` lists
    those without any clear own frame): the text check after recognition settles them.
    """
    classes = {c: cls for c in sorted(levels.db) if (cls := levels.classes(c)) is not None}
    return split_speech(classes, speech)
