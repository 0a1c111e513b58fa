"""Per-agent reports over a period: calls, QA scores, failed-rule rates, talk ratio, customer sentiment.

Calls are bucketed by their call time (the time they were stored when they have none) in the report's time zone
(UTC unless ``tz`` says otherwise): ISO weeks (``2026-W02``, from Monday) or months (``2026-01``). The database
does the counting and returns a row per agent and period; the period's first day is worked out in SQL by
:mod:`callscribe.store.periods` from Python's zone data, so both databases bucket every call the same way.

PostgreSQL runs one grouped query for the calls and one for the rule verdicts (hash aggregates). SQLite can only
group by sorting, and sorting the ~9 verdicts of every call costs more than everything else together, so there
each call's graded verdicts become a bit mask (a passed and a failed bit per rule id, the verdicts read through
the call id index, no sort), and one query groups the calls with their masks by agent and period and counts each
bit. Agent, period and rule come back in Python's order (agents, calls without one last, then periods).
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import AbstractContextManager
from datetime import date, datetime, tzinfo
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Integer, case, func, literal, select, text

from callscribe.store.connect import db_errors
from callscribe.store.filters import TimeLike, as_utc
from callscribe.store.models import CallRow, QARow, RuleRow
from callscribe.store.periods import PERIODS, as_date, fixed_offset, label, local_midnight, period_start, zone_of
from callscribe.store.query import unindexed
from callscribe.store.records import AgentPeriod

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

MASK_RULES = 31  # rule ids per mask: two bits each in SQLite's 64-bit signed integers
MAX_MASKS = 2  # with more rule ids than MAX_MASKS masks hold, SQLite sorts the verdicts too
Key = tuple[str | None, Any]
# the rule ids in order without reading every verdict: each step jumps to the next in ix_rule_results_rule_id_passed
RULE_IDS = text(
    "WITH RECURSIVE ids(rule_id) AS (SELECT min(rule_id) FROM rule_results UNION ALL "
    "SELECT (SELECT min(rule_id) FROM rule_results WHERE rule_id > ids.rule_id) FROM ids "
    "WHERE ids.rule_id IS NOT NULL) SELECT rule_id FROM ids WHERE rule_id IS NOT NULL LIMIT :n"
)


class ReportMixin:
    url: Any
    timeout: float
    dialect: str

    def _session(self, write: bool = False) -> AbstractContextManager[Session]:  # pragma: no cover - Store's
        raise NotImplementedError

    @db_errors
    def agent_report(
        self,
        by: str = "week",
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        *,
        agent: str | None = None,
        tz: tzinfo | str | None = None,
    ) -> list[AgentPeriod]:
        """One row per agent per week or month (``by``), agents in order (calls without an agent last), periods
        in order. ``since`` inclusive, ``until`` exclusive."""
        if by not in PERIODS:
            raise ValueError(f"report period {by!r} is not one of {', '.join(PERIODS)}")
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
        with self._session() as s:
            span = None
            if fixed_offset(zone) is None:  # the zone's offset may change: between which times?
                span = _span(s, start, end)
                if span is None:
                    return []
            first_day = period_start(when, by, self.dialect, zone, span).label("start")
            most = MASK_RULES * MAX_MASKS
            rules = [r for (r,) in s.execute(RULE_IDS, {"n": most + 1})] if self.dialect == "sqlite" else []
            if self.dialect == "sqlite" and len(rules) <= most:
                groups = _masked(s, first_day, where, rules)
            else:
                groups = _grouped(s, first_day, where, self.dialect)
        out = [_period(row, by, zone, graded, failed) for row, graded, failed in groups]
        return sorted(out, key=lambda p: (p.agent_id is None, p.agent_id or "", p.period))


Group = tuple[Any, dict[str, int], dict[str, int]]  # the calls' row, graded and failed counts by rule id


def _span(s: Session, start: datetime | None, end: datetime | None) -> tuple[datetime, datetime] | None:
    """Bounds on the call times (stored times for calls without one) within [start, end), read from the call time
    index (and the few calls without a time); None when there are no calls."""
    timed, untimed = CallRow.call_time, CallRow.call_time.is_(None)
    ends = s.execute(
        select(
            select(func.min(timed)).scalar_subquery(),
            select(func.max(timed)).scalar_subquery(),
            select(func.min(CallRow.created_at)).where(untimed).scalar_subquery(),
            select(func.max(CallRow.created_at)).where(untimed).scalar_subquery(),
        )
    ).one()
    found = [t for t in ends if t is not None]
    if not found:
        return None
    lo, hi = min(found), max(found)
    return (max(lo, start) if start else lo), (min(hi, end) if end else hi)


def _per_call_columns(first_day: ColumnElement[Any]) -> list[Any]:
    return [
        unindexed(CallRow.agent_id).label("agent_id"),  # SQLite: read the calls in table order, not by agent
        first_day,
        CallRow.score,
        case((CallRow.max_score != 0, 100.0 * CallRow.score / CallRow.max_score)).label("pct"),
        case((CallRow.needs_review.is_(True), 1), else_=0).label("review"),
        CallRow.talk_s,
        CallRow.agent_talk_s,
        QARow.customer_sentiment,
    ]


def _call_totals(c: Any) -> list[Any]:
    return [
        c.agent_id,
        c.start,
        func.count().label("calls"),
        func.count(c.score).label("scored"),
        func.sum(c.review).label("review"),
        func.avg(c.score).label("mean_score"),
        func.avg(c.pct).label("mean_pct"),
        func.sum(c.talk_s).label("talk"),
        func.sum(c.agent_talk_s).label("agent_talk"),
        func.avg(c.customer_sentiment).label("sentiment"),
    ]


def _masked(s: Session, first_day: ColumnElement[Any], where: list[Any], rules: list[str]) -> list[Group]:
    """SQLite: one query. Per call, a mask per MASK_RULES rule ids of its graded verdicts (bit k: rule k passed,
    bit k + MASK_RULES: failed), read through ``ix_rule_results_call_id``; per agent and period, the call totals
    and each bit's count."""
    chunks = [rules[i : i + MASK_RULES] for i in range(0, len(rules), MASK_RULES)]
    masks = []
    for n, chunk in enumerate(chunks):
        slot = case({r: k for k, r in enumerate(chunk)}, value=RuleRow.rule_id)
        bit = literal(1, Integer).op("<<")(slot + case((RuleRow.passed.is_(True), 0), else_=MASK_RULES))
        verdicts = select(func.sum(bit)).where(RuleRow.call_id == CallRow.id, RuleRow.graded.is_(True))
        masks.append(verdicts.scalar_subquery().label(f"mask{n}"))
    # materialized: a subquery would be flattened into the totals, reading the verdicts once per bit counted
    per_call = select(*_per_call_columns(first_day), *masks).outerjoin(QARow, QARow.call_id == CallRow.id)
    c = per_call.where(*where).cte("calls_masked").prefix_with("MATERIALIZED").c
    counts = [
        func.sum(c[f"mask{n}"].op(">>")(k + shift).op("&")(1))
        for n, chunk in enumerate(chunks)
        for k in range(len(chunk))
        for shift in (0, MASK_RULES)
    ]
    out: list[Group] = []
    for row in s.execute(select(*_call_totals(c), *counts).group_by(c.agent_id, c.start)):
        bits = iter(row[len(row) - len(counts) :])
        graded, failed = {}, {}
        for rule in rules:
            passed, fails = int(next(bits) or 0), int(next(bits) or 0)
            if passed + fails:
                graded[rule], failed[rule] = passed + fails, fails
        out.append((row, graded, failed))
    return out


def _grouped(s: Session, first_day: ColumnElement[Any], where: list[Any], dialect: str) -> list[Group]:
    """A grouped query for the calls and one for their graded verdicts (by agent, period and rule)."""
    per_call = select(*_per_call_columns(first_day)).outerjoin(QARow, QARow.call_id == CallRow.id)
    c = per_call.where(*where).subquery().c
    calls = s.execute(select(*_call_totals(c)).group_by(c.agent_id, c.start)).all()
    # each call's period worked out once, not once per verdict: a materialized CTE on SQLite; on PostgreSQL a
    # subquery with OFFSET 0, which the planner does not pull up (and still hashes the groups)
    per_day = select(CallRow.id, CallRow.agent_id, first_day).where(*where)
    days = per_day.cte("days").prefix_with("MATERIALIZED") if dialect == "sqlite" else per_day.offset(0).subquery()
    verdicts = (
        select(
            days.c.agent_id,
            days.c.start,
            RuleRow.rule_id,
            func.count().label("graded"),
            func.sum(case((RuleRow.passed.is_(True), 0), else_=1)).label("failed"),
        )
        .join(RuleRow, RuleRow.call_id == days.c.id)
        .where(RuleRow.graded.is_(True))
        .group_by(days.c.agent_id, days.c.start, RuleRow.rule_id)
    )
    graded: dict[Key, dict[str, int]] = defaultdict(dict)
    failed: dict[Key, dict[str, int]] = defaultdict(dict)
    for r in s.execute(verdicts):
        graded[(r.agent_id, r.start)][r.rule_id] = int(r.graded)
        failed[(r.agent_id, r.start)][r.rule_id] = int(r.failed or 0)
    return [(row, graded[(row.agent_id, row.start)], failed[(row.agent_id, row.start)]) for row in calls]


def _period(row: Any, by: str, zone: tzinfo, graded: dict[str, int], failed: dict[str, int]) -> AgentPeriod:
    day: date = as_date(row.start)
    return AgentPeriod(
        agent_id=row.agent_id,
        period=label(day, by),
        period_start=local_midnight(day, zone),
        calls=int(row.calls),
        scored_calls=int(row.scored),
        needs_review=int(row.review or 0),
        mean_score=_float(row.mean_score),
        mean_score_pct=_float(row.mean_pct),
        rule_fail_rates={r: failed.get(r, 0) / n for r, n in sorted(graded.items())},
        rule_graded=dict(sorted(graded.items())),
        talk_ratio=float(row.agent_talk) / float(row.talk) if row.talk and row.talk > 0 else None,
        customer_sentiment=_float(row.sentiment),
    )


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
