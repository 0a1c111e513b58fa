"""Transcripts and QA results into rows, and rows back into the JSON the files hold."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from callscribe.model import QAResult, Redaction, Span, Transcript, to_dict
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
from callscribe.store.records import CallMeta, CallSummary
from callscribe.store.tokens import norm

# Transcript fields kept in calls.doc; utterances and speakers have their own tables.
_ROW_FIELDS = ("utterances", "speakers")


def coerce_transcript(transcript: Transcript | dict[str, Any]) -> Transcript:
    if isinstance(transcript, Transcript):
        return transcript
    if isinstance(transcript, dict):
        try:
            return Transcript.from_dict(transcript)
        except (TypeError, KeyError, ValueError, AttributeError) as exc:
            raise ValueError(f"not a transcript: {_one_line(exc)}") from None
    raise TypeError(f"expected a Transcript or its dict, got {type(transcript).__name__}")


def coerce_qa(qa: QAResult | dict[str, Any] | None) -> QAResult | None:
    """A QA result, from the object or the dict written to ``.qa.json``."""
    if qa is None or isinstance(qa, QAResult):
        return qa
    if isinstance(qa, dict):
        try:
            return QAResult.from_dict(qa)
        except (TypeError, KeyError, ValueError, AttributeError) as exc:
            raise ValueError(f"not a QA result (.qa.json): {_one_line(exc)}") from None
    raise TypeError(f"expected a QAResult or its dict, got {type(qa).__name__}")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _merged_seconds(spans: list[Span]) -> float:
    total, end = 0.0, float("-inf")
    for s in sorted(spans):
        if s.end > end:
            total += s.end - max(s.start, end)
            end = s.end
    return total


def talk_times(t: Transcript) -> tuple[float, float, float]:
    """(all parties, agent, customer) talk time: each party's utterance spans merged (the QA metrics' party: role,
    else speaker, else channel), then summed over parties."""
    by_party: dict[str, list[Span]] = {}
    for u in t.utterances:
        by_party.setdefault(u.role or u.speaker or f"channel{u.channel}", []).append(u.span)
    talk = {p: _merged_seconds(spans) for p, spans in by_party.items()}
    return sum(talk.values()), talk.get("agent", 0.0), talk.get("customer", 0.0)


def _redactions_in(start: float, end: float, channel: int, redactions: Sequence[Redaction]) -> list[dict[str, Any]]:
    return [
        {"start": r.start, "end": r.end, "kind": r.kind}
        for r in redactions
        if (r.channel is None or r.channel == channel) and r.start < end and start < r.end
    ]


def fill_call(row: CallRow, t: Transcript, qa: QAResult | None, meta: CallMeta | None, now: datetime) -> None:
    """Set a call row's columns from a transcript (and the meta when given; ``None`` keeps what the row has)."""
    doc = {k: v for k, v in t.to_dict().items() if k not in _ROW_FIELDS}
    row.sha256 = t.call.sha256
    row.name = t.call.id
    row.source = t.call.path
    row.duration = t.call.duration
    row.sample_rate = t.call.sample_rate
    row.channels = t.call.channels
    row.codec = t.call.codec
    row.engine = t.engine
    row.language = t.language
    row.doc = doc
    row.talk_s, row.agent_talk_s, row.customer_talk_s = talk_times(t)
    row.needs_review = qa.needs_review if qa else None
    row.score = qa.score if qa else None
    row.max_score = qa.max_score if qa else None
    if meta is not None:
        row.agent_id = meta.agent_id
        row.call_time = meta.call_time
        row.queue = meta.queue
        row.meta = dict(meta.extra)
    row.updated_at = now


def utterance_rows(call_id: int, t: Transcript, tokens: Sequence[str], words: bool) -> list[UtteranceRow]:
    """The utterance rows of a call; ``tokens`` are each utterance's search tokens joined by spaces."""
    rows = []
    for i, u in enumerate(t.utterances):
        row = UtteranceRow(
            call_id=call_id,
            idx=i,
            start_s=u.start,
            end_s=u.end,
            channel=u.channel,
            speaker=u.speaker,
            role=u.role,
            text=u.text,
            confidence=u.confidence,
            language=u.language,
            overlap=u.overlap,
            flags=list(u.flags),
            redactions=_redactions_in(u.start, u.end, u.channel, t.redactions),
            tokens=tokens[i],
            norm=norm(u.text),
        )
        if words:
            row.words = [
                WordRow(idx=j, text=w.text, start_s=w.start, end_s=w.end, probability=w.probability)
                for j, w in enumerate(u.words)
            ]
        rows.append(row)
    return rows


def speaker_rows(call_id: int, t: Transcript) -> list[SpeakerRow]:
    return [
        SpeakerRow(
            call_id=call_id,
            idx=i,
            label=s.id,
            channel=s.channel,
            role=s.role,
            role_confidence=s.role_confidence,
            evidence=list(s.evidence),
            talk_time=s.talk_time,
        )
        for i, s in enumerate(t.speakers)
    ]


def qa_row(call_id: int, qa: QAResult, now: datetime) -> QARow:
    sentiment = to_dict(qa)["sentiment"]
    per_utterance = sentiment.pop("utterances", None) or []
    by_party = sentiment.get("by_party") or {}
    row = QARow(
        call_id=call_id,
        call_key=qa.call_id,
        scorecard=qa.scorecard,
        score=qa.score,
        max_score=qa.max_score,
        needs_review=qa.needs_review,
        review_reasons=list(qa.review_reasons),
        metrics=to_dict(qa)["metrics"],
        sentiment=sentiment,
        sentiment_overall=sentiment.get("overall"),
        customer_sentiment=by_party.get("customer"),
        customer_trend=sentiment.get("customer_trend"),
        schema_version=qa.schema_version,
        created_at=now,
    )
    row.rules = [
        RuleRow(
            call_id=call_id,
            idx=i,
            rule_id=r.id,
            description=r.description,
            passed=r.passed,
            graded=r.graded,
            points=r.points,
            earned=r.earned,
            detail=r.detail,
            hits=[
                RuleHitRow(
                    idx=j,
                    rule=h.rule,
                    utterance=h.utterance,
                    start_s=h.start,
                    end_s=h.end,
                    text=h.text,
                    low_confidence=h.low_confidence,
                )
                for j, h in enumerate(r.hits)
            ],
        )
        for i, r in enumerate(qa.rules)
    ]
    row.sentiments = [
        SentimentRow(
            idx=i, utterance=s["utterance"], party=s["party"], start_s=s["start"], score=s["score"], label=s["label"]
        )
        for i, s in enumerate(per_utterance)
    ]
    return row


# -- rows back to JSON ------------------------------------------------------------------------------------------
def summary(row: CallRow) -> CallSummary:
    return CallSummary(
        id=row.id,
        name=row.name,
        sha256=row.sha256,
        options_key=row.options_key,
        source=row.source,
        duration=row.duration,
        channels=row.channels,
        call_time=row.call_time,
        agent_id=row.agent_id,
        queue=row.queue,
        engine=row.engine,
        language=row.language,
        needs_review=row.needs_review,
        score=row.score,
        max_score=row.max_score,
        meta=dict(row.meta or {}),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def transcript_dict(row: CallRow, utterances: Sequence[UtteranceRow], speakers: Sequence[SpeakerRow]) -> dict:
    d = dict(row.doc)
    d["utterances"] = [
        {
            "start": u.start_s,
            "end": u.end_s,
            "channel": u.channel,
            "text": u.text,
            "speaker": u.speaker,
            "role": u.role,
            "words": [
                {"text": w.text, "start": w.start_s, "end": w.end_s, "probability": w.probability} for w in u.words
            ],
            "confidence": u.confidence,
            "language": u.language,
            "overlap": u.overlap,
            "flags": list(u.flags or []),
        }
        for u in utterances
    ]
    d["speakers"] = [
        {
            "id": s.label,
            "channel": s.channel,
            "role": s.role,
            "role_confidence": s.role_confidence,
            "evidence": list(s.evidence or []),
            "talk_time": s.talk_time,
        }
        for s in speakers
    ]
    return d


def qa_dict(row: QARow) -> dict[str, Any]:
    sentiment = dict(row.sentiment or {})
    if sentiment:
        sentiment["utterances"] = [
            {"utterance": s.utterance, "party": s.party, "start": s.start_s, "score": s.score, "label": s.label}
            for s in row.sentiments
        ]
    return {
        "call_id": row.call_key,
        "metrics": row.metrics,
        "rules": [
            {
                "id": r.rule_id,
                "description": r.description,
                "passed": r.passed,
                "points": r.points,
                "earned": r.earned,
                "hits": [
                    {
                        "rule": h.rule,
                        "utterance": h.utterance,
                        "start": h.start_s,
                        "end": h.end_s,
                        "text": h.text,
                        "low_confidence": h.low_confidence,
                    }
                    for h in r.hits
                ],
                "detail": r.detail,
                "graded": r.graded,
            }
            for r in row.rules
        ],
        "score": row.score,
        "max_score": row.max_score,
        "needs_review": row.needs_review,
        "review_reasons": list(row.review_reasons or []),
        "sentiment": sentiment,
        "scorecard": row.scorecard,
        "schema_version": row.schema_version,
    }
