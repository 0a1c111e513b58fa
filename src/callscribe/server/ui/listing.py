"""The calls page's query: filters from the URL, one page of ``Store.calls`` (LIMIT/OFFSET, one row more than shown
to know whether a next page exists; no count of every match, which would cost a scan at 100k calls).

The customer-mood filter is the store's (``Store.calls(sentiment=...)``, an indexed column on the call row), so a
mood page fills like any other.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, tzinfo
from datetime import time as dtime
from typing import Any
from urllib.parse import urlencode

from callscribe.store.moods import MOODS
from callscribe.store.moods import mood_of as mood_of  # re-exported: the desk's mood labels

SORTS = ("-call_time", "call_time", "-score", "score", "-created", "created")
PER_PAGE = 50
MAX_PER_PAGE = 200
STATES = ("finished", "live", "all")
NUMBER_QUERY_DIGITS = 3


@dataclass(frozen=True)
class Filters:
    q: str = ""
    since: date | None = None  # first day (inclusive), in the desk's time zone
    until: date | None = None  # last day (inclusive)
    agent: str = ""
    queue: str = ""
    min_score: float | None = None
    max_score: float | None = None
    rule: str = ""  # a rule that failed
    review: str = ""  # "yes" | "no" | ""
    mood: str = ""  # customer sentiment: one of MOODS or ""
    state: str = "finished"
    sort: str = "-call_time"
    offset: int = 0
    per: int = PER_PAGE
    errors: tuple[str, ...] = field(default=(), compare=False)

    def params(self, **change: Any) -> str:
        """The query string of these filters (with ``change`` applied), defaults left out."""
        f = replace(self, **change)
        plain = {
            "q": f.q,
            "since": f.since.isoformat() if f.since else "",
            "until": f.until.isoformat() if f.until else "",
            "agent": f.agent,
            "queue": f.queue,
            "min_score": "" if f.min_score is None else f"{f.min_score:g}",
            "max_score": "" if f.max_score is None else f"{f.max_score:g}",
            "rule": f.rule,
            "review": f.review,
            "mood": f.mood,
            "state": "" if f.state == "finished" else f.state,
            "sort": "" if f.sort == "-call_time" else f.sort,
            "offset": str(f.offset) if f.offset else "",
            "per": "" if f.per == PER_PAGE else str(f.per),
        }
        return urlencode({k: v for k, v in plain.items() if v})

    def store_kwargs(self, tz: tzinfo) -> dict[str, Any]:
        return {
            "q": self.q or None,
            "since": _midnight(self.since, tz),
            "until": _midnight(self.until + timedelta(days=1), tz) if self.until else None,
            "agent": self.agent or None,
            "queue": self.queue or None,
            "min_score": self.min_score,
            "max_score": self.max_score,
            "rule_failed": self.rule or None,
            "needs_review": {"yes": True, "no": False}.get(self.review),
            "sentiment": self.mood or None,
            "order_by": self.sort,
        }


def _midnight(day: date | None, tz: tzinfo) -> datetime | None:
    return datetime.combine(day, dtime(), tzinfo=tz) if day else None


def parse_filters(query: dict[str, str]) -> Filters:
    """Filters from query parameters; a bad value is dropped and named in ``errors`` (the page says which)."""
    errors: list[str] = []

    def text(name: str, limit: int = 200) -> str:
        return (query.get(name) or "").strip()[:limit]

    def day(name: str) -> date | None:
        raw = text(name)
        if not raw:
            return None
        try:
            return date.fromisoformat(raw[:10])
        except ValueError:
            errors.append(f"{name}={raw!r}: expected a date like 2026-01-31")
            return None

    def number(name: str) -> float | None:
        raw = text(name)
        if not raw:
            return None
        try:
            return float(raw)
        except ValueError:
            errors.append(f"{name}={raw!r}: expected a number")
            return None

    def choice(name: str, allowed: tuple[str, ...], default: str) -> str:
        raw = text(name)
        if raw and raw not in allowed:
            errors.append(f"{name}={raw!r}: expected one of {', '.join(allowed)}")
            return default
        return raw or default

    def integer(name: str, default: int, lo: int, hi: int) -> int:
        raw = text(name)
        try:
            return min(hi, max(lo, int(raw))) if raw else default
        except ValueError:
            errors.append(f"{name}={raw!r}: expected a whole number")
            return default

    return Filters(
        q=text("q", 500),
        since=day("since"),
        until=day("until"),
        agent=text("agent"),
        queue=text("queue"),
        min_score=number("min_score"),
        max_score=number("max_score"),
        rule=text("rule"),
        review=choice("review", ("yes", "no"), ""),
        mood=choice("mood", MOODS, ""),
        state=choice("state", STATES, "finished"),
        sort=choice("sort", SORTS, "-call_time"),
        offset=integer("offset", 0, 0, 10**9),
        per=integer("per", PER_PAGE, 1, MAX_PER_PAGE),
        errors=tuple(errors),
    )


def asks_for_numbers(q: str) -> bool:
    """Whether a search names a number of three digits or more, written or spoken (``138``, ``一三八``): a reviewer
    without ``pii`` could otherwise learn which calls hold a phone or card number they can only see masked."""
    from callscribe.text.digit_runs import digit_runs

    return any(len(run.digits) >= NUMBER_QUERY_DIGITS for run in digit_runs(q))


@dataclass
class Page:
    rows: list[Any]
    moods: dict[int, str]  # the customer mood of each row, when the page is filtered by it
    next_offset: int | None  # None: no more
    prev_offset: int | None


def calls_page(store: Any, f: Filters, tz: tzinfo) -> Page:
    """One page of calls for ``f``; ``store.calls`` raises ``QueryError``/``ValueError`` for a bad query."""
    rows = store.calls(**f.store_kwargs(tz), limit=f.per + 1, offset=f.offset)
    more = len(rows) > f.per
    rows = rows[: f.per]
    return Page(
        rows,
        {r.id: f.mood for r in rows} if f.mood else {},
        f.offset + f.per if more else None,
        max(0, f.offset - f.per) if f.offset else None,
    )
