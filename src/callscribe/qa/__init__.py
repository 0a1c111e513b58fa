"""Call quality checks: metrics, scorecard rules and sentiment for one transcript.

from callscribe.qa import run_qa
result = run_qa(transcript)                    # default scorecard for the call's language
result = run_qa(transcript, "my_card.yaml")    # or a Scorecard, or a built-in name ("en_default")
"""

from __future__ import annotations

import logging
from pathlib import Path

from callscribe.model import QAResult, Transcript, to_dict
from callscribe.qa.context import Context
from callscribe.qa.metrics import CallMetrics, compute_metrics
from callscribe.qa.rules import Scorecard, ScorecardError, evaluate, load_scorecard
from callscribe.qa.sentiment import SentimentReport, analyze_sentiment, language_of, register_method

log = logging.getLogger("callscribe")

__all__ = [
    "CallMetrics",
    "Scorecard",
    "ScorecardError",
    "SentimentReport",
    "analyze_sentiment",
    "call_language",
    "compute_metrics",
    "load_scorecard",
    "register_method",
    "run_qa",
]


def call_language(t: Transcript) -> str:
    """``zh`` or ``en``: the transcript's language tag, else the majority of its utterances'."""
    if t.language:
        return "zh" if t.language.lower().startswith(("zh", "cmn", "yue")) else "en"
    votes = [language_of(u, None) for u in t.utterances if u.text.strip()]
    return "zh" if votes.count("zh") >= max(1, votes.count("en")) else "en"


def _trust_reasons(t: Transcript) -> list[str]:
    """Speech the transcript could not put into words, and glossary terms the audio did not back, need an ear."""
    reasons = []
    gaps = [u for u in t.utterances if "uncovered" in u.flags]
    if gaps:
        seconds = sum(u.duration for u in gaps)
        where = ", ".join(f"{u.start:.1f}s" for u in gaps[:5])
        reasons.append(f"{seconds:.1f} s of speech without text (uncovered at {where})")
    return reasons


def run_qa(t: Transcript, scorecard: Scorecard | str | Path | None = None) -> QAResult:
    """Metrics, sentiment and scorecard verdict for one call."""
    card = scorecard if isinstance(scorecard, Scorecard) else load_scorecard(scorecard, call_language(t))
    metrics = compute_metrics(t)
    sentiment = analyze_sentiment(t, card.sentiment_method)
    ctx = Context(t, metrics, sentiment, card.word_probability_min, card.utterance_confidence_min)
    verdict = evaluate(card, ctx)
    reasons = list(verdict.review_reasons)  # includes unsure or missing roles (role-based rules not graded)
    reasons += _trust_reasons(t)
    log.debug("qa %s: %.1f/%.1f with %s", t.call.id, verdict.score, verdict.max_score, card.name)
    return QAResult(
        call_id=t.call.id,
        metrics=to_dict(metrics),
        rules=verdict.rules,
        score=verdict.score,
        max_score=verdict.max_score,
        needs_review=bool(reasons),
        review_reasons=tuple(reasons),
        sentiment=to_dict(sentiment),
        scorecard=card.name,
    )
