"""How a search runs on SQLite: from the index's matches, or from the newest calls down.

Hits come newest call first, so a search can run two ways. *From the matches*: read the utterances FTS5 finds,
join their calls, sort, keep the first page; the cost grows with the number of matches (a word in a third of a
million utterances means a third of a million joins and a sort). *From the calls*: walk the calls newest first
(``ix_calls_call_time``) and each call's utterances in order, keeping those in the set of matches, and stop at a
full page; cheap when matches are common, a walk through everything when they are rare. SQLite's planner knows
nothing about how many rows a ``MATCH`` gives, so the store decides: it counts the matches of the query's most
selective clause (FTS5 reads only that much of a posting list); below a cap (~sqrt(20 n) for n utterances) it
runs from the matches, otherwise it walks the newest calls, as many as running from the matches would cost, and
only when they do not fill the page (a selective filter) it runs from the matches after all. Filter columns are
wrapped in :class:`~callscribe.store.query.unindexed` (a ``+`` in SQLite) so that an index on them (role, agent,
queue) never takes over the plan that was chosen. PostgreSQL plans with its own statistics.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ColumnElement, Connection, Row, Select, func, literal_column, select, table
from sqlalchemy.orm import Session

from callscribe.store.models import CallRow, UtteranceRow
from callscribe.store.query import Query, fts5_string

WINDOW = 2000  # newest calls a search over common words walks at least before it falls back to the matches
MIN_CAP = 2000  # at least this many matches run from the calls
WALK_MAX = 20  # matches are counted up to this many times the cap
JOIN_STEPS = 2.5  # a join from the matches costs about this many steps of the walk


def sizes(conn: Connection) -> tuple[int, float]:
    """(utterances, utterances per call), from the largest ids (no count of the tables)."""
    utterances = conn.execute(select(func.max(UtteranceRow.id))).scalar() or 0
    calls = conn.execute(select(func.max(CallRow.id))).scalar() or 0
    return int(utterances), (utterances / calls if calls else 1.0)


def cap(utterances: int) -> int:
    """Matches from which walking the calls is cheaper: about sqrt(20 n) for n utterances (a page of 50 needs
    ~50 n / m steps from the calls, m joins from the matches; a join costs ~2.5 steps)."""
    return max(MIN_CAP, int(math.sqrt(20 * utterances)))


def _count(conn: Connection, tokens: tuple[str, ...], limit: int) -> int:
    match = literal_column("utterances_fts").op("MATCH", return_type=Boolean)(fts5_string(tokens))
    inner = select(literal_column("1")).select_from(table("utterances_fts")).where(match).limit(limit).subquery()
    return int(conn.execute(select(func.count()).select_from(inner)).scalar() or 0)


def matches(conn: Connection, q: Query, limit: int) -> int:
    """An upper bound on the utterances the query matches, counted up to ``limit``: the fewest index matches of a
    clause with no NOT (each OR counted in full); ``limit`` when every clause has a NOT."""
    best = limit
    for clause in q.clauses:
        if any(a.negated for a in clause):
            continue
        total = 0
        for atom in clause:
            total += _count(conn, atom.tokens, best - total)
            if total >= best:
                break
        best = min(best, total)
    return best


def newest_bound(conn: Connection, since: datetime | None, until: datetime | None, window: int) -> datetime | None:
    """The call time of the ``window``-th newest call in the time range: walking the calls down to it covers the
    window. None when the range holds fewer calls or that call has no time: the walk then covers them all."""
    stmt = select(CallRow.call_time).order_by(CallRow.call_time.desc().nulls_last(), CallRow.id.desc())
    if since is not None:
        stmt = stmt.where(CallRow.call_time >= since)
    if until is not None:
        stmt = stmt.where(CallRow.call_time < until)
    return conn.execute(stmt.offset(window - 1).limit(1)).scalar()


@dataclass(frozen=True)
class Shape:
    """How to run one query of a page: ``walk`` (SQLite) the calls newest first probing the set of matches, down
    to ``bound`` when given; ``timed`` (PostgreSQL) only the calls with (True) or without (False) a call time, in
    the order an index gives; the rows ``offset`` and ``limit``."""

    offset: int = 0
    limit: int | None = None
    walk: bool = False
    bound: datetime | None = None
    timed: bool | None = None

    def newest_first(self) -> tuple[list[ColumnElement[bool]], list[Any]]:
        """(conditions, ORDER BY) for calls newest first, calls without a time last, then by id descending."""
        if self.timed is True:  # DESC is NULLS FIRST on PostgreSQL: ix_calls_call_time read backwards
            return [CallRow.call_time.isnot(None)], [CallRow.call_time.desc(), CallRow.id.desc()]
        if self.timed is False:
            return [CallRow.call_time.is_(None)], [CallRow.id.desc()]
        where = [CallRow.call_time >= self.bound] if self.bound is not None else []
        return where, [CallRow.call_time.desc().nulls_last(), CallRow.id.desc()]


Build = Callable[[Shape], Select[Any]]


def ordered_rows(
    session: Session,
    dialect: str,
    q: Query | None,
    build: Build,
    since: datetime | None,
    until: datetime | None,
    offset: int,
    limit: int | None,
) -> list[Row[Any]]:
    """The page ``offset``/``limit`` of ``build``'s rows, newest call first. SQLite: a walk from the newest calls
    when the query's matches are common (it counts only when it fills the page), else from the matches.
    PostgreSQL: the calls with a time, then (when the page is not full and no time range excludes them) those
    without one, each in the order of an index, so the planner can walk the newest calls."""
    if limit is None or limit <= 0:
        return list(session.execute(build(Shape(offset, limit))).all())
    if dialect == "postgresql":
        need = offset + limit
        timed = list(session.execute(build(Shape(0, need, timed=True))).all())
        if len(timed) >= need or since is not None or until is not None:
            return timed[offset:]
        untimed = Shape(max(0, offset - len(timed)), need - max(len(timed), offset), timed=False)
        return timed[offset:] + list(session.execute(build(untimed)).all())
    if q is not None:
        conn = session.connection()
        utterances, per_call = sizes(conn)
        found = matches(conn, q, WALK_MAX * cap(utterances))
        if found >= cap(utterances):
            # walk as many calls as running from the matches would cost (a join ~ JOIN_STEPS steps of the walk)
            window = max(WINDOW, int(found * JOIN_STEPS / max(per_call, 1.0)))
            bound = newest_bound(conn, since, until, window)
            rows = list(session.execute(build(Shape(offset, limit, walk=True, bound=bound))).all())
            if bound is None or len(rows) >= limit:
                return rows
    return list(session.execute(build(Shape(offset, limit))).all())
