"""RTTM: the NIST "who spoke when" format that diarization scorers read.

One line per utterance: ``SPEAKER <file> 1 <start> <duration> <NA> <NA> <speaker> <NA> <NA>``. Fields are
space-separated, so spaces inside the file id or a speaker name become underscores.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from callscribe.model import Span, Transcript

_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class RttmTurn:
    file: str
    span: Span
    speaker: str


def _token(text: str) -> str:
    return _SPACE.sub("_", text.strip()) or "unknown"


def write_rttm(transcript: Transcript) -> str:
    """The transcript's utterances as RTTM lines, in time order (speaker = ``speaker`` or ``ch<channel>``)."""
    file_id = _token(Path(transcript.call.path).stem or transcript.call.id)
    lines = []
    for u in sorted(transcript.utterances, key=lambda x: (x.start, x.channel)):
        if u.duration <= 0:
            continue
        who = _token(u.speaker or f"ch{u.channel}")
        lines.append(f"SPEAKER {file_id} 1 {u.start:.3f} {u.duration:.3f} <NA> <NA> {who} <NA> <NA>")
    return "\n".join(lines) + ("\n" if lines else "")


def parse_rttm(text: str, source: str = "<rttm>") -> list[RttmTurn]:
    """``SPEAKER`` lines of an RTTM text (other line types are skipped)."""
    turns = []
    for n, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields or fields[0] != "SPEAKER":
            continue
        if len(fields) < 8:
            raise ValueError(f"{source}:{n}: RTTM SPEAKER line needs 8+ fields, got {len(fields)}")
        try:
            start, dur = float(fields[3]), float(fields[4])
        except ValueError:
            raise ValueError(f"{source}:{n}: bad start/duration {fields[3]!r} {fields[4]!r}") from None
        turns.append(RttmTurn(fields[1], Span(start, start + max(0.0, dur)), fields[7]))
    return turns
