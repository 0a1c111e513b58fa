"""Transcripts and QA results into rows, and rows back into the JSON the files hold."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from callscribe.model import QAResult, Span, Transcript
from callscribe.store.models import (
    CallRow,
    QARow,
    SpeakerRow,
    UtteranceRow,
)
from callscribe.store.records import CallSummary


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
