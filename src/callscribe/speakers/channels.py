"""Split-channel calls: are the channels separate parties or copies, and which speech on a channel is bleed.

Levels are compared frame by frame (20 ms RMS, in dB). On a split-channel call each party's own voice reaches
the other party's channel only as crosstalk or echo, typically 15-30 dB down; two people talking at once each
dominate their own channel. A frame of channel *c* is bleed when *c* sits more than ``BLEED_DB`` (12 dB) below
the loudest of the other channels (compared over ±``DELAY_FRAMES`` to allow for line delay). 12 dB sits well below
the level gap between two real parties on the same recorder (parties seldom differ by more than ~6-8 dB after
the phone network's gain control) and well above the weakest bleed seen in practice (about -15 dB), so real
overlapping speech is kept and crosstalk is dropped. Speech in a span survives where the channel has its own
frames; pieces made only of bleed frames are removed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from callscribe.model import Span

log = logging.getLogger("callscribe")

SAMPLE_RATE = 16_000
FRAME_S = 0.02
FRAME = int(SAMPLE_RATE * FRAME_S)
BLOCK_S = 60.0  # channels are read in blocks this long, so hour-long calls stay small in memory
FLOOR_DB = -90.0
BLEED_DB = 12.0
DELAY_FRAMES = 2  # other channel's level is taken as its max over ±40 ms (line delay, echo)
OWN_MIN_S = 0.12  # a kept piece needs at least this much own-voice time
OWN_BRIDGE_S = 0.3  # own-voice frames closer than this join into one piece
OWN_PAD_S = 0.1
COPY_CORRELATION = 0.9  # channels correlating more than this are copies of one mix
COPY_LEVEL_DB = 6.0  # ... when their speech levels also differ by less than this
SILENT_SPEECH_S = 0.5  # a channel with less VAD speech than this is treated as empty


class AudioSource(Protocol):
    """What speaker planning reads: ``callscribe.audio.DecodedAudio`` satisfies it."""

    @property
    def channels(self) -> int: ...

    @property
    def duration(self) -> float: ...

    def read(self, channel: int, start: float = 0.0, end: float | None = None) -> np.ndarray: ...


@dataclass
class ChannelLevels:
    """20 ms frame levels (dB) per channel for the whole call."""

    db: dict[int, np.ndarray]
    correlation: float  # Pearson correlation of channels 0 and 1 over their loud frames (0 for mono)
    level_diff_db: float  # median per-frame level difference ch0 - ch1 over speech frames

    def frames(self, span: Span) -> slice:
        first = int(span.start / FRAME_S)
        return slice(first, max(first + 1, int(np.ceil(span.end / FRAME_S))))


@dataclass
class BleedResult:
    speech: dict[int, list[Span]]
    removed: dict[int, list[Span]] = field(default_factory=dict)
    overlaps: list[Span] = field(default_factory=list)  # stretches where two channels carry their own speech

    @property
    def removed_seconds(self) -> float:
        return sum(s.duration for spans in self.removed.values() for s in spans)


def frame_db(x: np.ndarray) -> np.ndarray:
    n = len(x) // FRAME
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    frames = x[: n * FRAME].astype(np.float64).reshape(n, FRAME)
    rms = np.sqrt(np.mean(frames * frames, axis=1))
    return np.maximum(20.0 * np.log10(np.maximum(rms, 1e-12)), FLOOR_DB).astype(np.float32)


def measure(audio: AudioSource) -> ChannelLevels:
    """Frame levels of every channel, and how alike channels 0 and 1 are."""
    db: dict[int, list[np.ndarray]] = {c: [] for c in range(audio.channels)}
    num = sx = sy = sxx = syy = 0.0
    n_all = 0
    t = 0.0
    while t < audio.duration:
        end = min(audio.duration, t + BLOCK_S)
        blocks = [audio.read(c, t, end) for c in range(audio.channels)]
        for c, b in enumerate(blocks):
            db[c].append(frame_db(b))
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
    if audio.channels >= 2:
        cov = num - sx * sy / max(n_all, 1)
        var = (sxx - sx * sx / max(n_all, 1)) * (syy - sy * sy / max(n_all, 1))
        corr = float(cov / np.sqrt(var)) if var > 0 else 0.0
        a, b = levels[0], levels[1]
        m = min(len(a), len(b))
        peak = np.maximum(a[:m], b[:m])
        loud = peak > np.percentile(peak, 70) if m else np.zeros(0, bool)
        diff = float(np.median(a[:m][loud] - b[:m][loud])) if loud.any() else 0.0
    return ChannelLevels(levels, corr, diff)


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
    if requested == "mix":
        notes.append(f"channels mixed by request; diarizing channel {best}")
        return "mix", best, notes
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


def _max_filter(x: np.ndarray, radius: int) -> np.ndarray:
    if radius <= 0 or len(x) == 0:
        return x
    padded = np.pad(x, radius, mode="edge")
    return np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1).max(axis=1)


def _pieces(own: np.ndarray, offset: int) -> list[Span]:
    """Runs of own-voice frames, bridged over short gaps and padded, as spans in seconds."""
    idx = np.flatnonzero(own)
    if len(idx) == 0:
        return []
    bridge = round(OWN_BRIDGE_S / FRAME_S)
    breaks = np.flatnonzero(np.diff(idx) > bridge)
    starts = np.concatenate([[idx[0]], idx[breaks + 1]])
    ends = np.concatenate([idx[breaks], [idx[-1]]]) + 1
    out = []
    for a, b in zip(starts, ends, strict=True):
        if own[a:b].sum() * FRAME_S >= OWN_MIN_S:
            out.append(Span(round(float(offset + a) * FRAME_S, 3), round(float(offset + b) * FRAME_S, 3)))
    return out


def remove_bleed(levels: ChannelLevels, speech: dict[int, list[Span]]) -> BleedResult:
    """Drop the parts of each channel's speech spans that are only the other channels' voices leaking in."""
    chans = sorted(levels.db)
    n = min(len(levels.db[c]) for c in chans)
    others_max = {}
    for c in chans:
        rest = [levels.db[o][:n] for o in chans if o != c]
        others_max[c] = _max_filter(np.max(np.stack(rest), axis=0), DELAY_FRAMES) if rest else None
    kept: dict[int, list[Span]] = {}
    removed: dict[int, list[Span]] = {}
    own_frames: dict[int, np.ndarray] = {}
    for c in chans:
        mine = levels.db[c][:n]
        other = others_max[c]
        own_all = np.ones(n, dtype=bool) if other is None else mine > other - BLEED_DB
        own_frames[c] = np.zeros(n, dtype=bool)
        kept[c] = []
        removed[c] = []
        for span in speech.get(c, []):
            sl = levels.frames(span)
            a, b = sl.start, min(sl.stop, n)
            if b <= a:
                kept[c].append(span)
                continue
            pieces = [
                Span(max(span.start, p.start - OWN_PAD_S), min(span.end, p.end + OWN_PAD_S))
                for p in _pieces(own_all[a:b], a)
            ]
            pieces = _join(pieces)
            for p in pieces:
                own_frames[c][levels.frames(p)] = True
            kept[c].extend(pieces)
            removed[c].extend(_subtract(span, pieces))
    overlaps: list[Span] = []
    if len(chans) >= 2:
        both = np.sum(np.stack([own_frames[c] for c in chans]), axis=0) >= 2
        overlaps = _pieces(both, 0)
    for c in chans:
        if removed[c]:
            log.debug("channel %d: %.2f s of bleed removed", c, speech_seconds(removed[c]))
    return BleedResult(kept, {c: r for c, r in removed.items() if r}, overlaps)


def _join(spans: list[Span]) -> list[Span]:
    out: list[Span] = []
    for s in sorted(spans):
        if out and s.start <= out[-1].end:
            out[-1] = out[-1].union(s)
        else:
            out.append(s)
    return out


def _subtract(span: Span, pieces: list[Span]) -> list[Span]:
    out: list[Span] = []
    t = span.start
    for p in pieces:
        if p.start - t > FRAME_S:
            out.append(Span(t, p.start))
        t = max(t, p.end)
    if span.end - t > FRAME_S:
        out.append(Span(t, span.end))
    return out
