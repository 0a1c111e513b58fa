"""``Store``: calls, utterances and QA results in SQLite or PostgreSQL, searchable in Chinese and English."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic.util import CommandError
from sqlalchemy import delete, exists, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, selectinload

from callscribe.model import QAResult, Transcript
from callscribe.store import schema
from callscribe.store.admin import AdminMixin
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
from callscribe.store.filters import TimeLike, call_filters
from callscribe.store.index import IndexMixin
from callscribe.store.ingest import (
    coerce_qa,
    coerce_transcript,
    fill_call,
    qa_dict,
    qa_row,
    speaker_rows,
    summary,
    transcript_dict,
    utterance_rows,
)
from callscribe.store.models import (
    CallRow,
    QARow,
    RuleRow,
    SpeakerRow,
    UtteranceRow,
    utcnow,
)
from callscribe.store.query import condition, parse
from callscribe.store.records import CallMeta, CallRecord, CallSummary, SearchHit, StoreError
from callscribe.store.reports import ReportMixin
from callscribe.store.tokens import HIGHLIGHT, Tokenizer, snippet

log = logging.getLogger("callscribe")

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


class Store(IndexMixin, AdminMixin, ReportMixin):
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
        t = coerce_transcript(transcript)
        result = coerce_qa(qa)
        if not t.call.sha256:
            raise ValueError(f"{t.call.path or t.call.id}: the transcript has no sha256 (needed to store it once)")
        if result is not None and result.call_id and result.call_id != t.call.id:
            raise ValueError(f"{t.call.path or t.call.id}: the QA result is for call {result.call_id!r}")
        key = options_key if options_key is not None else str(t.options.get("result_key") or "")
        tokens = [" ".join(self.tokenizer.tokens(u.text)) for u in t.utterances]  # before the write lock
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

    def _write_call(
        self, t: Transcript, qa: QAResult | None, meta: CallMeta | None, key: str, tokens: list[str], words: bool
    ) -> int:
        now = utcnow()
        with self._session(write=True) as s:
            # FOR UPDATE: a second writer of the same call waits here on PostgreSQL (SQLite: BEGIN IMMEDIATE did)
            found = select(CallRow).where(CallRow.sha256 == t.call.sha256, CallRow.options_key == key)
            row = s.scalar(found.with_for_update())
            if row is None:
                row = CallRow(sha256=t.call.sha256, options_key=key, created_at=now, meta={})
                s.add(row)
            else:
                for table in (UtteranceRow, SpeakerRow, QARow):
                    s.execute(delete(table).where(table.call_id == row.id))
            fill_call(row, t, qa, meta, now)
            s.flush()
            s.add_all(utterance_rows(row.id, t, tokens, words))
            s.add_all(speaker_rows(row.id, t))
            if qa is not None:
                s.add(qa_row(row.id, qa, now))
            s.flush()
            return row.id

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
        q: str | None = None,
        order_by: str = "-call_time",
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[CallSummary]:
        """Calls matching every filter given. ``since`` is inclusive, ``until`` exclusive (call time); ``q`` a
        search query some utterance must match; ``order_by`` one of call_time, score, created, id (``-`` first:
        descending; calls without a time or score come last)."""
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
        )
        if q is not None:
            cond = condition(parse(q, self.tokenizer), self.dialect)
            where.append(CallRow.id.in_(select(UtteranceRow.call_id).where(cond)))
        stmt = select(CallRow).where(*where).order_by(*ORDER_BY[order_by]).offset(offset).limit(limit)
        with self._session() as s:
            return [summary(r) for r in s.scalars(stmt)]

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
        call_id: int | None = None,
        limit: int = 50,
        offset: int = 0,
        marks: tuple[str, str] = HIGHLIGHT,
    ) -> list[SearchHit]:
        """Utterances matching ``query`` (see :mod:`callscribe.store.query` for the syntax), newest call first, in
        call order within a call; the call filters as in :meth:`calls`, ``role`` on the utterance.
        :class:`QueryError` (one line) for a query with nothing to look for."""
        parsed = parse(query, self.tokenizer)
        where = [
            condition(parsed, self.dialect),
            *call_filters(
                agent=agent,
                queue=queue,
                since=since,
                until=until,
                needs_review=needs_review,
                rule_failed_id=rule_failed,
                call_id=call_id,
            ),
        ]
        if role is not None:
            where.append(UtteranceRow.role == role)
        stmt = (
            select(UtteranceRow, CallRow)
            .join(CallRow, UtteranceRow.call_id == CallRow.id)
            .where(*where)
            .order_by(CallRow.call_time.desc().nulls_last(), CallRow.id.desc(), UtteranceRow.idx)
            .offset(offset)
            .limit(limit)
        )
        marked = parsed.marks
        with self._session() as s:
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
                for u, c in s.execute(stmt)
            ]
