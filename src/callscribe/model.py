"""The data model: what every stage takes and returns.

Frozen dataclasses, JSON round-trip through :func:`to_dict` / ``from_dict``. The JSON written to disk is
``dataclasses.asdict`` of a :class:`Transcript` plus ``schema_version``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1

ROLES = ("agent", "customer", "ivr", "other")


@dataclass(frozen=True, order=True)
class Span:
    """A stretch of time in seconds, ``start <= end``."""

    start: float
    end: float

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"span ends before it starts: {self.start} > {self.end}")

    @property
    def duration(self) -> float:
        return self.end - self.start

    def overlaps(self, other: Span) -> bool:
        return self.start < other.end and other.start < self.end

    def intersection(self, other: Span) -> float:
        """Seconds shared by both spans (0 when they do not overlap)."""
        return max(0.0, min(self.end, other.end) - max(self.start, other.start))

    def gap(self, other: Span) -> float:
        """Seconds of silence between the two spans (0 when they overlap or touch)."""
        return max(0.0, max(self.start, other.start) - min(self.end, other.end))

    def union(self, other: Span) -> Span:
        return Span(min(self.start, other.start), max(self.end, other.end))


@dataclass(frozen=True)
class Word:
    text: str
    start: float
    end: float
    probability: float | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Word:
        return cls(**d)


@dataclass(frozen=True)
class Utterance:
    """One stretch of speech by one party, with its text."""

    start: float
    end: float
    channel: int
    text: str
    speaker: str | None = None
    role: str | None = None
    words: tuple[Word, ...] = ()
    confidence: float | None = None
    language: str | None = None
    overlap: bool = False
    flags: tuple[str, ...] = ()

    @property
    def span(self) -> Span:
        return Span(self.start, self.end)

    @property
    def duration(self) -> float:
        return self.end - self.start

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Utterance:
        d = dict(d)
        d["words"] = tuple(Word.from_dict(w) for w in d.get("words", ()))
        d["flags"] = tuple(d.get("flags", ()))
        return cls(**d)


@dataclass(frozen=True)
class CallInfo:
    id: str
    path: str
    sha256: str
    duration: float
    sample_rate: int
    channels: int
    codec: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CallInfo:
        return cls(**d)


@dataclass(frozen=True)
class Speaker:
    """A party in the call: a channel of a split-channel call or a cluster of a mono one."""

    id: str
    channel: int | None = None
    role: str | None = None
    role_confidence: float | None = None
    evidence: tuple[str, ...] = ()
    talk_time: float = 0.0

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Speaker:
        d = dict(d)
        d["evidence"] = tuple(d.get("evidence", ()))
        return cls(**d)


@dataclass(frozen=True)
class Redaction:
    """A stretch of a call whose words were redacted (what kind, never what it said)."""

    start: float
    end: float
    kind: str
    channel: int | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Redaction:
        return cls(**d)


@dataclass(frozen=True)
class TermHit:
    """A glossary term found in a call: where, and what supports it (``unbiased``: heard without the glossary bias
    too; ``sounds-like``: the unbiased reading sounds the same; ``correction``: a known mis-hearing was rewritten)."""

    term: str
    start: float
    end: float
    channel: int
    support: str = ""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TermHit:
        return cls(**d)


@dataclass(frozen=True)
class Transcript:
    call: CallInfo
    utterances: tuple[Utterance, ...]
    engine: str
    language: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    speakers: tuple[Speaker, ...] = ()
    hotwords_found: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    redactions: tuple[Redaction, ...] = ()
    terms: tuple[TermHit, ...] = ()  # glossary terms found, with their times
    schema_version: int = SCHEMA_VERSION

    @property
    def text(self) -> str:
        return join_texts(u.text for u in self.utterances)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Transcript:
        version = d.get("schema_version", SCHEMA_VERSION)
        if version > SCHEMA_VERSION:
            raise ValueError(f"transcript schema_version {version} is newer than this callscribe ({SCHEMA_VERSION})")
        d = dict(d)
        d["call"] = CallInfo.from_dict(d["call"])
        d["utterances"] = tuple(Utterance.from_dict(u) for u in d.get("utterances", ()))
        d["speakers"] = tuple(Speaker.from_dict(s) for s in d.get("speakers", ()))
        d["hotwords_found"] = tuple(d.get("hotwords_found", ()))
        d["notes"] = tuple(d.get("notes", ()))
        d["redactions"] = tuple(Redaction.from_dict(r) for r in d.get("redactions", ()))
        d["terms"] = tuple(TermHit.from_dict(h) for h in d.get("terms", ()))
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> Transcript:
        return cls.from_dict(json.loads(text))


@dataclass(frozen=True)
class RuleHit:
    """A place in a call that a scorecard rule points at."""

    rule: str
    utterance: int | None
    start: float
    end: float
    text: str
    low_confidence: bool = False

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RuleHit:
        return cls(**d)


@dataclass(frozen=True)
class RuleResult:
    id: str
    description: str
    passed: bool
    points: float
    earned: float
    hits: tuple[RuleHit, ...] = ()
    detail: str = ""
    graded: bool = True  # False: the rule was not graded (e.g. roles unsure); it scores nothing either way

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RuleResult:
        d = dict(d)
        d["hits"] = tuple(RuleHit.from_dict(h) for h in d.get("hits", ()))
        return cls(**d)


@dataclass(frozen=True)
class QAResult:
    call_id: str
    metrics: dict[str, Any]
    rules: tuple[RuleResult, ...]
    score: float
    max_score: float
    needs_review: bool
    review_reasons: tuple[str, ...] = ()
    sentiment: dict[str, Any] = field(default_factory=dict)
    scorecard: str = ""
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QAResult:
        d = dict(d)
        d["rules"] = tuple(RuleResult.from_dict(r) for r in d.get("rules", ()))
        d["review_reasons"] = tuple(d.get("review_reasons", ()))
        return cls(**d)


def to_dict(obj: Any) -> dict[str, Any]:
    """``dataclasses.asdict`` with tuples turned into lists, ready for JSON."""
    return json.loads(json.dumps(dataclasses.asdict(obj), ensure_ascii=False))


def is_cjk(ch: str) -> bool:
    code = ord(ch)
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0x20000 <= code <= 0x2A6DF
        or 0xF900 <= code <= 0xFAFF
        or 0x3000 <= code <= 0x303F
        or 0xFF00 <= code <= 0xFFEF
    )


def join_texts(parts: Any) -> str:
    """Join text pieces: no space between CJK neighbours, one space between Latin words."""
    out = ""
    for raw in parts:
        piece = raw.strip()
        if not piece:
            continue
        if out and not (is_cjk(out[-1]) or is_cjk(piece[0])):
            out += " "
        out += piece
    return out
