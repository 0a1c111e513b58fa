"""The recording a key may hear: the original for the ``pii`` scope, else a copy with a tone over the PII.

The masked stretches (:func:`tone_spans`, the same as the review desk's) are the call's stored redactions
(``--redact pii``) plus what PII redaction finds in its transcript now (a call stored unredacted, or a number a
reviewer typed in a correction); an utterance with a finding but without word times is toned whole. The copy is a
16-bit WAV made by :func:`callscribe.audio_redact.redact_audio` (block by block, memory flat) into
``DATA/audio-redacted/`` as ``<sha256>-c<call id>-<key>.wav``, made once per set of stretches and kept until the
call is deleted.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from callscribe.model import Transcript

_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()


class _Span:
    def __init__(self, start: float, end: float) -> None:
        self.start, self.end = start, end


def tone_spans(t: Transcript, found: Sequence[Any], stored: Sequence[Any]) -> list[tuple[float, float]]:
    """Audio to tone out of ``t``: its ``stored`` redactions and the PII redaction ``found`` in it now; an utterance
    without word times is toned whole (a character-share estimate of where a number was said is not safe enough).
    The desk and the API both mask with this."""
    from callscribe.audio_redact import merge_spans
    from callscribe.model import Span
    from callscribe.text.pii import SPAN_PAD_S

    spans: list[Span] = [Span(r.start, max(r.start, r.end)) for r in stored]
    for s in found:
        u = t.utterances[s.utterance] if s.utterance is not None else None
        if u is not None and not u.words:
            spans.append(Span(max(0.0, u.start - SPAN_PAD_S), u.end + SPAN_PAD_S))
        else:
            spans.append(Span(s.start, max(s.start, s.end)))
    return merge_spans(spans)


def mask_spans(transcript: dict[str, Any], corrections: Sequence[Any] = ()) -> list[tuple[float, float]]:
    """The stretches of a stored transcript (its JSON, with the reviewers' ``corrections``) to tone out."""
    from callscribe.server.ui.desk import corrected
    from callscribe.text.pii import DEFAULT_MASK
    from callscribe.text.pii_transcript import redact_transcript

    t, _ = corrected(transcript, corrections)
    _, found = redact_transcript(t, DEFAULT_MASK)
    return tone_spans(t, found, t.redactions)


def _key(spans: Sequence[tuple[float, float]]) -> str:
    text = json.dumps([[round(a, 3), round(b, 3)] for a, b in spans])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def redacted_file(folder: Path, sha256: str, call_id: int, source: Path, spans: Sequence[tuple[float, float]]) -> Path:
    """``source`` with a tone over ``spans``, made once (atomically: the writer renames a finished temp file)."""
    from callscribe.audio_redact import redact_audio

    mine = f"{sha256}-c{call_id}-"
    out = folder / f"{mine}{_key(spans)}.wav"
    with _guard:
        lock = _locks.setdefault(mine, threading.Lock())
    with lock:
        if out.is_file():
            return out
        folder.mkdir(parents=True, exist_ok=True)
        redact_audio(source, [_Span(a, b) for a, b in spans], out)
        for old in folder.glob(f"{mine}*.wav"):  # this call's outdated copy (its transcript changed) goes
            if old != out:
                old.unlink(missing_ok=True)
    return out


def drop(folder: Path, sha256: str) -> None:
    """Remove the masked copies of a recording (its call was deleted)."""
    if folder.is_dir():
        for old in folder.glob(f"{sha256}-*.wav"):
            old.unlink(missing_ok=True)
