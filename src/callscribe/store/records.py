"""What the store takes and returns: frozen dataclasses, never ORM objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class StoreError(Exception):
    """The database cannot be used: ``str(e)`` is one line naming the URL (password masked) and the cause."""


class QueryError(ValueError):
    """A search query with nothing to look for (only punctuation, only NOT terms); one line."""


@dataclass(frozen=True)
class CallMeta:
    """What the recording itself does not say: who took the call, when, in which queue, and free extras."""

    agent_id: str | None = None
    call_time: datetime | None = None  # naive datetimes are taken as UTC
    queue: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CallSummary:
    id: int
    name: str  # the transcript's call id (the file's stem)
    sha256: str
    options_key: str
    source: str  # the recording's path when it was transcribed
    duration: float
    channels: int
    call_time: datetime | None
    agent_id: str | None
    queue: str | None
    engine: str
    language: str | None
    needs_review: bool | None  # None: no QA stored
    score: float | None
    max_score: float | None
    meta: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class CallRecord:
    """A whole call: ``transcript`` is the transcript JSON (``Transcript.from_dict`` reads it), ``qa`` the QA JSON
    (``QAResult.from_dict``) or None."""

    summary: CallSummary
    transcript: dict[str, Any]
    qa: dict[str, Any] | None

    @property
    def id(self) -> int:
        return self.summary.id


@dataclass(frozen=True)
class SearchHit:
    call_id: int
    call_name: str
    source: str
    call_time: datetime | None
    agent_id: str | None
    queue: str | None
    utterance: int  # index in the transcript's utterances
    start: float
    end: float
    channel: int
    speaker: str | None
    role: str | None
    text: str
    snippet: str  # the text (or a window of it) with matches marked, e.g. "我想[退款]"
    redactions: tuple[dict[str, Any], ...] = ()  # {start, end, kind} of what was redacted inside the utterance


@dataclass(frozen=True)
class AgentPeriod:
    """One agent in one week (``2026-W02``) or month (``2026-01``)."""

    agent_id: str | None
    period: str
    period_start: datetime  # Monday or the 1st, 00:00 in the report's time zone
    calls: int
    scored_calls: int  # calls with a QA result
    needs_review: int
    mean_score: float | None  # mean QA score in points over scored calls
    mean_score_pct: float | None  # mean of score / max_score * 100 over scored calls with max_score > 0
    rule_fail_rates: dict[str, float]  # rule id -> failed / graded, over the calls where the rule was graded
    rule_graded: dict[str, int]  # rule id -> calls where it was graded
    talk_ratio: float | None  # agent talk time / talk time of all parties, pooled over the calls
    customer_sentiment: float | None  # mean over calls of the customer's mean sentiment (-1..1)


@dataclass(frozen=True)
class Correction:
    id: int
    call_id: int
    utterance: int | None
    field: str
    before: str
    after: str
    author: str
    created_at: datetime


@dataclass(frozen=True)
class Verdict:
    id: int
    call_id: int
    rule_id: str | None
    verdict: str
    reviewer: str
    note: str
    created_at: datetime


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    state: str  # queued | running | done | failed | cancelled
    payload: dict[str, Any]
    attempts: int
    error: str | None
    call_id: int | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class ApiKey:
    id: int
    name: str
    prefix: str
    scope: str
    revoked: bool
    created_at: datetime
    revoked_at: datetime | None
