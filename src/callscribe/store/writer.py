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
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, select, tuple_, update

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
from callscribe.store.moods import customer_mood
from callscribe.store.records import CallMeta
from callscribe.store.rows import insert_rows
from callscribe.store.tokens import norm

CALLS = CallRow.__table__
UTTERANCES = UtteranceRow.__table__
WORDS = WordRow.__table__
SPEAKERS = SpeakerRow.__table__
QA = QARow.__table__
RULES = RuleRow.__table__
HITS = RuleHitRow.__table__
SENTIMENTS = SentimentRow.__table__


@dataclass(frozen=True)
class Item:
    """One call to write: the checked transcript and QA, its options key and search tokens (one string per
    utterance), the meta (None keeps a stored call's) and whether to keep word timings."""

    t: Transcript
    qa: QAResult | None
    meta: CallMeta | None
    key: str
    tokens: Sequence[str]
    words: bool = True


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
    """Insert or replace one call inside the caller's transaction; returns its id."""
    return write_calls(conn, [Item(t, qa, meta, key, tokens, words)], now)[0][0]


def write_calls(conn: Connection, items: Sequence[Item], now: datetime) -> list[tuple[int, bool]]:
    """Insert or replace calls (no two the same recording and key) inside the caller's transaction, each table's
    rows of all of them in one statement: (id, whether new) for each. A second writer of the same call waits at
    ``FOR UPDATE`` on PostgreSQL (SQLite: the transaction began with ``BEGIN IMMEDIATE``)."""
    if not items:
        return []
    wanted = [(it.t.call.sha256, it.key) for it in items]
    found = select(CALLS.c.id, CALLS.c.sha256, CALLS.c.options_key).where(
        tuple_(CALLS.c.sha256, CALLS.c.options_key).in_(wanted)
    )
    have = {(r.sha256, r.options_key): int(r.id) for r in conn.execute(found.with_for_update())}
    old = [have[w] for w in wanted if w in have]
    if old:
        for table in (UTTERANCES, SPEAKERS, QA):
            conn.execute(delete(table).where(table.c.call_id.in_(old)))
    fresh: list[dict[str, Any]] = []
    for it, w in zip(items, wanted, strict=True):
        values = call_values(it.t, it.qa, it.meta, now)
        if w in have:
            conn.execute(update(CALLS).where(CALLS.c.id == have[w]), values)
            continue
        blank = {"agent_id": None, "call_time": None, "queue": None, "meta": {}}
        fresh.append(blank | values | {"sha256": w[0], "options_key": w[1], "created_at": now})
    if fresh:
        new_ids = iter(insert_rows(conn, CALLS, fresh, ids=True))
        for w in wanted:
            if w not in have:
                have[w] = int(next(new_ids))
    ids = [have[w] for w in wanted]
    _write_utterances(conn, list(zip(ids, items, strict=True)))
    speakers = [row for call_id, it in zip(ids, items, strict=True) for row in speaker_values(call_id, it.t)]
    insert_rows(conn, SPEAKERS, speakers)
    _write_qa(conn, [(call_id, it.qa) for call_id, it in zip(ids, items, strict=True) if it.qa is not None], now)
    replaced = set(old)
    return [(call_id, call_id not in replaced) for call_id in ids]


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
        "customer_mood": customer_mood(qa),
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


def _utterance_rows(call_id: int, t: Transcript, tokens: Sequence[str]) -> list[dict[str, Any]]:
    return [
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


def _write_utterances(conn: Connection, calls: list[tuple[int, Item]]) -> None:
    rows = [row for call_id, it in calls for row in _utterance_rows(call_id, it.t, it.tokens)]
    if not rows:
        return
    timed = [u for _, it in calls for u in it.t.utterances if it.words]  # whose words are kept, in row order
    kept = [it.words for _, it in calls for _ in it.t.utterances]
    if not any(u.words for u in timed):
        insert_rows(conn, UTTERANCES, rows)
        return
    ids = insert_rows(conn, UTTERANCES, rows, ids=True)
    kept_ids = [uid for uid, keep in zip(ids, kept, strict=True) if keep]
    word_rows = [
        {
            "utterance_id": uid,
            "idx": j,
            "text": w.text,
            "start_s": w.start,
            "end_s": w.end,
            "probability": w.probability,
        }
        for uid, u in zip(kept_ids, timed, strict=True)
        for j, w in enumerate(u.words)
    ]
    insert_rows(conn, WORDS, word_rows)


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


def _qa_values(call_id: int, qa: QAResult, sentiment: dict[str, Any], now: datetime) -> dict[str, Any]:
    by_party = sentiment.get("by_party") or {}
    return {
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


def _write_qa(conn: Connection, results: list[tuple[int, QAResult]], now: datetime) -> None:
    if not results:
        return
    sentiments = [plain(qa.sentiment) for _, qa in results]
    per_utterance = [s.pop("utterances", None) or [] for s in sentiments]
    qa_rows = [_qa_values(cid, qa, s, now) for (cid, qa), s in zip(results, sentiments, strict=True)]
    qa_ids = insert_rows(conn, QA, qa_rows, ids=True)
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
        for qa_id, (call_id, qa) in zip(qa_ids, results, strict=True)
        for i, r in enumerate(qa.rules)
    ]
    rules = [r for _, qa in results for r in qa.rules]
    if rules and any(r.hits for r in rules):
        rule_ids = insert_rows(conn, RULES, rule_values, ids=True)
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
            for rid, r in zip(rule_ids, rules, strict=True)
            for j, h in enumerate(r.hits)
        ]
        insert_rows(conn, HITS, hits)
    else:
        insert_rows(conn, RULES, rule_values)
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
        for qa_id, utterances in zip(qa_ids, per_utterance, strict=True)
        for i, s in enumerate(utterances)
    ]
    insert_rows(conn, SENTIMENTS, rows)
