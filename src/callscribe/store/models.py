"""The store's tables as SQLAlchemy 2 models (one schema for SQLite and PostgreSQL).

The schema itself is created and changed only by the Alembic migrations in ``migrations/versions``; these models
describe it for queries, and a test checks that the two agree. The search index lives beside the models, made by
the migration: an FTS5 table ``utterances_fts`` (external content ``utterances.tokens``, kept in step by triggers)
on SQLite, a generated ``tsvector`` column ``utterances.search_vector`` with a GIN index on PostgreSQL.
Times are seconds into the call (``start_s``/``end_s``); datetimes are stored in UTC and come back aware.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, ClassVar

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from callscribe.store.coltypes import BigId, JSONType, UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSONType,
        list[Any]: JSONType,
        datetime: UTCDateTime(),
    }


def _fk(target: str, ondelete: str = "CASCADE") -> ForeignKey:
    return ForeignKey(target, ondelete=ondelete)


class CallRow(Base):
    """One recording transcribed with one set of options (``sha256`` + ``options_key`` is unique)."""

    __tablename__ = "calls"
    __table_args__ = (
        UniqueConstraint("sha256", "options_key", name="uq_calls_sha256_options_key"),
        Index("ix_calls_customer_mood_call_time", "customer_mood", "call_time"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    options_key: Mapped[str] = mapped_column(String(64), default="")
    name: Mapped[str] = mapped_column(String(255), default="")  # CallInfo.id (the file's stem)
    source: Mapped[str] = mapped_column(Text, default="")  # CallInfo.path
    duration: Mapped[float] = mapped_column(Float, default=0.0)
    sample_rate: Mapped[int] = mapped_column(Integer, default=0)
    channels: Mapped[int] = mapped_column(Integer, default=0)
    codec: Mapped[str] = mapped_column(String(64), default="")
    call_time: Mapped[datetime | None] = mapped_column(index=True)
    agent_id: Mapped[str | None] = mapped_column(String(128), index=True)
    queue: Mapped[str | None] = mapped_column(String(128), index=True)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)  # CallMeta.extra: free metadata
    engine: Mapped[str] = mapped_column(String(255), default="")
    language: Mapped[str | None] = mapped_column(String(16))
    doc: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the transcript JSON less utterances and speakers
    needs_review: Mapped[bool | None] = mapped_column(Boolean, index=True)  # None: no QA stored
    score: Mapped[float | None] = mapped_column(Float)
    max_score: Mapped[float | None] = mapped_column(Float)
    talk_s: Mapped[float] = mapped_column(Float, default=0.0)  # sum over parties of each party's talk time
    agent_talk_s: Mapped[float] = mapped_column(Float, default=0.0)
    customer_talk_s: Mapped[float] = mapped_column(Float, default=0.0)
    # negative, neutral, positive or unknown: the customer's mean sentiment in the QA result (callscribe.store.moods)
    customer_mood: Mapped[str] = mapped_column(String(16), default="unknown", server_default="unknown")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class UtteranceRow(Base):
    __tablename__ = "utterances"
    __table_args__ = (UniqueConstraint("call_id", "idx", name="uq_utterances_call_id_idx"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    call_id: Mapped[int] = mapped_column(_fk("calls.id"))
    idx: Mapped[int] = mapped_column(Integer)  # position in Transcript.utterances
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    channel: Mapped[int] = mapped_column(Integer, default=0)
    speaker: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str | None] = mapped_column(String(32), index=True)
    text: Mapped[str] = mapped_column(Text, default="")
    confidence: Mapped[float | None] = mapped_column(Float)
    language: Mapped[str | None] = mapped_column(String(16))
    overlap: Mapped[bool] = mapped_column(Boolean, default=False)
    flags: Mapped[list[Any]] = mapped_column(default=list)
    redactions: Mapped[list[Any]] = mapped_column(default=list)  # [{start, end, kind}] redacted inside it
    tokens: Mapped[str] = mapped_column(Text, default="")  # search tokens joined by spaces (what is indexed)
    norm: Mapped[str] = mapped_column(Text, default="")  # normalised text for phrase checks

    words: Mapped[list[WordRow]] = relationship(order_by="WordRow.idx", passive_deletes=True)


class WordRow(Base):
    __tablename__ = "words"
    __table_args__ = (UniqueConstraint("utterance_id", "idx", name="uq_words_utterance_id_idx"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    utterance_id: Mapped[int] = mapped_column(BigId, _fk("utterances.id"))
    idx: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    probability: Mapped[float | None] = mapped_column(Float)


class SpeakerRow(Base):
    """A party of the call with its role and the evidence for it."""

    __tablename__ = "speakers"
    __table_args__ = (UniqueConstraint("call_id", "idx", name="uq_speakers_call_id_idx"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(_fk("calls.id"))
    idx: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(64))  # Speaker.id
    channel: Mapped[int | None] = mapped_column(Integer)
    role: Mapped[str | None] = mapped_column(String(32))
    role_confidence: Mapped[float | None] = mapped_column(Float)
    evidence: Mapped[list[Any]] = mapped_column(default=list)
    talk_time: Mapped[float] = mapped_column(Float, default=0.0)


class QARow(Base):
    """The QA result of a call (at most one): totals, metrics and the sentiment summary."""

    __tablename__ = "qa_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(_fk("calls.id"), unique=True)
    call_key: Mapped[str] = mapped_column(String(255), default="")  # QAResult.call_id
    scorecard: Mapped[str] = mapped_column(String(128), default="")
    score: Mapped[float] = mapped_column(Float)
    max_score: Mapped[float] = mapped_column(Float)
    needs_review: Mapped[bool] = mapped_column(Boolean)
    review_reasons: Mapped[list[Any]] = mapped_column(default=list)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    sentiment: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the report less its per-utterance rows
    sentiment_overall: Mapped[float | None] = mapped_column(Float)
    customer_sentiment: Mapped[float | None] = mapped_column(Float)  # by_party["customer"]
    customer_trend: Mapped[str | None] = mapped_column(String(16))
    schema_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    rules: Mapped[list[RuleRow]] = relationship(order_by="RuleRow.idx", passive_deletes=True)
    sentiments: Mapped[list[SentimentRow]] = relationship(order_by="SentimentRow.idx", passive_deletes=True)


class RuleRow(Base):
    """One scorecard rule's verdict on one call."""

    __tablename__ = "rule_results"
    __table_args__ = (
        UniqueConstraint("qa_id", "rule_id", name="uq_rule_results_qa_id_rule_id"),
        Index("ix_rule_results_rule_id_passed", "rule_id", "passed"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    qa_id: Mapped[int] = mapped_column(_fk("qa_results.id"))
    call_id: Mapped[int] = mapped_column(_fk("calls.id"), index=True)
    idx: Mapped[int] = mapped_column(Integer)
    rule_id: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text, default="")
    passed: Mapped[bool] = mapped_column(Boolean)
    graded: Mapped[bool] = mapped_column(Boolean, default=True)
    points: Mapped[float] = mapped_column(Float, default=0.0)
    earned: Mapped[float] = mapped_column(Float, default=0.0)
    detail: Mapped[str] = mapped_column(Text, default="")

    hits: Mapped[list[RuleHitRow]] = relationship(order_by="RuleHitRow.idx", passive_deletes=True)


class RuleHitRow(Base):
    """Where in the call a rule points (its evidence, with times)."""

    __tablename__ = "rule_hits"
    __table_args__ = (UniqueConstraint("rule_result_id", "idx", name="uq_rule_hits_rule_result_id_idx"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rule_result_id: Mapped[int] = mapped_column(_fk("rule_results.id"))
    idx: Mapped[int] = mapped_column(Integer)
    rule: Mapped[str] = mapped_column(String(128))
    utterance: Mapped[int | None] = mapped_column(Integer)
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text, default="")
    low_confidence: Mapped[bool] = mapped_column(Boolean, default=False)


class SentimentRow(Base):
    """Sentiment of one utterance."""

    __tablename__ = "utterance_sentiment"
    __table_args__ = (UniqueConstraint("qa_id", "idx", name="uq_utterance_sentiment_qa_id_idx"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    qa_id: Mapped[int] = mapped_column(_fk("qa_results.id"))
    idx: Mapped[int] = mapped_column(Integer)
    utterance: Mapped[int] = mapped_column(Integer)
    party: Mapped[str] = mapped_column(String(64))
    start_s: Mapped[float] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float)
    label: Mapped[str] = mapped_column(String(16))


class CorrectionRow(Base):
    """A reviewer's change to a call's text: who, when, before and after."""

    __tablename__ = "corrections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(_fk("calls.id"), index=True)
    utterance: Mapped[int | None] = mapped_column(Integer)
    field: Mapped[str] = mapped_column(String(32), default="text")
    before: Mapped[str] = mapped_column(Text, default="")
    after: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class VerdictRow(Base):
    """A reviewer's verdict on a call or on one rule of it."""

    __tablename__ = "verdicts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(_fk("calls.id"), index=True)
    rule_id: Mapped[str | None] = mapped_column(String(128))
    verdict: Mapped[str] = mapped_column(String(32))
    reviewer: Mapped[str] = mapped_column(String(128), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class GlossaryRow(Base):
    """A term the search tokenizer keeps whole (added to jieba's dictionary)."""

    __tablename__ = "glossary_terms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    term: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class JobRow(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64), default="transcribe")
    state: Mapped[str] = mapped_column(String(16), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    call_id: Mapped[int | None] = mapped_column(_fk("calls.id", "SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the key; the key is never kept
    prefix: Mapped[str] = mapped_column(String(16), default="")  # the key's first characters, to tell keys apart
    scope: Mapped[str] = mapped_column(String(64), default="read")
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column()
