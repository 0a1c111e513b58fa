"""How a search runs: from the index's matches, or from the newest calls down.

Hits come newest call first, so a search can run two ways. *From the matches*: read the utterances the index
finds, join their calls, sort, keep the first page; the cost grows with the number of matches (a word in a third
of a million utterances means a third of a million joins and a sort). *From the calls*: walk the calls newest
first (``ix_calls_call_time``) and each call's utterances in order, checking each, and stop at a full page; cheap
when matches are common, a walk through everything when they are rare. Neither planner knows how many utterances
a query matches (SQLite knows nothing about a ``MATCH``; PostgreSQL multiplies its characters' frequencies and
guesses LIKE patterns), so the store decides: it counts the matches of the query's most selective clause up to
a cap (~sqrt(20 n) for n utterances; FTS5 reads only that much of a posting list, PostgreSQL that many rows of a
GIN bitmap scan). Below the cap it runs from the matches; otherwise it walks the newest calls, as many as running
from the matches would cost, and only when they do not fill the page (a selective filter) it runs from the
matches after all. A query with a clause that matches nothing returns at once.

SQLite: the walk checks an utterance against the set of matches (``+id IN (...)``, built once), or, for words in
a large share of the utterances, against the row's own tokens, so that set is never built. Filter columns are
wrapped in :class:`~callscribe.store.query.unindexed` (a ``+``) so that an index on them (role, agent, queue)
never takes over the plan that was chosen. PostgreSQL: the walk checks ``ts_match_vq`` on each utterance (no
index serves it), and planner settings local to the search's transaction hold the planner to the plan chosen;
the counts and the walk's bound are one statement.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Connection,
    Row,
    ScalarSelect,
    Select,
    func,
    literal_column,
    select,
    table,
)
from sqlalchemy.orm import Session

from callscribe.store.models import CallRow, UtteranceRow
from callscribe.store.query import Query, fts5_string, index_match

WINDOW = 2000  # newest calls a search over common words walks at least before it falls back to the matches
MIN_CAP = 2000  # at least this many matches run from the calls
WALK_MAX = 8  # matches are counted up to this many times the cap
JOIN_STEPS = 2.5  # a join from the matches costs about this many steps of the walk
ROW_CHECK = 4  # SQLite: from this many times the cap of matches a walk checks each row's tokens, not the set of matches


def sizes(conn: Connection) -> tuple[int, float]:
    """(utterances, utterances per call), from the largest ids (no count of the tables)."""
    found = conn.execute(
        select(select(func.max(UtteranceRow.id)).scalar_subquery(), select(func.max(CallRow.id)).scalar_subquery())
    ).one()
    utterances, calls = found[0] or 0, found[1] or 0
    return int(utterances), (utterances / calls if calls else 1.0)


def cap(utterances: int) -> int:
    """Matches from which walking the calls is cheaper: about sqrt(20 n) for n utterances (a page of 50 needs
    ~50 n / m steps from the calls, m joins from the matches; a join costs ~2.5 steps)."""
    return max(MIN_CAP, int(math.sqrt(20 * utterances)))


def _count(conn: Connection, tokens: tuple[str, ...], limit: int) -> int:
    match = literal_column("utterances_fts").op("MATCH", return_type=Boolean)(fts5_string(tokens))
    inner = select(literal_column("1")).select_from(table("utterances_fts")).where(match).limit(limit).subquery()
    return int(conn.execute(select(func.count()).select_from(inner)).scalar() or 0)


def _pg_count(tokens: tuple[str, ...], limit: int) -> ScalarSelect[Any]:
    inner = select(literal_column("1")).select_from(UtteranceRow).where(index_match(tokens, "postgresql"))
    return select(func.count()).select_from(inner.limit(limit).subquery()).scalar_subquery()


def _fewest(q: Query, counts: dict[tuple[str, ...], int], limit: int) -> int:
    best = limit
    for clause in q.clauses:
        if not any(a.negated for a in clause):
            best = min(best, sum(counts[a.tokens] for a in clause))
    return best


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


def newest_bound(
    conn: Connection, since: datetime | None, until: datetime | None, window: int, timed: bool = False
) -> datetime | None:
    """The call time of the ``window``-th newest call in the time range (``timed``: of those with a time, in the
    order PostgreSQL's index gives): walking the calls down to it covers the window. None when the range holds
    fewer calls or that call has no time: the walk then covers them all."""
    return conn.execute(_newest(since, until, window, timed)).scalar()


def _newest(since: datetime | None, until: datetime | None, window: int, timed: bool) -> Select[Any]:
    if timed:
        stmt = select(CallRow.call_time).where(CallRow.call_time.isnot(None)).order_by(CallRow.call_time.desc())
    else:
        stmt = select(CallRow.call_time).order_by(CallRow.call_time.desc().nulls_last(), CallRow.id.desc())
    if since is not None:
        stmt = stmt.where(CallRow.call_time >= since)
    if until is not None:
        stmt = stmt.where(CallRow.call_time < until)
    return stmt.offset(window - 1).limit(1)


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
    by_row: bool = False

    @property
    def probe(self) -> bool | str:
        """How the walk checks an utterance (see :func:`~callscribe.store.query.index_match`): False (no walk),
        True (against the index), ``"row"`` (SQLite: in the row's tokens)."""
        return "row" if self.walk and self.by_row else self.walk

    def newest_first(self) -> tuple[list[ColumnElement[bool]], list[Any]]:
        """(conditions, ORDER BY) for calls newest first, calls without a time last, then by id descending."""
        if self.timed is True:  # DESC is NULLS FIRST on PostgreSQL: ix_calls_call_time read backwards
            bound = [CallRow.call_time >= self.bound] if self.bound is not None else []
            return [CallRow.call_time.isnot(None), *bound], [CallRow.call_time.desc(), CallRow.id.desc()]
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
        return _postgres_rows(session, q, build, since, until, offset, limit)
    if q is not None:
        conn = session.connection()
        utterances, per_call = sizes(conn)
        found = matches(conn, q, WALK_MAX * cap(utterances))
        if found == 0:  # a clause no utterance meets: nothing to find
            return []
        if found >= cap(utterances):
            # walk as many calls as running from the matches would cost (a join ~ JOIN_STEPS steps of the walk)
            window = max(WINDOW, int(found * JOIN_STEPS / max(per_call, 1.0)))
            bound = newest_bound(conn, since, until, window)
            by_row = found >= ROW_CHECK * cap(utterances)
            rows = list(session.execute(build(Shape(offset, limit, walk=True, bound=bound, by_row=by_row))).all())
            if bound is None or len(rows) >= limit:
                return rows
    return list(session.execute(build(Shape(offset, limit))).all())


def _postgres_rows(
    session: Session,
    q: Query | None,
    build: Build,
    since: datetime | None,
    until: datetime | None,
    offset: int,
    limit: int,
) -> list[Row[Any]]:
    """The calls with a time newest first (``ix_calls_call_time`` read backwards), then, when the page is not full
    and no time range excludes them, those without one. A query whose matches reach the cap walks the newest calls
    with a time (down to the window's bound), probing each call's utterances; fewer matches, or a walk that leaves
    the page short, run from the matches. Planner settings hold PostgreSQL to the plan chosen."""
    need = offset + limit
    if q is None:
        return _timed_then_untimed(session, build, since, until, offset, limit)
    conn = session.connection()
    utterances, per_call = sizes(conn)
    limit_count = cap(utterances)
    window = max(WINDOW, int(limit_count * JOIN_STEPS / max(per_call, 1.0)))
    atoms = list(dict.fromkeys(a.tokens for clause in q.clauses for a in clause if not a.negated))
    # one statement: each positive term's matches (up to the cap) and the call time the walk would stop at
    newest = _newest(since, until, window, timed=True).scalar_subquery()
    found = conn.execute(select(*(_pg_count(t, limit_count) for t in atoms), newest)).one()
    bound = found[-1]
    fewest = _fewest(q, dict(zip(atoms, found[:-1], strict=True)), limit_count)
    if fewest == 0:  # a clause no utterance meets: nothing to find
        return []
    if fewest >= limit_count:
        _plan(conn, _WALK)
        walked = list(session.execute(build(Shape(0, need, walk=True, bound=bound, timed=True))).all())
        covered = bound is None  # the walk went through every call with a time (in the range)
        if len(walked) >= need or (covered and (since is not None or until is not None)):
            return walked[offset:]
        _plan(conn, _FROM_MATCHES)  # the calls without a time after all those with one, or the page from the matches
        return _timed_then_untimed(session, build, since, until, offset, limit, walked if covered else None)
    _plan(conn, _FROM_MATCHES)
    return _timed_then_untimed(session, build, since, until, offset, limit)


def _timed_then_untimed(
    session: Session,
    build: Build,
    since: datetime | None,
    until: datetime | None,
    offset: int,
    limit: int,
    timed: list[Row[Any]] | None = None,
) -> list[Row[Any]]:
    need = offset + limit
    if timed is None:
        timed = list(session.execute(build(Shape(0, need, timed=True))).all())
    if len(timed) >= need or since is not None or until is not None:
        return timed[offset:]
    untimed = Shape(max(0, offset - len(timed)), need - max(len(timed), offset), timed=False)
    return timed[offset:] + list(session.execute(build(untimed)).all())


# PostgreSQL's planner guesses how many utterances match (it multiplies the frequencies of a word's characters,
# guesses a LIKE pattern's), and a wrong guess picks the other plan. The count decided; these settings hold the
# planner to it for the statements of this search: a walk uses only index scans joined by nested loops (the
# newest calls by ix_calls_call_time, each call's utterances by call_id), running from the matches uses no plain
# index scan, so the calls cannot be walked in call time order (the matches come from the GIN index, their calls
# by primary key).
_WALK = {
    "enable_seqscan": "off",
    "enable_bitmapscan": "off",
    "enable_hashjoin": "off",
    "enable_mergejoin": "off",
    "enable_material": "off",
    "enable_indexscan": "on",
    "enable_indexonlyscan": "on",
    "max_parallel_workers_per_gather": "0",
}
_FROM_MATCHES = _WALK | {
    "enable_bitmapscan": "on",
    "enable_hashjoin": "on",
    "enable_mergejoin": "on",
    "enable_material": "on",
    "enable_indexscan": "off",
    "enable_indexonlyscan": "off",
}


def _plan(conn: Connection, settings: dict[str, str]) -> None:
    """Planner settings for the rest of the search's transaction (``set_config(..., is_local)``)."""
    conn.execute(select(*(func.set_config(n, v, True) for n, v in settings.items())))
