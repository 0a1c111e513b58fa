"""``Store``: calls, utterances and QA results in SQLite or PostgreSQL, searchable in Chinese and English."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic.util import CommandError
from sqlalchemy import Select, delete, exists, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, selectinload

from callscribe.model import QAResult, Transcript
from callscribe.store import schema
from callscribe.store.admin import AdminMixin
from callscribe.store.bulk import BulkMixin
from callscribe.store.connect import (
    DEFAULT_TIMEOUT_S,
    SQLITE_BEGIN,
    db_errors,
    describe_failure,
    make_engine,
    masked,
    one_line,
    parse_url,
    resolve_url,
)
from callscribe.store.filters import TimeLike, as_utc, call_filters
from callscribe.store.index import IndexMixin
from callscribe.store.ingest import coerce_qa, coerce_transcript, qa_dict, summary, transcript_dict
from callscribe.store.models import CallRow, QARow, RuleRow, SpeakerRow, UtteranceRow, utcnow
from callscribe.store.moods import mood_condition
from callscribe.store.plan import Shape, ordered_rows
from callscribe.store.query import condition, parse, unindexed
from callscribe.store.records import CallMeta, CallRecord, CallSummary, SearchHit, StoreError
from callscribe.store.reports import ReportMixin
from callscribe.store.tokens import HIGHLIGHT, Tokenizer, snippet
from callscribe.store.writer import write_call

log = logging.getLogger("callscribe")

# filter columns SQLite must not read from an index in a search: running from the matches, or walking the calls
SEARCH_UNINDEXED = {
    False: ("agent_id", "queue", "call_time", "needs_review", "customer_mood"),
    True: ("agent_id", "queue", "needs_review", "customer_mood"),
}
ORDER_BY = {
    "call_time": (CallRow.call_time.asc().nulls_last(), CallRow.id.asc()),
    "-call_time": (CallRow.call_time.desc().nulls_last(), CallRow.id.desc()),
    "score": (CallRow.score.asc().nulls_last(), CallRow.id.asc()),
    "-score": (CallRow.score.desc().nulls_last(), CallRow.id.desc()),
    "created": (CallRow.created_at.asc(), CallRow.id.asc()),
    "-created": (CallRow.created_at.desc(), CallRow.id.desc()),
    "id": (CallRow.id.asc(),),
    "-id": (CallRow.id.desc(),),
}


class Store(BulkMixin, IndexMixin, AdminMixin, ReportMixin):
    """A database of transcribed calls.

    ``Store(url)`` connects and checks the schema before anything else: an unreachable server, a bad URL, a locked
    SQLite file or a schema newer than this code raise :class:`StoreError` (one line). An empty database, or one
    at an older revision, is migrated to the current schema right away (``upgrade=False``: raise instead).
    ``url``: ``sqlite:///path.db``, a plain path, ``postgresql://user:pw@host/db``; default ``$CALLSCRIBE_DB``,
    else ``sqlite:///callscribe.db`` in the current directory.
    """

    def __init__(
        self,
        url: str | Path | None = None,
        *,
        upgrade: bool = True,
        timeout: float = DEFAULT_TIMEOUT_S,
        echo: bool = False,
    ) -> None:
        raw = resolve_url(url)
        self.url = parse_url(raw)
        self.display_url = masked(raw)  # how messages name the database: as given, password masked
        self.timeout = timeout
        self.engine = make_engine(self.url, self.display_url, timeout, echo)
        self.dialect = self.engine.dialect.name
        self._writer = self.engine.execution_options(**{SQLITE_BEGIN: "BEGIN IMMEDIATE"})
        self.opened_at: str | None = None  # the schema revision found when this Store opened the database
        try:
            self._open(upgrade)
            self.tokenizer = Tokenizer(self.terms())
        except BaseException:
            self.engine.dispose()
            raise

    def __repr__(self) -> str:
        return f"Store({self.display_url!r})"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.engine.dispose()

    # -- schema ---------------------------------------------------------------------------------------------
    def _open(self, upgrade: bool) -> None:
        try:
            with self._writer.begin() as conn:
                schema.lock(conn)
                st = schema.state(conn)
                self.opened_at = st.revision
                if st.current:
                    return
                if st.newer:
                    raise StoreError(
                        f"{self.display_url}: schema revision {st.revision} is newer than this callscribe "
                        f"(it knows up to {schema.head()}); upgrade callscribe"
                    )
                if st.revision is None and st.foreign_tables:
                    shown = ", ".join(st.foreign_tables[:3]) + (", ..." if len(st.foreign_tables) > 3 else "")
                    raise StoreError(
                        f"{self.display_url}: holds other tables ({shown}) but no callscribe schema; "
                        "use an empty database"
                    )
                if not upgrade:
                    have = f"at schema revision {st.revision}" if st.revision else "empty"
                    raise StoreError(
                        f"{self.display_url}: database is {have}, this callscribe needs {schema.head()}: "
                        f"{schema.UPGRADE_HINT}"
                    )
                schema.migrate(conn)
        except StoreError:
            raise
        except SQLAlchemyError as exc:
            raise describe_failure(self.url, self.display_url, exc, self.timeout) from None
        except CommandError as exc:
            raise StoreError(f"{self.display_url}: cannot migrate the schema ({one_line(exc)})") from None

    @db_errors
    def upgrade(self) -> tuple[str | None, str]:
        """Bring the schema to the current revision (a no-op when it is there); returns (the revision the database
        had when this Store opened it, ``None`` for empty; the revision now)."""
        with self._writer.begin() as conn:
            schema.lock(conn)
            if not schema.state(conn).current:
                schema.migrate(conn)
        return self.opened_at, schema.head()

    @property
    def revision(self) -> str:
        """The schema revision this code writes."""
        return schema.head()

    @contextmanager
    def _session(self, write: bool = False) -> Iterator[Session]:
        with Session(self._writer if write else self.engine, expire_on_commit=False) as s, s.begin():
            yield s

    # -- calls ----------------------------------------------------------------------------------------------
    @db_errors
    def add(
        self,
        transcript: Transcript | dict[str, Any],
        qa: QAResult | dict[str, Any] | None = None,
        *,
        meta: CallMeta | None = None,
        options_key: str | None = None,
        words: bool = True,
    ) -> int:
        """Store one call in one transaction and return its id.

        A call is identified by its recording's sha256 and ``options_key`` (default: the transcript's
        ``options["result_key"]``, else ""): adding it again replaces its utterances, speakers and QA in place
        (same id, ``created_at`` kept). ``qa`` is the QA result or its ``.qa.json`` dict; ``None`` stores none
        (and drops a stored one, which belonged to the old transcript). ``meta=None`` keeps the stored agent, call
        time, queue and extras. ``words=False`` leaves out word timings.
        """
        t, result, key, tokens = self._prepare(transcript, qa, options_key)
        for attempt in (1, 2):
            try:
                return self._write_call(t, result, meta, key, tokens, words)
            except IntegrityError as exc:
                raced = "sha256" in str(exc.orig) and "options_key" in str(exc.orig)
                if attempt == 1 and raced:  # another process stored the same call first: update it instead
                    continue
                raise StoreError(
                    f"{self.display_url}: cannot store {t.call.path or t.call.id} ({one_line(exc)})"
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _prepare(
        self, transcript: Transcript | dict[str, Any], qa: QAResult | dict[str, Any] | None, options_key: str | None
    ) -> tuple[Transcript, QAResult | None, str, list[str]]:
        """The checked transcript and QA, the options key and the search tokens (made before the write lock)."""
        t = coerce_transcript(transcript)
        result = coerce_qa(qa)
        if not t.call.sha256:
            raise ValueError(f"{t.call.path or t.call.id}: the transcript has no sha256 (needed to store it once)")
        if result is not None and result.call_id and result.call_id != t.call.id:
            raise ValueError(f"{t.call.path or t.call.id}: the QA result is for call {result.call_id!r}")
        key = options_key if options_key is not None else str(t.options.get("result_key") or "")
        return t, result, key, [" ".join(self.tokenizer.tokens(u.text)) for u in t.utterances]

    def _write_call(
        self, t: Transcript, qa: QAResult | None, meta: CallMeta | None, key: str, tokens: list[str], words: bool
    ) -> int:
        with self._session(write=True) as s:
            return write_call(s.connection(), t, qa, meta, key, tokens, words, utcnow())

    @db_errors
    def has(self, sha256: str, options_key: str = "") -> bool:
        """Whether the call with this recording and options is stored."""
        with self._session() as s:
            return bool(s.scalar(select(exists().where(CallRow.sha256 == sha256, CallRow.options_key == options_key))))

    @db_errors
    def find(self, sha256: str, options_key: str = "") -> int | None:
        """The id of the call with this recording and options, or None."""
        with self._session() as s:
            return s.scalar(select(CallRow.id).where(CallRow.sha256 == sha256, CallRow.options_key == options_key))

    @db_errors
    def call(self, call_id: int) -> CallRecord | None:
        """The whole call (transcript JSON and QA JSON), or None when there is no such call."""
        with self._session() as s:
            row = s.get(CallRow, call_id)
            if row is None:
                return None
            utts = s.scalars(
                select(UtteranceRow)
                .where(UtteranceRow.call_id == call_id)
                .order_by(UtteranceRow.idx)
                .options(selectinload(UtteranceRow.words))
            ).all()
            speakers = s.scalars(select(SpeakerRow).where(SpeakerRow.call_id == call_id).order_by(SpeakerRow.idx))
            qa = s.scalar(
                select(QARow)
                .where(QARow.call_id == call_id)
                .options(selectinload(QARow.rules).selectinload(RuleRow.hits), selectinload(QARow.sentiments))
            )
            return CallRecord(summary(row), transcript_dict(row, utts, speakers.all()), qa_dict(qa) if qa else None)

    @db_errors
    def calls(
        self,
        *,
        agent: str | None = None,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        queue: str | None = None,
        needs_review: bool | None = None,
        rule_failed: str | None = None,
        min_score: float | None = None,
        max_score: float | None = None,
        sentiment: str | None = None,
        q: str | None = None,
        order_by: str = "-call_time",
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[CallSummary]:
        """Calls matching every filter given. ``since`` is inclusive, ``until`` exclusive (call time);
        ``sentiment`` the customer's mood (negative, neutral, positive, unknown: see :mod:`callscribe.store.moods`);
        ``q`` a search query some utterance must match; ``order_by`` one of call_time, score, created, id (``-``
        first: descending; calls without a time or score come last)."""
        if order_by not in ORDER_BY:
            raise ValueError(f"order_by {order_by!r} is not one of {', '.join(ORDER_BY)}")
        where = call_filters(
            agent=agent,
            queue=queue,
            since=since,
            until=until,
            needs_review=needs_review,
            rule_failed_id=rule_failed,
            min_score=min_score,
            max_score=max_score,
            sentiment=sentiment,
        )
        parsed = parse(q, self.tokenizer) if q is not None else None

        def build(shape: Shape) -> Select[Any]:
            cond, order = shape.newest_first() if order_by == "-call_time" else ([], list(ORDER_BY[order_by]))
            stmt = select(CallRow).where(*where, *cond).order_by(*order).offset(shape.offset).limit(shape.limit)
            if parsed is None:
                return stmt
            if not shape.walk:  # the calls of the matching utterances
                return stmt.where(CallRow.id.in_(select(UtteranceRow.call_id).where(condition(parsed, self.dialect))))
            probe = condition(parsed, self.dialect, probe=shape.probe)
            said = exists().where(UtteranceRow.call_id == CallRow.id, probe)
            return stmt.where(said)

        with self._session() as s:
            if order_by == "-call_time":
                rows = ordered_rows(s, self.dialect, parsed, build, as_utc(since), as_utc(until), offset, limit)
                return [summary(r) for (r,) in rows]
            return [summary(r) for r in s.scalars(build(Shape(offset, limit)))]

    @db_errors
    def delete_call(self, call_id: int) -> bool:
        """Remove a call with everything stored for it; False when there was no such call."""
        with self._session(write=True) as s:
            return bool(s.execute(delete(CallRow).where(CallRow.id == call_id)).rowcount)

    # -- search ---------------------------------------------------------------------------------------------
    @db_errors
    def search(
        self,
        query: str,
        *,
        role: str | None = None,
        agent: str | None = None,
        queue: str | None = None,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        rule_failed: str | None = None,
        needs_review: bool | None = None,
        sentiment: str | None = None,
        call_id: int | None = None,
        limit: int = 50,
        offset: int = 0,
        marks: tuple[str, str] = HIGHLIGHT,
    ) -> list[SearchHit]:
        """Utterances matching ``query`` (see :mod:`callscribe.store.query` for the syntax), newest call first, in
        call order within a call; the call filters (``sentiment`` included) as in :meth:`calls`, ``role`` on the
        utterance.
        :class:`QueryError` (one line) for a query with nothing to look for."""
        if sentiment is not None:
            mood_condition(sentiment)  # a mood that is not one is refused even when nothing matches
        parsed = parse(query, self.tokenizer)
        filters = {"agent": agent, "queue": queue, "since": since, "until": until, "needs_review": needs_review}
        filters |= {"rule_failed_id": rule_failed, "call_id": call_id, "sentiment": sentiment}

        def build(shape: Shape) -> Select[Any]:
            # SQLite: no index on a filter column may drive the plan (a walk keeps the call time's)
            where, order = shape.newest_first()
            where += [
                condition(parsed, self.dialect, probe=shape.probe),
                *call_filters(**filters, unindexed=SEARCH_UNINDEXED[shape.walk]),
            ]
            if role is not None:
                where.append(unindexed(UtteranceRow.role) == role)
            return (
                select(UtteranceRow, CallRow)
                .join(CallRow, UtteranceRow.call_id == CallRow.id)
                .where(*where)
                .order_by(*order, UtteranceRow.idx)
                .offset(shape.offset)
                .limit(shape.limit)
            )

        marked = parsed.marks
        with self._session() as s:
            rows = ordered_rows(s, self.dialect, parsed, build, as_utc(since), as_utc(until), offset, limit)
            return [
                SearchHit(
                    call_id=c.id,
                    call_name=c.name,
                    source=c.source,
                    call_time=c.call_time,
                    agent_id=c.agent_id,
                    queue=c.queue,
                    utterance=u.idx,
                    start=u.start_s,
                    end=u.end_s,
                    channel=u.channel,
                    speaker=u.speaker,
                    role=u.role,
                    text=u.text,
                    snippet=snippet(u.text, marked, marks=marks),
                    redactions=tuple(u.redactions or ()),
                )
                for u, c in rows
            ]
