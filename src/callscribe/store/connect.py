"""Database URLs and engines: SQLite (a file, WAL, foreign keys, busy timeout) or PostgreSQL (psycopg 3).

Every failure to reach or open a database becomes a :class:`StoreError` whose message is one line: the URL with
its password masked, then the cause.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from callscribe.store.records import StoreError

ENV_VAR = "CALLSCRIBE_DB"
DEFAULT_URL = "sqlite:///callscribe.db"  # a file in the current directory
DEFAULT_TIMEOUT_S = 5.0  # SQLite busy timeout, PostgreSQL connect timeout
SQLITE_BEGIN = "sqlite_begin"  # execution option: the BEGIN statement a SQLite transaction starts with
_PASSWORD = re.compile(r"(://[^:/@]*:)[^@/]*@")


def _json_dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def resolve_url(url: str | Path | None) -> str:
    """The URL to use: ``url``, else ``$CALLSCRIBE_DB``, else ``sqlite:///callscribe.db``. A plain path (no
    ``://``) is a SQLite file."""
    raw = str(url) if url is not None else (os.environ.get(ENV_VAR) or DEFAULT_URL)
    raw = raw.strip()
    if "://" not in raw and raw not in ("sqlite:", ""):
        return f"sqlite:///{raw}"
    return raw or DEFAULT_URL


def masked(url: str | URL) -> str:
    """The URL with its password replaced by ``***``."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return _PASSWORD.sub(r"\1***@", url)


def one_line(exc: BaseException, secret: str | None = None) -> str:
    """A database error as one line: the driver's message, without SQLAlchemy's wrapping and background links."""
    inner = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text = str(inner).split("\n(Background on this error")[0]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if isinstance(exc, DBAPIError) and lines and lines[0].startswith("("):
        lines[0] = re.sub(r"^\([\w.]+\)\s*", "", lines[0])
    msg = "; ".join(lines[:2]) if len(lines) > 1 and not lines[1].startswith("[SQL") else (lines[0] if lines else "")
    msg = msg or type(inner).__name__
    return msg.replace(secret, "***") if secret else msg


def parse_url(raw: str) -> URL:
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError):
        raise StoreError(
            f"{masked(raw)}: not a database URL (use sqlite:///path/to/file.db or postgresql://...)"
        ) from None
    backend, _, driver = url.drivername.partition("+")
    if backend in ("postgres", "postgresql"):
        if driver not in ("", "psycopg"):
            raise StoreError(
                f"{masked(url)}: PostgreSQL is reached through psycopg 3 (postgresql+psycopg://), not {driver}"
            )
        return url.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if driver not in ("", "pysqlite"):
            raise StoreError(f"{masked(url)}: SQLite is opened with Python's sqlite3 (sqlite:///path), not {driver}")
        return url.set(drivername="sqlite")
    raise StoreError(
        f"{masked(url)}: unsupported database {url.drivername!r} (use sqlite:///path/to/file.db or postgresql://...)"
    )


def is_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def make_engine(url: URL, shown: str, timeout: float = DEFAULT_TIMEOUT_S, echo: bool = False) -> Engine:
    """An engine for a parsed URL (``shown``: how messages name it); SQLite connections get WAL, foreign keys and a
    busy timeout."""
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, shown, timeout, echo)
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise StoreError(
            f"{shown}: PostgreSQL needs the [postgres] extra (no module psycopg); "
            "install it with: pip install 'callscribe[postgres]'"
        ) from None
    try:
        connect_args: dict[str, Any] = {"connect_timeout": max(2, round(timeout))}
        return create_engine(url, connect_args=connect_args, pool_pre_ping=True, echo=echo, json_serializer=_json_dumps)
    except (SQLAlchemyError, NoSuchModuleError) as exc:
        raise StoreError(f"{shown}: {one_line(exc, url.password)}") from None


def _sqlite_engine(url: URL, shown: str, timeout: float, echo: bool) -> Engine:
    if is_memory(url):
        engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}, echo=echo)
    else:
        path = Path(url.database or "")
        folder = path.parent if str(path.parent) else Path(".")
        if not folder.is_dir():
            raise StoreError(f"{shown}: folder {folder} does not exist")
        if path.is_dir():
            raise StoreError(f"{shown}: {path} is a folder, not a database file")
        args = {"timeout": timeout, "check_same_thread": False}
        engine = create_engine(url, connect_args=args, echo=echo, json_serializer=_json_dumps)
    wal = not is_memory(url)
    busy_ms = int(timeout * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # transactions are begun explicitly below
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {busy_ms}")
            cur.execute("PRAGMA foreign_keys = ON")
            if wal:
                cur.execute("PRAGMA journal_mode = WAL")
                cur.execute("PRAGMA synchronous = NORMAL")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get(SQLITE_BEGIN, "BEGIN"))

    return engine


def describe_failure(url: URL, shown: str, exc: BaseException, timeout: float) -> StoreError:
    """A failure to open or use the database as one StoreError line (``shown``: the URL, password masked)."""
    cause = one_line(exc, url.password)
    low = cause.lower()
    if url.get_backend_name() == "sqlite":
        if "database is locked" in low or "database table is locked" in low:
            return StoreError(f"{shown}: database is locked by another process (waited {timeout:g} s)")
        if "file is not a database" in low:
            return StoreError(f"{shown}: not an SQLite database ({cause})")
        if "unable to open database file" in low or "readonly" in low:
            return StoreError(f"{shown}: cannot open the database file for writing ({cause})")
        return StoreError(f"{shown}: {cause}")
    if (isinstance(exc, DBAPIError) and exc.connection_invalidated) or "connect" in low or "connection" in low:
        return StoreError(f"{shown}: cannot connect ({cause})")
    return StoreError(f"{shown}: {cause}")


F = TypeVar("F", bound=Callable[..., Any])


def db_errors(method: F) -> F:
    """Database failures inside a Store method become one StoreError line naming the URL."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except SQLAlchemyError as exc:
            raise describe_failure(self.url, self.display_url, exc, self.timeout) from None

    return wrapper  # type: ignore[return-value]
