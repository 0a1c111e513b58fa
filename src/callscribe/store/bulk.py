"""Many calls in few transactions: the bulk import behind ``callscribe index``.

``Store.add`` is one transaction per call, which on PostgreSQL means one durable commit (an ``fdatasync`` of the
WAL, ~4 ms on a plain disk) per call. :meth:`BulkMixin.add_many` writes the calls of a batch (``batch`` calls,
fewer when the source is slow) in one transaction, each exactly as ``add`` writes it, so a call is still whole or
absent and adding it again still replaces it in place. A batch the database refuses (a
call another process stored at the same moment, a bad value) is rolled back and its calls are written again one
per transaction, so one bad call costs only itself. A killed client loses the batch it had not committed; running
the same import again stores it.

``durable=False`` (what ``index`` uses, PostgreSQL only) commits with ``synchronous_commit = off``: the commit
returns before its WAL reaches the disk. A killed client still loses nothing it committed; a crash of the
database server (or its machine) can lose the commits of the last fraction of a second (3 × ``wal_writer_delay``
at most, 0.6 s by default), never part of one, and the database stays consistent; running the idempotent import
again restores them. SQLite in WAL mode with ``synchronous = NORMAL`` already commits without a sync.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError

from callscribe.model import QAResult, Transcript
from callscribe.store.connect import describe_failure, one_line
from callscribe.store.models import utcnow
from callscribe.store.records import CallMeta, StoreError
from callscribe.store.writer import Item, write_calls

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.engine import URL

BATCH = 50  # calls per transaction
MAX_WAIT_S = 1.0  # a call waits at most this long for its batch to fill before the batch is written


@dataclass(frozen=True)
class NewCall:
    """One call for :meth:`BulkMixin.add_many`: the arguments of ``Store.add``."""

    transcript: Transcript | dict[str, Any]
    qa: QAResult | dict[str, Any] | None = None
    meta: CallMeta | None = None
    options_key: str | None = None
    words: bool = True


@dataclass(frozen=True)
class Added:
    """What became of the ``index``-th call given to ``add_many``: its id and whether it was new, or why it was
    not stored (``error``, one line; the call was not written)."""

    index: int
    call_id: int | None
    new: bool = False
    error: str | None = None


Prepared = tuple[Transcript, QAResult | None, str, list[str]]


class BulkMixin:
    url: URL
    display_url: str
    timeout: float
    dialect: str
    _writer: Engine

    def _prepare(
        self, transcript: Transcript | dict[str, Any], qa: QAResult | dict[str, Any] | None, options_key: str | None
    ) -> Prepared:  # pragma: no cover - Store's
        raise NotImplementedError

    def add_many(
        self,
        calls: Iterable[NewCall],
        *,
        batch: int = BATCH,
        max_wait: float = MAX_WAIT_S,
        durable: bool = True,
    ) -> Iterator[Added]:
        """Store calls as :meth:`add` does, ``batch`` calls per transaction (fewer when a call comes ``max_wait``
        seconds or more after the first of its batch). Yields an :class:`Added` for every call, in order, once its
        batch is committed. A call that cannot be stored (not a transcript, refused by the database) is reported
        and the others go on. ``durable=False``: PostgreSQL commits without waiting for the disk (see the module
        docstring)."""
        pending: list[tuple[int, Prepared, NewCall]] = []
        refused: list[Added] = []  # calls that could not be prepared, reported with their batch to keep the order
        started = 0.0

        def flush() -> list[Added]:
            done = sorted(refused + (self._flush(pending, durable) if pending else []), key=lambda a: a.index)
            pending.clear()
            refused.clear()
            return done

        for i, call in enumerate(calls):
            try:
                ready = self._prepare(call.transcript, call.qa, call.options_key)
            except (ValueError, TypeError) as exc:
                refused.append(Added(i, None, error=one_line(exc)))
                continue
            if any(_same(ready, other) for _, other, _ in pending):  # written twice: the second replaces the first
                yield from flush()
            if not pending:
                started = time.monotonic()
            pending.append((i, ready, call))
            if len(pending) >= batch or time.monotonic() - started >= max_wait:
                yield from flush()
        yield from flush()

    def _flush(self, pending: list[tuple[int, Prepared, NewCall]], durable: bool) -> list[Added]:
        try:
            return self._write_batch(pending, durable)
        except SQLAlchemyError:
            pass  # one call spoiled the batch (or a race): each call on its own
        return [self._write_alone(i, ready, call, durable) for i, ready, call in pending]

    def _begin(self, conn: Connection, durable: bool) -> None:
        if not durable and self.dialect == "postgresql":
            conn.execute(text("SET LOCAL synchronous_commit = off"))

    def _write_batch(self, pending: list[tuple[int, Prepared, NewCall]], durable: bool) -> list[Added]:
        items = [_item(ready, call) for _, ready, call in pending]
        with self._writer.begin() as conn:
            self._begin(conn, durable)
            written = write_calls(conn, items, utcnow())
        return [Added(i, call_id, new) for (i, _, _), (call_id, new) in zip(pending, written, strict=True)]

    def _write_alone(self, i: int, ready: Prepared, call: NewCall, durable: bool) -> Added:
        error: SQLAlchemyError | None = None
        for _attempt in (1, 2):  # a second try: another process stored the same call first (update it instead)
            try:
                with self._writer.begin() as conn:
                    self._begin(conn, durable)
                    ((call_id, new),) = write_calls(conn, [_item(ready, call)], utcnow())
                return Added(i, call_id, new)
            except SQLAlchemyError as exc:
                error = exc
        assert error is not None
        failure: StoreError = describe_failure(self.url, self.display_url, error, self.timeout)
        return Added(i, None, error=str(failure))


def _item(ready: Prepared, call: NewCall) -> Item:
    t, qa, key, tokens = ready
    return Item(t, qa, call.meta, key, tokens, call.words)


def _same(a: Prepared, b: Prepared) -> bool:
    return a[0].call.sha256 == b[0].call.sha256 and a[2] == b[2]
