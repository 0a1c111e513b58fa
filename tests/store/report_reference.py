"""The agent report as it was computed before the database did it: every call and rule verdict read into Python
and bucketed there (``datetime.astimezone``, ``isocalendar``). The SQL report must give the same rows."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import ColumnElement, func, select

from callscribe.store import AgentPeriod, Store
from callscribe.store.filters import TimeLike, as_utc
from callscribe.store.models import CallRow, QARow, RuleRow
from callscribe.store.periods import zone_of


def period_of(when: datetime, by: str, tz: tzinfo) -> tuple[str, datetime]:
    local = when.astimezone(tz)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if by == "week":
        iso = local.isocalendar()
        return f"{iso[0]}-W{iso[1]:02d}", day - timedelta(days=local.weekday())
    return f"{local.year}-{local.month:02d}", day.replace(day=1)


@dataclass
class _Bucket:
    start: datetime
    calls: int = 0
    review: int = 0
    scores: list[float] = field(default_factory=list)
    pcts: list[float] = field(default_factory=list)
    talk: float = 0.0
    agent_talk: float = 0.0
    sentiments: list[float] = field(default_factory=list)
    graded: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    failed: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def python_report(
    store: Store,
    by: str = "week",
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    *,
    agent: str | None = None,
    tz: tzinfo | str | None = None,
) -> list[AgentPeriod]:
    zone = zone_of(tz)
    when = func.coalesce(CallRow.call_time, CallRow.created_at)
    where: list[ColumnElement[bool]] = []
    start, end = as_utc(since, "since"), as_utc(until, "until")
    if start is not None:
        where.append(when >= start)
    if end is not None:
        where.append(when < end)
    if agent is not None:
        where.append(CallRow.agent_id == agent)
    calls = (
        select(
            CallRow.id,
            CallRow.agent_id,
            CallRow.call_time,
            CallRow.created_at,
            CallRow.score,
            CallRow.max_score,
            CallRow.needs_review,
            CallRow.talk_s,
            CallRow.agent_talk_s,
            QARow.customer_sentiment,
        )
        .outerjoin(QARow, QARow.call_id == CallRow.id)
        .where(*where)
    )
    rules = (
        select(RuleRow.call_id, RuleRow.rule_id, RuleRow.passed, RuleRow.graded)
        .join(CallRow, RuleRow.call_id == CallRow.id)
        .where(*where)
    )
    buckets: dict[tuple[str | None, str], _Bucket] = {}
    key_of: dict[int, tuple[str | None, str]] = {}
    with store._session() as s:
        for row in s.execute(calls):
            label, begins = period_of(row.call_time or row.created_at, by, zone)
            key = (row.agent_id, label)
            b = buckets.setdefault(key, _Bucket(begins))
            key_of[row.id] = key
            _count_call(b, row)
        for rule in s.execute(rules):
            if rule.graded and rule.call_id in key_of:
                b = buckets[key_of[rule.call_id]]
                b.graded[rule.rule_id] += 1
                b.failed[rule.rule_id] += 0 if rule.passed else 1
    ordered = sorted(buckets.items(), key=lambda item: (item[0][0] is None, item[0][0] or "", item[0][1]))
    return [_period(agent_id, label, b) for (agent_id, label), b in ordered]


def _count_call(b: _Bucket, row: Any) -> None:
    b.calls += 1
    b.review += 1 if row.needs_review else 0
    if row.score is not None:
        b.scores.append(row.score)
        if row.max_score:
            b.pcts.append(100.0 * row.score / row.max_score)
    b.talk += row.talk_s
    b.agent_talk += row.agent_talk_s
    if row.customer_sentiment is not None:
        b.sentiments.append(row.customer_sentiment)


def _period(agent_id: str | None, label: str, b: _Bucket) -> AgentPeriod:
    return AgentPeriod(
        agent_id=agent_id,
        period=label,
        period_start=b.start,
        calls=b.calls,
        scored_calls=len(b.scores),
        needs_review=b.review,
        mean_score=_mean(b.scores),
        mean_score_pct=_mean(b.pcts),
        rule_fail_rates={r: b.failed[r] / n for r, n in sorted(b.graded.items())},
        rule_graded=dict(sorted(b.graded.items())),
        talk_ratio=b.agent_talk / b.talk if b.talk > 0 else None,
        customer_sentiment=_mean(b.sentiments),
    )
