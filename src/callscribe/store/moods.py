"""The customer's mood on a call, kept on the call row so calls can be listed by it.

The mood comes from the QA result's mean sentiment of what the customer said (``sentiment.by_party["customer"]``,
-1..1) through :func:`callscribe.qa.sentiment.label`: ``positive`` at or above
:data:`~callscribe.qa.sentiment.POSITIVE_AT`, ``negative`` at or below its negative, ``neutral`` between;
``unknown`` without a value (no QA result, or no customer speech). The store writes it with the call
(``calls.customer_mood``); the index on (``customer_mood``, ``call_time``) serves a mood's calls newest first
without a sort however common or rare the mood is.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement

from callscribe.qa.sentiment import label
from callscribe.store.models import CallRow

MOODS = ("negative", "neutral", "positive", "unknown")


def mood_of(mean: float | None) -> str:
    """The mood of a customer's mean sentiment (None: ``unknown``)."""
    return "unknown" if mean is None else label(mean)


def customer_mood(qa: Any) -> str:
    """The mood stored on the call row for a QA result (``unknown`` for none)."""
    by_party = ((getattr(qa, "sentiment", None) or {}).get("by_party") or {}) if qa is not None else {}
    mean = by_party.get("customer")
    return mood_of(None if mean is None else float(mean))


def mood_condition(mood: str, column: Any = CallRow.customer_mood) -> ColumnElement[bool]:
    """Calls whose customer mood is ``mood`` (one of :data:`MOODS`); ``ValueError`` for another."""
    if mood not in MOODS:
        raise ValueError(f"sentiment {mood!r} is not one of {', '.join(MOODS)}")
    return column == mood  # type: ignore[no-any-return]
