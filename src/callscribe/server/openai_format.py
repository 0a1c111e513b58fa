"""A :class:`~callscribe.model.Transcript` in the shapes of OpenAI's transcription API.

``json`` ``{"text", "usage"}``; ``verbose_json`` adds ``duration``, ``language``, ``segments`` (one per utterance, with
callscribe's ``channel``/``speaker``/``role`` beside OpenAI's fields) and ``words`` when asked for; ``text`` plain;
``srt``/``vtt`` from callscribe's own writers; ``stream`` as server-sent ``transcript.text.delta`` events (one per
utterance) and a closing ``transcript.text.done``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

from callscribe.model import QAResult, Transcript, Utterance, join_texts
from callscribe.outputs.writers import WRITERS

RESPONSE_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
TEXT_TYPES = {"text": "text/plain", "srt": "application/x-subrip", "vtt": "text/vtt"}


def _usage(t: Transcript) -> dict[str, Any]:
    return {"type": "duration", "seconds": round(t.call.duration, 3)}


def _avg_logprob(u: Utterance) -> float:
    """The utterance's confidence as a log probability (mean of its words' when the engine gave no confidence)."""
    probs = [w.probability for w in u.words if w.probability is not None]
    p = u.confidence if u.confidence is not None else (sum(probs) / len(probs) if probs else None)
    return round(math.log(max(p, 1e-6)), 4) if p is not None else 0.0


def segment(i: int, u: Utterance) -> dict[str, Any]:
    return {
        "id": i,
        "seek": 0,
        "start": round(u.start, 3),
        "end": round(u.end, 3),
        "text": u.text,
        "tokens": [],
        "temperature": 0.0,
        "avg_logprob": _avg_logprob(u),
        "compression_ratio": 0.0,
        "no_speech_prob": 0.0,
        "channel": u.channel,
        "speaker": u.speaker,
        "role": u.role,
    }


def as_json(t: Transcript) -> dict[str, Any]:
    return {"text": t.text, "usage": _usage(t)}


def as_verbose(t: Transcript, *, words: bool, segments: bool = True, qa: QAResult | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "task": "transcribe",
        "language": t.language or "",
        "duration": round(t.call.duration, 3),
        "text": t.text,
        "usage": _usage(t),
    }
    if segments:
        body["segments"] = [segment(i, u) for i, u in enumerate(t.utterances)]
    if words:
        ordered = sorted((w for u in t.utterances for w in u.words), key=lambda w: (w.start, w.end))
        body["words"] = [{"word": w.text, "start": round(w.start, 3), "end": round(w.end, 3)} for w in ordered]
    if qa is not None:
        body["qa"] = qa.to_dict()
    return body


def as_text(t: Transcript, response_format: str) -> str:
    if response_format == "text":
        return t.text + "\n"
    return WRITERS[response_format].render(t)


def deltas(t: Transcript) -> Iterator[str]:
    """Pieces whose concatenation is ``t.text``: one per utterance, with the joining space where one belongs."""
    shown = ""
    texts: list[str] = []
    for u in t.utterances:
        if not u.text.strip():
            continue
        texts.append(u.text)
        joined = join_texts(texts)
        yield joined[len(shown) :]
        shown = joined


def sse(event: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(event, ensure_ascii=False)}\n\n".encode()


def stream_events(t: Transcript) -> Iterator[bytes]:
    for piece in deltas(t):
        yield sse({"type": "transcript.text.delta", "delta": piece})
    yield sse({"type": "transcript.text.done", "text": t.text})
