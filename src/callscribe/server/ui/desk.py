"""A stored call as the desk shows it: reviewers' corrections applied on read, personal data masked for viewers
without the ``pii`` scope, the waveform's markers, the QA panel with the verdicts, the sentiment trajectory.

The store records corrections without changing the transcript; here the latest text correction of each utterance
replaces its text (its word times go with it: they timed the old words). For a viewer without ``pii`` the corrected
transcript is redacted (:func:`callscribe.text.pii.redact_transcript`), so a number a reviewer typed in is masked
too, and so are the other texts a call carries (its name, rule evidence, review reasons, correction history).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from callscribe.audio_redact import merge_spans
from callscribe.model import Transcript
from callscribe.qa.context import UTTERANCE_CONFIDENCE_MIN, WORD_PROBABILITY_MIN
from callscribe.server.call_audio import tone_spans
from callscribe.server.ui.review import ReviewState, latest_texts, review_state
from callscribe.text.pii import DEFAULT_MASK, redact_text
from callscribe.text.pii_transcript import redact_transcript

ROLE_ORDER = ("agent", "customer", "ivr", "other")
UNCOVERED = "uncovered"


@dataclass(frozen=True)
class DeskCall:
    """What the call page needs; ``view`` is JSON-ready, ``mask_spans`` the stretches to tone out of the audio for
    this viewer (empty with ``pii``), ``private_spans`` those stretches whoever asks."""

    view: dict[str, Any]
    transcript: Transcript
    mask_spans: tuple[tuple[float, float], ...]
    review: ReviewState
    private_spans: tuple[tuple[float, float], ...] = ()  # what a viewer without pii must not hear (any viewer)


def corrected(transcript: dict[str, Any], corrections: Sequence[Any]) -> tuple[Transcript, dict[int, Any]]:
    """The stored transcript with the latest text correction of each utterance applied."""
    t = Transcript.from_dict(transcript)
    fixed = {i: c for i, c in latest_texts(corrections).items() if 0 <= i < len(t.utterances)}
    if not fixed:
        return t, fixed
    utts = list(t.utterances)
    for i, c in fixed.items():
        flags = tuple(f for f in utts[i].flags if f != UNCOVERED) if c.after.strip() else utts[i].flags
        utts[i] = dataclasses.replace(utts[i], text=c.after, words=(), flags=flags)
    return dataclasses.replace(t, utterances=tuple(utts)), fixed


def _low_stretches(t: Transcript) -> list[dict[str, Any]]:
    """Low-confidence utterances, and runs of low-probability words inside confident ones."""
    out: list[dict[str, Any]] = []
    for i, u in enumerate(t.utterances):
        if u.confidence is not None and u.confidence < UTTERANCE_CONFIDENCE_MIN and u.text.strip():
            out.append({"kind": "lowconf", "start": u.start, "end": u.end, "utterance": i, "value": u.confidence})
            continue
        run: list[Any] = []
        for w in (*u.words, None):
            if w is not None and w.probability is not None and w.probability < WORD_PROBABILITY_MIN:
                run.append(w)
                continue
            if run:
                value = min(x.probability for x in run)
                out.append(
                    {"kind": "lowconf", "start": run[0].start, "end": run[-1].end, "utterance": i, "value": value}
                )
                run = []
    return out


def lane_key(u: Any) -> str:
    return u.role or u.speaker or f"ch{u.channel}"


def _lanes(t: Transcript) -> list[dict[str, Any]]:
    keys: dict[str, int] = {}
    for u in t.utterances:
        keys.setdefault(lane_key(u), u.channel)
    order = sorted(keys, key=lambda k: (ROLE_ORDER.index(k) if k in ROLE_ORDER else len(ROLE_ORDER), k))
    return [{"key": k, "channel": keys[k]} for k in order]


def _words(u: Any) -> list[list[Any]]:
    """``[text, start, end, low]`` per word (``low``: 1 under the QA's word probability floor), when the words
    spell the utterance's text (spaces aside); else none, and the page shows the text without word times."""
    if not u.words or "".join(w.text for w in u.words).replace(" ", "") != u.text.replace(" ", ""):
        return []
    low = [int(w.probability is not None and w.probability < WORD_PROBABILITY_MIN) for w in u.words]
    return [[w.text, round(w.start, 3), round(w.end, 3), k] for w, k in zip(u.words, low, strict=True)]


def _turns(t: Transcript, fixed: dict[int, Any], pii: bool, masked_idx: set[int]) -> list[dict[str, Any]]:
    out = []
    for i, u in enumerate(t.utterances):
        low_words = any(w.probability is not None and w.probability < WORD_PROBABILITY_MIN for w in u.words)
        c = fixed.get(i)
        out.append(
            {
                "i": i,
                "start": u.start,
                "end": u.end,
                "channel": u.channel,
                "role": u.role,
                "speaker": u.speaker,
                "lane": lane_key(u),
                "text": u.text,
                "words": _words(u),
                "confidence": u.confidence,
                "low": bool(u.confidence is not None and u.confidence < UTTERANCE_CONFIDENCE_MIN) or low_words,
                "uncovered": UNCOVERED in u.flags,
                "masked": i in masked_idx and not pii,
                "edited": None if c is None else {"by": c.author, "at": c.created_at.isoformat(), "id": c.id},
            }
        )
    return out


def _qa(qa: dict[str, Any] | None, state: ReviewState, hide: Any) -> dict[str, Any] | None:
    if not qa:
        return None
    rules = []
    for r in qa.get("rules", ()):
        hits = []
        for n, h in enumerate(r.get("hits", ())):
            j = state.hits.get((r["id"], n))
            hits.append(
                {
                    "n": n,
                    "utterance": h.get("utterance"),
                    "start": h["start"],
                    "end": h["end"],
                    "text": hide(h.get("text") or ""),
                    "low_confidence": bool(h.get("low_confidence")),
                    "verdict": None if j is None else {**dataclasses.asdict(j), "comment": hide(j.comment)},
                }
            )
        j = state.rules.get(r["id"])
        rules.append(
            {
                "id": r["id"],
                "description": r.get("description", ""),
                "passed": r.get("passed"),
                "graded": r.get("graded", True),
                "points": r.get("points"),
                "earned": r.get("earned"),
                "detail": hide(r.get("detail") or ""),
                "hits": hits,
                "verdict": None if j is None else {**dataclasses.asdict(j), "comment": hide(j.comment)},
            }
        )
    return {
        "score": qa.get("score"),
        "max_score": qa.get("max_score"),
        "needs_review": qa.get("needs_review"),
        "review_reasons": [hide(x) for x in qa.get("review_reasons", ())],
        "scorecard": qa.get("scorecard", ""),
        "rules": rules,
    }


def build(record: Any, corrections: Sequence[Any], verdicts: Sequence[Any], *, pii: bool) -> DeskCall:
    """The call page's data for a viewer with (``pii=True``) or without the ``pii`` scope."""
    t, fixed = corrected(record.transcript, corrections)
    redacted, found = redact_transcript(t, DEFAULT_MASK)
    shown = t if pii else redacted
    language = t.language

    def hide(text: str) -> str:
        return text if pii or not text else redact_text(text, language)

    state = review_state(verdicts, record.qa)
    spans = tone_spans(t, found, t.redactions)
    markers: list[dict[str, Any]] = [
        {"kind": "redaction", "start": a, "end": b} for a, b in merge_spans([*t.redactions, *found])
    ]
    for r in (record.qa or {}).get("rules", ()):
        for n, h in enumerate(r.get("hits", ())):
            markers.append(
                {
                    "kind": "hit",
                    "start": h["start"],
                    "end": h["end"],
                    "rule": r["id"],
                    "n": n,
                    "passed": r.get("passed"),
                }
            )
    markers += [
        {"kind": "uncovered", "start": u.start, "end": u.end, "utterance": i}
        for i, u in enumerate(shown.utterances)
        if UNCOVERED in u.flags
    ]
    markers += _low_stretches(shown)
    s = record.summary
    sentiment = (record.qa or {}).get("sentiment") or {}
    view = {
        "id": s.id,
        "name": hide(s.name),
        "duration": s.duration,
        "channels": s.channels,
        "call_time": s.call_time.isoformat() if s.call_time else None,
        "agent_id": s.agent_id,
        "queue": s.queue,
        "language": language,
        "engine": s.engine,
        "needs_review": s.needs_review,
        "score": s.score,
        "max_score": s.max_score,
        "pii": pii,
        "lanes": _lanes(t),
        "turns": _turns(shown, fixed, pii, {x.utterance for x in found if x.utterance is not None}),
        "markers": sorted(markers, key=lambda m: (m["start"], m["kind"])),
        "qa": _qa(record.qa, state, hide),
        "override": None
        if state.override is None
        else {**dataclasses.asdict(state.override), "comment": hide(state.override.comment)},
        "resolved": state.resolved,
        "resolution": None
        if state.resolution is None
        else {**dataclasses.asdict(state.resolution), "comment": hide(state.resolution.comment)},
        "sentiment": {
            "points": [
                {"t": p["start"], "score": p["score"], "party": p["party"], "utterance": p["utterance"]}
                for p in sentiment.get("utterances", ())
            ],
            "customer_trend": sentiment.get("customer_trend"),
            "by_party": sentiment.get("by_party") or {},
        },
        "corrections": [
            {
                "id": c.id,
                "utterance": c.utterance,
                "field": c.field,
                "before": hide(c.before),
                "after": hide(c.after),
                "by": c.author,
                "at": c.created_at.isoformat(),
            }
            for c in corrections
        ],
        "history": [{**h, "note": hide(h["note"])} for h in state.history],
    }
    return DeskCall(view, shown, tuple(spans) if not pii else (), state, tuple(spans))


def shown_text(record: Any, corrections: Sequence[Any], utterance: int) -> str:
    """The text of one utterance as reviewers see it with ``pii`` (its latest correction, else the stored text)."""
    t, _ = corrected(record.transcript, corrections)
    return t.utterances[utterance].text
