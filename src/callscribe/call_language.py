"""One language per call when none is given, asked of the engine once, before the call's clips are heard.

An engine that detects the language itself on whatever clips an engine call holds reads a call differently
depending on which other calls share its engine calls (and the Ray executor groups calls differently from the
local one). When the engine can name a clip's language (:class:`~callscribe.engines.base.DetectsLanguage`), the
pipeline gives it a probe of the call instead: the channel with the most speech, from its longest stretch on, speech
only, up to :data:`PROBE_S`. Every clip of the call then carries the answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import replace

import numpy as np

from callscribe.engines.base import SAMPLE_RATE, Clip, DetectsLanguage
from callscribe.model import Span
from callscribe.pipeline_types import _Call, one_line

log = logging.getLogger("callscribe")

PROBE_S = 30.0  # Whisper's window; a longer probe would be cut by the engine anyway


def probe(call_id: str, speech: dict[int, list[Span]], read: object) -> Clip | None:
    """The call's language probe, or ``None`` without speech. ``read(channel, first, last)`` gives samples."""
    channels = [ch for ch, spans in speech.items() if spans]
    if not channels:
        return None
    channel = max(channels, key=lambda ch: (sum(s.duration for s in speech[ch]), -ch))
    spans = sorted(speech[channel], key=lambda s: s.start)
    first = max(range(len(spans)), key=lambda i: (spans[i].duration, -i))
    pieces: list[np.ndarray] = []
    left = PROBE_S
    for span in spans[first:] + spans[:first]:
        take = min(span.duration, left)
        if take <= 0:
            break
        start = round(span.start * SAMPLE_RATE)
        pieces.append(read(channel, start, start + round(take * SAMPLE_RATE)))  # type: ignore[operator]
        left -= take
    audio = np.concatenate(pieces).astype(np.float32, copy=False)
    return Clip(call_id, channel, spans[first].start, audio) if len(audio) else None


def tagged(clips: Iterator[Clip], language: str) -> Iterator[Clip]:
    """``clips`` with the call's language on each."""
    for clip in clips:
        yield replace(clip, language=language)


def tag(call: _Call, engine: DetectsLanguage) -> float:
    """Ask ``engine`` for ``call``'s language and put it on the call's clips; the seconds it took.

    When the engine cannot say, the clips go untagged and the engine detects as it does without a probe."""
    t0 = time.perf_counter()
    clip = probe(call.info.id, call.plan.speech, call.audio.read_frames)
    try:
        language = engine.detect_language(clip) if clip is not None else None
    except Exception as exc:
        log.warning(
            "%s: language detection failed, the engine detects per clip group: %s", call.info.path, one_line(exc)
        )
        language = None
    if language:
        call.clips = tagged(call.clips, language)
    return time.perf_counter() - t0
