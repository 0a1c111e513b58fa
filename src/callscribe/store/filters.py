"""Filters shared by ``calls``, ``search`` and the reports: times, agents, queues, QA verdicts, customer mood."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime, time, timezone
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, select

from callscribe.store.models import CallRow, RuleRow
from callscribe.store.moods import mood_condition
from callscribe.store.query import unindexed as no_index

TimeLike = datetime | date | str


def as_utc(value: TimeLike | None, what: str = "time") -> datetime | None:
    """A datetime, date (its midnight) or ISO string as an aware UTC datetime; naive values are taken as UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"{what} {value!r} is not an ISO date or time (e.g. 2026-01-31 or 2026-01-31T09:30)"
            ) from None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, time())
    if not isinstance(value, datetime):
        raise TypeError(f"{what} must be a datetime, date or ISO string, not {type(value).__name__}")
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def rule_failed(rule_id: str) -> ColumnElement[bool]:
    """The call has a graded QA verdict where ``rule_id`` failed."""
    return exists(
        select(RuleRow.id).where(
            RuleRow.call_id == CallRow.id,
            RuleRow.rule_id == rule_id,
            RuleRow.passed.is_(False),
            RuleRow.graded.is_(True),
        )
    )


def call_filters(
    *,
    agent: str | None = None,
    queue: str | None = None,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    needs_review: bool | None = None,
    rule_failed_id: str | None = None,
    min_score: float | None = None,
    max_score: float | None = None,
    sentiment: str | None = None,
    call_id: int | None = None,
    unindexed: Collection[str] = (),
) -> list[ColumnElement[bool]]:
    """Conditions on ``calls``: ``since`` inclusive, ``until`` exclusive, both on the call time (calls without one
    are left out when either is given); ``sentiment`` a customer mood (:data:`callscribe.store.moods.MOODS`).
    ``unindexed``: columns SQLite must not use an index for (see
    :mod:`callscribe.store.plan`)."""

    def col(name: str) -> Any:
        column = getattr(CallRow, name)
        return no_index(column) if name in unindexed else column

    out: list[Any] = []
    if call_id is not None:
        out.append(CallRow.id == call_id)
    if agent is not None:
        out.append(col("agent_id") == agent)
    if queue is not None:
        out.append(col("queue") == queue)
    start, end = as_utc(since, "since"), as_utc(until, "until")
    if start is not None:
        out.append(col("call_time") >= start)
    if end is not None:
        out.append(col("call_time") < end)
    if start is not None and end is not None and end <= start:
        out.append(false())
    if needs_review is not None:
        out.append(col("needs_review").is_(needs_review))
    if rule_failed_id:
        out.append(rule_failed(rule_failed_id))
    if min_score is not None:
        out.append(col("score") >= min_score)
    if max_score is not None:
        out.append(col("score") <= max_score)
    if sentiment is not None:
        out.append(mood_condition(sentiment, col("customer_mood")))
    return [and_(*out)] if out else []
