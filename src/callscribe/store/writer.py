"""Writing one call: its rows as plain values, inserted with one multi-row statement per table.

``Store.add`` used to build ORM objects and let the session flush them row by row; at ~10 utterances, 9 rules and
their hits and sentiment rows per call that bookkeeping cost more than the database did. Here each table gets one
``executemany`` (SQLAlchemy Core: SQLite's ``executemany``, PostgreSQL's batched multi-row ``INSERT``), and only
the ids that child rows need come back (``RETURNING``, in parameter order). The values, the column types (JSON,
UTC datetimes) and so the stored rows are the same as through the ORM.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from callscribe.model import QAResult, Redaction, Transcript, to_dict
from callscribe.store.ingest import talk_times
from callscribe.store.models import (
    CallRow,
    QARow,
    RuleHitRow,
    RuleRow,
    SentimentRow,
    SpeakerRow,
    UtteranceRow,
    WordRow,
)
from callscribe.store.records import CallMeta
from callscribe.store.tokens import norm

CALLS = CallRow.__table__
UTTERANCES = UtteranceRow.__table__
WORDS = WordRow.__table__
SPEAKERS = SpeakerRow.__table__
QA = QARow.__table__
RULES = RuleRow.__table__
HITS = RuleHitRow.__table__
SENTIMENTS = SentimentRow.__table__


def write_call(
    conn: Connection,
    t: Transcript,
    qa: QAResult | None,
    meta: CallMeta | None,
    key: str,
    tokens: Sequence[str],
    words: bool,
    now: datetime,
) -> int:
    """Insert or replace one call inside the caller's transaction; returns its id. A second writer of the same call
    waits at ``FOR UPDATE`` on PostgreSQL (SQLite: the transaction began with ``BEGIN IMMEDIATE``)."""
    found = select(CALLS.c.id).where(CALLS.c.sha256 == t.call.sha256, CALLS.c.options_key == key)
    call_id = conn.execute(found.with_for_update()).scalar()
    values = call_values(t, qa, meta, now)
    if call_id is None:
        values |= {"sha256": t.call.sha256, "options_key": key, "created_at": now}
        values.setdefault("meta", {})
        call_id = conn.execute(insert(CALLS).returning(CALLS.c.id), values).scalar_one()
    else:
        for table in (UTTERANCES, SPEAKERS, QA):
            conn.execute(delete(table).where(table.c.call_id == call_id))
        conn.execute(update(CALLS).where(CALLS.c.id == call_id), values)
    _write_utterances(conn, call_id, t, tokens, words)
    if t.speakers:
        conn.execute(insert(SPEAKERS), speaker_values(call_id, t))
    if qa is not None:
        _write_qa(conn, call_id, qa, now)
    return int(call_id)


def call_values(t: Transcript, qa: QAResult | None, meta: CallMeta | None, now: datetime) -> dict[str, Any]:
    """The call row's columns from a transcript (and the meta when given; without it the row keeps its own)."""
    doc = to_dict(dataclasses.replace(t, utterances=(), speakers=()))
    del doc["utterances"], doc["speakers"]
    talk, agent_talk, customer_talk = talk_times(t)
    values: dict[str, Any] = {
        "name": t.call.id,
        "source": t.call.path,
        "duration": t.call.duration,
        "sample_rate": t.call.sample_rate,
        "channels": t.call.channels,
        "codec": t.call.codec,
        "engine": t.engine,
        "language": t.language,
        "doc": doc,
        "talk_s": talk,
        "agent_talk_s": agent_talk,
        "customer_talk_s": customer_talk,
        "needs_review": qa.needs_review if qa else None,
        "score": qa.score if qa else None,
        "max_score": qa.max_score if qa else None,
        "updated_at": now,
    }
    if meta is not None:
        values |= {
            "agent_id": meta.agent_id,
            "call_time": meta.call_time,
            "queue": meta.queue,
            "meta": dict(meta.extra),
        }
    return values


def _redactions_in(start: float, end: float, channel: int, redactions: Sequence[Redaction]) -> list[dict[str, Any]]:
    return [
        {"start": r.start, "end": r.end, "kind": r.kind}
        for r in redactions
        if (r.channel is None or r.channel == channel) and r.start < end and start < r.end
    ]


def _write_utterances(conn: Connection, call_id: int, t: Transcript, tokens: Sequence[str], words: bool) -> None:
    rows = [
        {
            "call_id": call_id,
            "idx": i,
            "start_s": u.start,
            "end_s": u.end,
            "channel": u.channel,
            "speaker": u.speaker,
            "role": u.role,
            "text": u.text,
            "confidence": u.confidence,
            "language": u.language,
            "overlap": u.overlap,
            "flags": list(u.flags),
            "redactions": _redactions_in(u.start, u.end, u.channel, t.redactions),
            "tokens": tokens[i],
            "norm": norm(u.text),
        }
        for i, u in enumerate(t.utterances)
    ]
    if not rows:
        return
    if not (words and any(u.words for u in t.utterances)):
        conn.execute(insert(UTTERANCES), rows)
        return
    ids = conn.execute(insert(UTTERANCES).returning(UTTERANCES.c.id, sort_by_parameter_order=True), rows).scalars()
    word_rows = [
        {
            "utterance_id": uid,
            "idx": j,
            "text": w.text,
            "start_s": w.start,
            "end_s": w.end,
            "probability": w.probability,
        }
        for uid, u in zip(ids.all(), t.utterances, strict=True)
        for j, w in enumerate(u.words)
        for p in (w.probability,)
    ]
    conn.execute(insert(WORDS), word_rows)


def speaker_values(call_id: int, t: Transcript) -> list[dict[str, Any]]:
    return [
        {
            "call_id": call_id,
            "idx": i,
            "label": s.id,
            "channel": s.channel,
            "role": s.role,
            "role_confidence": s.role_confidence,
            "evidence": list(s.evidence),
            "talk_time": s.talk_time,
        }
        for i, s in enumerate(t.speakers)
    ]


def _dataclass_dict(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def plain(value: dict[str, Any]) -> dict[str, Any]:
    """A JSON-ready deep copy, equal to what :func:`callscribe.model.to_dict` makes of the same field (one JSON
    round trip instead of ``asdict``'s recursive copy of the whole QA result)."""
    return json.loads(json.dumps(value, ensure_ascii=False, default=_dataclass_dict))


def _write_qa(conn: Connection, call_id: int, qa: QAResult, now: datetime) -> None:
    sentiment = plain(qa.sentiment)
    per_utterance = sentiment.pop("utterances", None) or []
    by_party = sentiment.get("by_party") or {}
    qa_values = {
        "call_id": call_id,
        "call_key": qa.call_id,
        "scorecard": qa.scorecard,
        "score": qa.score,
        "max_score": qa.max_score,
        "needs_review": qa.needs_review,
        "review_reasons": list(qa.review_reasons),
        "metrics": plain(qa.metrics),
        "sentiment": sentiment,
        "sentiment_overall": sentiment.get("overall"),
        "customer_sentiment": by_party.get("customer"),
        "customer_trend": sentiment.get("customer_trend"),
        "schema_version": qa.schema_version,
        "created_at": now,
    }
    qa_id = conn.execute(insert(QA).returning(QA.c.id), qa_values).scalar_one()
    if qa.rules:
        rule_values = [
            {
                "qa_id": qa_id,
                "call_id": call_id,
                "idx": i,
                "rule_id": r.id,
                "description": r.description,
                "passed": r.passed,
                "graded": r.graded,
                "points": r.points,
                "earned": r.earned,
                "detail": r.detail,
            }
            for i, r in enumerate(qa.rules)
        ]
        if any(r.hits for r in qa.rules):
            stmt = insert(RULES).returning(RULES.c.id, sort_by_parameter_order=True)
            rule_ids = conn.execute(stmt, rule_values).scalars().all()
            hits = [
                {
                    "rule_result_id": rid,
                    "idx": j,
                    "rule": h.rule,
                    "utterance": h.utterance,
                    "start_s": h.start,
                    "end_s": h.end,
                    "text": h.text,
                    "low_confidence": h.low_confidence,
                }
                for rid, r in zip(rule_ids, qa.rules, strict=True)
                for j, h in enumerate(r.hits)
            ]
            conn.execute(insert(HITS), hits)
        else:
            conn.execute(insert(RULES), rule_values)
    if per_utterance:
        rows = [
            {
                "qa_id": qa_id,
                "idx": i,
                "utterance": s["utterance"],
                "party": s["party"],
                "start_s": s["start"],
                "score": s["score"],
                "label": s["label"],
            }
            for i, s in enumerate(per_utterance)
        ]
        conn.execute(insert(SENTIMENTS), rows)
