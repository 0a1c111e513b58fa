"""Reading ``/v1/audio/transcriptions`` answers: ``verbose_json`` / ``json`` bodies or plain text -> clip segments."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from callscribe.engines.base import EngineSegment
from callscribe.engines.qwen3_lang import NAME_TO_CODE
from callscribe.model import Word

# Qwen3-ASR served raw starts its text with "language English<asr_text>" ("language None" on silence).
_QWEN_TAG = re.compile(r"^\s*language\s+([A-Za-z,]+)\s*<asr_text>", re.IGNORECASE)


@dataclass(frozen=True)
class Reply:
    """One parsed transcription response."""

    text: str
    language: str | None
    segments: tuple[EngineSegment, ...]


def language_of(value: Any) -> str | None:
    """A server's language (``"en"``, ``"english"``, ``"Chinese"``) -> our code; anything else -> ``None``."""
    if not value or not isinstance(value, str):
        return None
    v = value.strip().lower()
    return v if len(v) <= 3 else NAME_TO_CODE.get(v)


def _clamp(t: float, duration: float) -> float:
    """Server times kept inside the clip (some servers pad the audio and report times past its end)."""
    return round(min(max(t, 0.0), duration), 3)


def strip_language_tag(text: str) -> tuple[str | None, str]:
    """``"language English<asr_text>Hello"`` -> ``("en", "Hello")``; text without the tag is returned as it is."""
    match = _QWEN_TAG.match(text)
    if match is None:
        return None, text.strip()
    return language_of(match.group(1).split(",")[0]), text[match.end() :].strip()


def parse_reply(body: Any, duration: float) -> Reply:
    """A ``verbose_json`` / ``json`` body (dict) or ``text`` body (str) -> segments relative to the clip."""
    if isinstance(body, str):
        tagged, text = strip_language_tag(body)
        return Reply(text, tagged, (EngineSegment(0.0, round(duration, 3), text),) if text else ())
    tagged, text = strip_language_tag(str(body.get("text", "")))
    words = []
    for w in body.get("words") or ():
        start = _clamp(float(w.get("start", 0.0)), duration)
        end = max(start, _clamp(float(w.get("end", 0.0)), duration))
        words.append(Word(str(w.get("word", "")).strip(), start, end))
    taken = 0  # words go to the first segment whose span holds their midpoint, in order
    segments: list[EngineSegment] = []
    raw_segments = body.get("segments") or ()
    for s in raw_segments:
        start = _clamp(float(s.get("start", 0.0)), duration)
        end = max(start, _clamp(float(s.get("end", duration)), duration))
        inside = tuple(w for w in words[taken:] if (w.start + w.end) / 2 <= end)
        taken += len(inside)
        logprob = s.get("avg_logprob")
        confidence = round(math.exp(float(logprob)), 4) if logprob is not None else None
        seg_text = strip_language_tag(str(s.get("text", "")))[1]
        if seg_text:
            segments.append(EngineSegment(start, end, seg_text, inside, confidence))
    if not raw_segments and text:
        start, end = (words[0].start, words[-1].end) if words else (0.0, round(duration, 3))
        segments.append(EngineSegment(start, end, text, tuple(words)))
    return Reply(text, language_of(body.get("language")) or tagged, tuple(segments))


__all__ = ["Reply", "language_of", "parse_reply", "strip_language_tag"]
