"""Report periods in SQL: the local day a week (ISO, from Monday) or month starts on, per database.

A call's time is stored in UTC. Its local time in the report's zone is the UTC time plus the zone's offset at that
instant, taken from Python's own zone data (``zoneinfo``), so both databases and Python agree on every call: a
fixed offset is a constant; a zone with daylight saving gets a ``CASE`` (a balanced tree of comparisons) over the
offset changes between the earliest and latest call time reported, found by sampling the zone every few hours and
bisecting each change to the second (cached per zone and year). SQLite takes the period's first day with
``julianday(…, 'weekday 0', '-6 days')`` or ``'start of month'`` on the time cut to whole seconds (which never
changes the day) and gives it as a Julian day number; PostgreSQL with ``date_trunc`` on the local timestamp, as a
date. Offsets are whole seconds, as in every real zone.
"""

from __future__ import annotations

import functools
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement, Date, Integer, Interval, case, cast, func, literal, literal_column

from callscribe.store.coltypes import UTCDateTime

PERIODS = ("week", "month")
SAMPLE_S = 6 * 3600  # offset changes closer together than this are not looked for (no zone has them)
FIRST_YEAR, LAST_YEAR = 1800, 2200  # offset changes are looked for between these years
JDN_OF_ORDINAL_0 = 1721425  # Julian day number of the day before 0001-01-01 (date.toordinal() == 0)

Change = tuple[datetime, int]  # from this UTC instant on, this offset (seconds)


def zone_of(tz: tzinfo | str | None) -> tzinfo:
    """The report's time zone: UTC, a zone name or a ``tzinfo``."""
    if tz is None:
        return timezone.utc
    if isinstance(tz, tzinfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"time zone {tz!r} is not known (e.g. UTC, Asia/Shanghai)") from None


def _offset_s(zone: tzinfo, at: datetime) -> int:
    off = at.astimezone(zone).utcoffset() or timedelta()
    if off.microseconds:
        raise ValueError(f"time zone {zone} has an offset of {off}, not whole seconds")
    return int(off.total_seconds())


def _offset_at(zone: tzinfo, unix_s: int) -> int:
    return _offset_s(zone, datetime.fromtimestamp(unix_s, timezone.utc))


def fixed_offset(zone: tzinfo) -> int | None:
    """The zone's offset in seconds when it never changes (``datetime.timezone``), else None."""
    return _offset_s(zone, datetime(2000, 1, 1, tzinfo=timezone.utc)) if isinstance(zone, timezone) else None


@functools.lru_cache(maxsize=4096)
def _year_changes(zone: tzinfo, year: int) -> tuple[Change, ...]:
    """The zone's offset changes in (1 January ``year``, 1 January ``year + 1``], UTC."""
    start = int(datetime(year, 1, 1, tzinfo=timezone.utc).timestamp())
    end = int(datetime(year + 1, 1, 1, tzinfo=timezone.utc).timestamp())
    out: list[Change] = []
    t, current = start, _offset_at(zone, start)
    while t < end:
        nxt = min(t + SAMPLE_S, end)
        if _offset_at(zone, nxt) != current:
            lo, hi = t, nxt  # the first second in (lo, hi] with another offset
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if _offset_at(zone, mid) == current else (lo, mid)
            current = _offset_at(zone, hi)
            out.append((datetime.fromtimestamp(hi, timezone.utc), current))
            nxt = hi
        t = nxt
    return tuple(out)


def offsets(zone: tzinfo, lo: datetime, hi: datetime) -> tuple[int, tuple[Change, ...]]:
    """(the offset at ``lo``, the changes in (lo, hi]) in seconds; changes are looked for between FIRST_YEAR and
    LAST_YEAR."""
    first = _offset_s(zone, lo)
    years = range(max(lo.year, FIRST_YEAR), min(hi.year, LAST_YEAR) + 1)
    return first, tuple(c for y in years for c in _year_changes(zone, y) if lo < c[0] <= hi)


def _offset_tree(when: ColumnElement[Any], before: int, changes: tuple[Change, ...], fmt: Any) -> Any:
    """The offset at ``when``: ``before`` until the first change, then each change's (a balanced CASE)."""
    if not changes:
        return fmt(before)
    mid = len(changes) // 2
    at, after = changes[mid]
    return case(
        (when < literal(at, UTCDateTime()), _offset_tree(when, before, changes[:mid], fmt)),
        else_=_offset_tree(when, after, changes[mid + 1 :], fmt),
    )


def period_start(
    when: ColumnElement[Any], by: str, dialect: str, zone: tzinfo, span: tuple[datetime, datetime] | None
) -> ColumnElement[Any]:
    """The first day of ``when``'s period in ``zone``: a Julian day number on SQLite, a date on PostgreSQL (see
    :func:`as_date`). ``span``: the earliest and latest ``when`` reported, for a zone whose offset may change."""
    if by not in PERIODS:
        raise ValueError(f"report period {by!r} is not one of {', '.join(PERIODS)}")
    fixed = fixed_offset(zone)
    if fixed is not None or span is None:
        before, changes = (fixed or 0), ()
    else:
        before, changes = offsets(zone, *span)
    if dialect == "postgresql":
        local = func.timezone("UTC", when)
        if before or changes:
            local = local + _offset_tree(when, before, changes, _interval)
        return cast(func.date_trunc(by, local), Date)
    shift = _offset_tree(when, before, changes, _modifier)
    steps = ("weekday 0", "-6 days") if by == "week" else ("start of month",)
    day = func.julianday(func.substr(when, 1, 19), shift, *(literal_column(f"'{s}'") for s in steps))
    return cast(day + 0.5, Integer)


def _interval(seconds: int) -> Any:
    return literal_column(f"INTERVAL '{seconds} seconds'", Interval())


def _modifier(seconds: int) -> Any:
    return literal_column(f"'{seconds:+d} seconds'")


def as_date(value: date | int) -> date:
    """A period start as the query gave it (a date, or a Julian day number from SQLite) as a date."""
    if isinstance(value, int):
        return date.fromordinal(value - JDN_OF_ORDINAL_0)
    return value if not isinstance(value, datetime) else value.date()


def label(start: date, by: str) -> str:
    """``2026-W02`` (the ISO week of its Monday) or ``2026-01``."""
    if by == "week":
        iso = start.isocalendar()
        return f"{iso[0]}-W{iso[1]:02d}"
    return f"{start.year}-{start.month:02d}"


def local_midnight(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone)
