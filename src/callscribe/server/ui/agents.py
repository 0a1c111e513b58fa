"""The agents page: ``Store.agent_report`` shaped by :mod:`callscribe.report_agents` (its rows, chart and workbook)
plus a table of each rule's failure rate per period."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any

from callscribe.report_agents import AgentRow, chart_svg, from_store, write_xlsx

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PERIODS = ("week", "month")


@dataclass(frozen=True)
class AgentQuery:
    by: str = "week"
    since: date | None = None
    until: date | None = None  # inclusive
    agent: str = ""

    def params(self) -> str:
        from urllib.parse import urlencode

        plain = {"by": self.by, "since": self.since.isoformat() if self.since else "",
                 "until": self.until.isoformat() if self.until else "", "agent": self.agent}  # fmt: skip
        return urlencode({k: v for k, v in plain.items() if v})


def _day(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw.strip()[:10]) if raw and raw.strip() else None
    except ValueError:
        return None


def parse(query: dict[str, str]) -> AgentQuery:
    by = query.get("by", "week")
    return AgentQuery(
        by=by if by in PERIODS else "week",
        since=_day(query.get("since")),
        until=_day(query.get("until")),
        agent=(query.get("agent") or "").strip()[:200],
    )


def report(store: Any, q: AgentQuery, tz: tzinfo) -> list[Any]:
    """The store's ``AgentPeriod`` rows for the query (``until`` is the last day shown)."""
    since = datetime.combine(q.since, time(), tzinfo=tz) if q.since else None
    until = datetime.combine(q.until + timedelta(days=1), time(), tzinfo=tz) if q.until else None
    return list(store.agent_report(q.by, since, until, agent=q.agent or None, tz=tz))


def rows(periods: list[Any]) -> list[AgentRow]:
    return from_store(periods)


def chart(found: list[AgentRow]) -> str:
    return chart_svg(found) if found else ""


def rules_table(periods: list[Any]) -> dict[str, Any]:
    """Failure rate of each rule per period, over every agent's graded calls."""
    labels = sorted({p.period for p in periods})
    failed: dict[tuple[str, str], float] = {}
    graded: dict[tuple[str, str], int] = {}
    for p in periods:
        for rule, n in p.rule_graded.items():
            key = (rule, p.period)
            graded[key] = graded.get(key, 0) + n
            failed[key] = failed.get(key, 0.0) + p.rule_fail_rates.get(rule, 0.0) * n
    rules = sorted({rule for rule, _ in graded})
    rates = {k: failed[k] / n for k, n in graded.items() if n}
    return {"periods": labels, "rules": rules, "rates": rates, "graded": graded}


def xlsx(found: list[AgentRow], by: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="callscribe-agents-") as tmp:
        path = write_xlsx(found, Path(tmp) / "agents.xlsx", by)
        return path.read_bytes()
