"""The agent report computed in SQL against the same report computed in Python from every stored row
(:mod:`report_reference`), on SQLite and PostgreSQL: calls at the last and first microsecond of weeks, months and
years in several time zones (fixed offsets, half hours, daylight saving in both hemispheres, its repeated hour),
calls without a call time (bucketed by when they were stored), without an agent, without QA, without customer
speech, with a zero maximum score and with ungraded rules."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from report_reference import python_report
from sqlalchemy import update
from store_fixtures import ENGINES, StoreCall, fresh_url, store_calls

from callscribe.model import QAResult
from callscribe.store import AgentPeriod, CallMeta, Store, reports
from callscribe.store.models import CallRow

pytestmark = pytest.mark.evalset

ZONES: tuple[tzinfo | str | None, ...] = (
    None,
    "Asia/Shanghai",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Lord_Howe",  # daylight saving of half an hour, southern hemisphere
    timezone(-timedelta(hours=9, minutes=30)),
)
# local wall times at the edges of ISO weeks, months and years and around daylight saving changes
EDGES = (
    (2026, 1, 4, 23, 59, 59, 999999),  # Sunday, last of 2026-W01
    (2026, 1, 5, 0, 0, 0, 0),  # Monday
    (2026, 1, 31, 23, 59, 59, 999999),  # last of January (a Saturday)
    (2026, 2, 1, 0, 0, 0, 0),
    (2026, 3, 8, 3, 0, 0, 0),  # New York's first hour of summer time, a Sunday
    (2026, 3, 9, 0, 0, 0, 0),
    (2026, 4, 5, 1, 45, 0, 0),  # Lord Howe's repeated half hour
    (2026, 11, 1, 1, 30, 0, 0),  # New York's repeated hour, a Sunday
    (2026, 11, 1, 23, 59, 59, 999999),
    (2026, 11, 2, 0, 0, 0, 0),
    (2026, 12, 31, 23, 59, 59, 999999),  # Thursday of 2026-W53
    (2027, 1, 3, 23, 59, 59, 999999),  # still 2026-W53
    (2027, 1, 4, 0, 0, 0, 0),  # 2027-W01
)
AGENTS = ("A1", "B2", None, "C3")
UNTIMED = 7  # calls stored without a call time


def _zone(tz: tzinfo | str | None) -> tzinfo:
    return timezone.utc if tz is None else ZoneInfo(tz) if isinstance(tz, str) else tz


def edge_times() -> list[datetime]:
    """Each edge in each zone, both sides of a repeated hour, as UTC instants."""
    out: set[datetime] = set()
    for tz in ZONES:
        for edge in EDGES:
            for fold in (0, 1):
                out.add(datetime(*edge, fold=fold, tzinfo=_zone(tz)).astimezone(timezone.utc))
    return sorted(out)


def variant(qa: QAResult, k: int) -> QAResult | None:
    """The stored QA of the k-th call: as run, none, without customer speech, out of zero points, or with its
    first rule ungraded and the others' verdicts flipped."""
    kind = k % 5
    if kind == 1:
        return None
    if kind == 2:
        by_party = {p: v for p, v in (qa.sentiment.get("by_party") or {}).items() if p != "customer"}
        return dataclasses.replace(qa, sentiment={**qa.sentiment, "by_party": by_party})
    if kind == 3:
        return dataclasses.replace(qa, score=0.0, max_score=0.0)
    if kind == 4:
        first, *rest = qa.rules
        flipped = [dataclasses.replace(r, passed=not r.passed) for r in rest]
        return dataclasses.replace(qa, rules=(dataclasses.replace(first, graded=False), *flipped))
    return qa


def fill(store: Store, calls: tuple[StoreCall, ...]) -> int:
    """Store the edge calls (each a base call under another recording hash) and the untimed ones; how many."""
    times: list[datetime | None] = [*edge_times(), *([None] * UNTIMED)]
    stored: list[tuple[int, int]] = []
    for k, when in enumerate(times):
        base = calls[k % len(calls)]
        t = dataclasses.replace(base.transcript, call=dataclasses.replace(base.transcript.call, sha256=f"{k:064x}"))
        meta = CallMeta(AGENTS[k % len(AGENTS)], when, "billing")
        stored.append((k, store.add(t, variant(base.qa, k), meta=meta)))
    untimed = [call_id for k, call_id in stored if times[k] is None]
    created = edge_times()[:: max(1, len(edge_times()) // UNTIMED)]
    with store.engine.begin() as conn:  # as if stored at those times
        for call_id, at in zip(untimed, created, strict=False):
            conn.execute(update(CallRow).where(CallRow.id == call_id).values(created_at=at))
    return len(times)


def same(sql: list[AgentPeriod], python: list[AgentPeriod]) -> None:
    assert [(p.agent_id, p.period) for p in sql] == [(p.agent_id, p.period) for p in python]
    for a, b in zip(sql, python, strict=True):
        exact = ("period_start", "calls", "scored_calls", "needs_review", "rule_graded")
        assert {f: getattr(a, f) for f in exact} == {f: getattr(b, f) for f in exact}, (a.agent_id, a.period)
        assert a.period_start.utcoffset() == b.period_start.utcoffset()
        for f in ("mean_score", "mean_score_pct", "talk_ratio", "customer_sentiment"):
            x, y = getattr(a, f), getattr(b, f)
            assert (x is None) == (y is None) and (x is None or x == pytest.approx(y, rel=1e-12)), (f, x, y)
        assert a.rule_fail_rates == pytest.approx(b.rule_fail_rates, rel=1e-12)


@pytest.fixture(scope="module")
def calls(evalset: Path, examples_dir: Path) -> tuple[StoreCall, ...]:
    return store_calls(str(evalset), str(examples_dir))


@pytest.fixture(scope="module", params=ENGINES)
def filled(request: pytest.FixtureRequest, calls: tuple[StoreCall, ...], tmp_path_factory: pytest.TempPathFactory):
    with fresh_url(request.param, tmp_path_factory.mktemp("db")) as url:
        store = Store(url)
        try:
            yield store, fill(store, calls)
        finally:
            store.close()


@pytest.mark.parametrize("tz", ZONES, ids=lambda z: str(z))
@pytest.mark.parametrize("by", ["week", "month"])
def test_sql_report_matches_the_python_report(filled, by: str, tz: tzinfo | str | None) -> None:
    store, n = filled
    rows = store.agent_report(by, tz=tz)
    same(rows, python_report(store, by, tz=tz))
    assert sum(r.calls for r in rows) == n
    assert {r.agent_id for r in rows} == set(AGENTS)
    if by == "week":  # the year's last week and the next
        assert {"2026-W53", "2027-W01"} <= {r.period for r in rows}


@pytest.mark.parametrize(
    ("since", "until", "agent"),
    [
        (date(2026, 2, 1), date(2026, 11, 2), None),
        ("2026-01-05T00:00", "2027-01-04T05:00Z", "A1"),
        (datetime(2026, 11, 1, 5, 30, tzinfo=timezone.utc), None, None),
        (None, datetime(2026, 3, 8, 7, tzinfo=timezone.utc), None),
        (None, None, "nobody"),
    ],
)
@pytest.mark.parametrize("tz", ["America/New_York", "Australia/Lord_Howe", None])
def test_sql_report_matches_with_filters(filled, since, until, agent, tz) -> None:
    store, _ = filled
    for by in ("week", "month"):
        same(
            store.agent_report(by, since, until, agent=agent, tz=tz),
            python_report(store, by, since, until, agent=agent, tz=tz),
        )


def test_an_empty_store_reports_nothing(tmp_path: Path) -> None:
    with fresh_url("sqlite", tmp_path) as url, Store(url) as store:
        assert store.agent_report("week", tz="America/New_York") == [] == store.agent_report("month")
        with pytest.raises(ValueError, match="not known"):
            store.agent_report(tz="Mars/Olympus_Mons")


@pytest.mark.parametrize(("per_mask", "masks"), [(2, 8), (31, 0)])
def test_sqlite_with_many_rule_ids(filled, monkeypatch: pytest.MonkeyPatch, per_mask: int, masks: int) -> None:
    """More rule ids than one mask holds (several masks), and more than the masks hold (the verdicts sorted)."""
    store, _ = filled
    if store.dialect != "sqlite":
        pytest.skip("the rule masks are SQLite's")
    monkeypatch.setattr(reports, "MASK_RULES", per_mask)
    monkeypatch.setattr(reports, "MAX_MASKS", masks)
    for by, tz in (("week", "America/New_York"), ("month", None)):
        same(store.agent_report(by, tz=tz), python_report(store, by, tz=tz))
