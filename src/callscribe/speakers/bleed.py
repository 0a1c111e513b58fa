"""Which frames of a split channel are the other party's voice leaking in (crosstalk), and which are its own.

Crosstalk is the other channel's signal, attenuated by a roughly constant gain and a little late. So each
channel's level is compared, frame by frame, with what the bleed *would* be at that moment: the other channel's
level (aligned by the measured delay, see :func:`callscribe.speakers.channels.measure`) plus the measured bleed
gain. A frame is

- ``OWN`` when it is clearly louder than that expected bleed (``OWN_MARGIN_DB``) and above the channel's noise;
- ``BLEED`` only when it is unmistakably bleed: no louder than the expected bleed plus a margin (1.5-3 dB, from
  how steadily the bleed follows the other channel on this call) *and* the other channel carries speech right then;
- ``QUIET`` when it sits at the channel's noise floor (silence counts for neither side);
- ``UNSURE`` otherwise (a quiet reply under loud speech, a line whose gain drifts).

Before ASR only stretches made of bleed (and quiet) frames are removed. A stretch with own or unsure frames goes
to the engine; after ASR, :func:`callscribe.speakers.stage.drop_text_bleed` drops an utterance only when its text
also repeats what the other channel said then and it holds next to no own frames.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import numpy as np

from callscribe.model import Span

log = logging.getLogger("callscribe")

FRAME_S = 0.02
OWN_MARGIN_DB = 6.0  # own voice: this much above the expected bleed
BLEED_MARGIN_DB = 3.0  # bleed: at most this much above the expected bleed (less where the bleed level is steady)
MIN_BLEED_MARGIN_DB = 1.5
NOISE_PERCENTILE = 5
SPEECH_OVER_NOISE_DB = 6.0  # frames closer than this to the channel's noise floor are quiet
OTHER_SPEECH_OVER_NOISE_DB = 10.0  # the other channel "carries speech" this far above its noise floor
ALIGN_SLACK_FRAMES = 1  # expected bleed taken as the max over ±1 frame (sub-frame delay, echo smear)
OWN_MIN_S = 0.12  # a kept piece needs at least this much own or unsure time
OWN_BRIDGE_S = 0.3  # kept frames closer than this join into one piece
OWN_PAD_S = 0.15  # ... which is padded by this much (quiet word ends under the other party's voice)
BLEED_MIN_S = 0.1  # a stretch between kept pieces is removed only when it holds this much bleed
TALK_BRIDGE_S = 0.5  # a party holds the floor across pauses this short (commas) when telling double-talk
DOUBLE_TALK_MIN_S = 0.1

QUIET, BLEED, UNSURE, OWN = 0, 1, 2, 3


@dataclass
class BleedResult:
    speech: dict[int, list[Span]]
    removed: dict[int, list[Span]] = field(default_factory=dict)
    overlaps: list[Span] = field(default_factory=list)  # stretches where two channels carry their own speech
    unsure: dict[int, list[Span]] = field(default_factory=dict)  # kept pieces without a clear own frame

    @property
    def removed_seconds(self) -> float:
        return sum(s.duration for spans in self.removed.values() for s in spans)


def max_filter(x: np.ndarray, radius: int) -> np.ndarray:
    if radius <= 0 or len(x) == 0:
        return x
    padded = np.pad(x, radius, mode="edge")
    return np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1).max(axis=1)


def noise_floor(db: np.ndarray) -> float:
    """A channel's noise level: the 5th percentile of its frames (digital silence included). Low, because on a
    call the other party's crosstalk fills most of a channel's pauses."""
    return float(np.percentile(db, NOISE_PERCENTILE)) if len(db) else -90.0


def classify(
    mine: np.ndarray, other: np.ndarray | None, gain_db: float, bleed_margin_db: float = BLEED_MARGIN_DB
) -> np.ndarray:
    """Per-frame ``QUIET``/``BLEED``/``UNSURE``/``OWN`` of a channel, given the other channel's aligned level."""
    n = len(mine)
    quiet = mine <= noise_floor(mine) + SPEECH_OVER_NOISE_DB
    out = np.full(n, OWN, dtype=np.int8)
    if other is not None:
        other = other[:n]
        expected = max_filter(other, ALIGN_SLACK_FRAMES) + gain_db
        talking = other > noise_floor(other) + OTHER_SPEECH_OVER_NOISE_DB
        out[mine <= expected + OWN_MARGIN_DB] = UNSURE
        out[(mine <= expected + bleed_margin_db) & talking] = BLEED
    out[quiet] = QUIET
    return out


def pieces(keep: np.ndarray, offset: int, min_s: float = OWN_MIN_S, bridge_s: float = OWN_BRIDGE_S) -> list[Span]:
    """Runs of ``keep`` frames, bridged over gaps up to ``bridge_s``, with at least ``min_s`` of kept frames."""
    idx = np.flatnonzero(keep)
    if len(idx) == 0:
        return []
    bridge = round(bridge_s / FRAME_S)
    breaks = np.flatnonzero(np.diff(idx) > bridge)
    starts = np.concatenate([[idx[0]], idx[breaks + 1]])
    ends = np.concatenate([idx[breaks], [idx[-1]]]) + 1
    out = []
    for a, b in zip(starts, ends, strict=True):
        if keep[a:b].sum() * FRAME_S >= min_s:
            out.append(Span(round(float(offset + a) * FRAME_S, 3), round(float(offset + b) * FRAME_S, 3)))
    return out


def _frames(span: Span) -> slice:
    first = int(span.start / FRAME_S)
    return slice(first, max(first + 1, int(np.ceil(span.end / FRAME_S))))


def join(spans: list[Span]) -> list[Span]:
    out: list[Span] = []
    for s in sorted(spans):
        if out and s.start <= out[-1].end:
            out[-1] = out[-1].union(s)
        else:
            out.append(s)
    return out


def subtract(span: Span, parts: list[Span]) -> list[Span]:
    out: list[Span] = []
    t = span.start
    for p in parts:
        if p.start - t > FRAME_S:
            out.append(Span(t, p.start))
        t = max(t, p.end)
    if span.end - t > FRAME_S:
        out.append(Span(t, span.end))
    return out


def split_speech(classes: dict[int, np.ndarray], speech: dict[int, list[Span]]) -> BleedResult:
    """Each channel's speech spans without the stretches made only of bleed (and silence)."""
    chans = sorted(classes)
    n = min((len(classes[c]) for c in chans), default=0)
    kept: dict[int, list[Span]] = {}
    removed: dict[int, list[Span]] = {}
    unsure: dict[int, list[Span]] = {}
    for c in chans:
        cls = classes[c][:n]
        kept[c], removed[c], unsure[c] = [], [], []
        for span in speech.get(c, []):
            sl = _frames(span)
            a, b = sl.start, min(sl.stop, n)
            if b <= a:
                kept[c].append(span)
                continue
            part = cls[a:b]
            found = join(
                [
                    Span(max(span.start, p.start - OWN_PAD_S), min(span.end, p.end + OWN_PAD_S))
                    for p in pieces(part >= UNSURE, a)
                ]
            )
            gaps = subtract(span, found)
            # a gap holding (next to) no bleed is a pause or VAD padding: it stays with the speech around it
            cut = [g for g in gaps if np.sum(cls[_frames(g)] == BLEED) * FRAME_S >= BLEED_MIN_S]
            found = join(found + [g for g in gaps if g not in cut])
            unsure[c] += [p for p in found if not np.any(cls[_frames(p)] == OWN)]
            kept[c].extend(found)
            removed[c].extend(cut)
    overlaps = double_talk({c: classes[c][:n] for c in chans})
    for c in chans:
        if removed[c]:
            log.debug("channel %d: %.2f s of bleed removed", c, sum(s.duration for s in removed[c]))
    return BleedResult(
        kept,
        {c: r for c, r in removed.items() if r},
        overlaps,
        {c: u for c, u in unsure.items() if u},
    )


def own_share(classes: np.ndarray | None, span: Span) -> float:
    """Share of a stretch's non-quiet frames that are the channel's own voice (1.0 when unknown)."""
    if classes is None or not len(classes):
        return 1.0
    part = classes[_frames(span)]
    loud = part[part != QUIET]
    return float(np.mean(loud == OWN)) if len(loud) else 0.0


_TOKEN = re.compile(r"[a-z0-9']+|[^\W\d_a-z]", re.IGNORECASE)


def text_units(text: str) -> list[str]:
    """Words of Latin text and single characters of CJK text, lower-cased, punctuation dropped."""
    out = []
    for m in _TOKEN.finditer(text.lower()):
        tok = m.group(0)
        if tok.isascii() or len(tok) == 1:
            out.append(tok)
    return out


def repeat_share(text: str, other: str) -> float:
    """Share of ``text``'s words (or CJK characters) found, in order, in ``other``: 1.0 when it repeats it."""
    from rapidfuzz.distance import LCSseq

    a, b = text_units(text), text_units(other)
    if not a or not b:
        return 0.0
    return LCSseq.similarity(a, b) / len(a)


def talking(cls: np.ndarray) -> np.ndarray:
    """Frames where the channel's party is talking: its own-voice frames joined over short gaps (syllables)."""
    out = np.zeros(len(cls), dtype=bool)
    for p in pieces(cls == OWN, 0, bridge_s=TALK_BRIDGE_S):
        out[_frames(p)] = True
    return out


def double_talk(classes: dict[int, np.ndarray]) -> list[Span]:
    """Stretches where at least two channels' parties talk at once."""
    if len(classes) < 2:
        return []
    n = min(len(c) for c in classes.values())
    both = np.sum(np.stack([talking(c[:n]) for c in classes.values()]), axis=0) >= 2
    return pieces(both, 0, min_s=DOUBLE_TALK_MIN_S)
