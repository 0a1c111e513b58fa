"""The schema's revision: read it, compare it with the migrations this code ships, run them.

Migrations run programmatically (no alembic.ini): the script location is the ``migrations`` folder inside this
package. On PostgreSQL an advisory lock and on SQLite ``BEGIN IMMEDIATE`` keep two processes from migrating at
once; either way the whole upgrade is one transaction.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

log = logging.getLogger("callscribe")

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
PG_LOCK_KEY = 0x63616C6C  # advisory lock taken while checking or migrating the schema
UPGRADE_HINT = "run `callscribe db upgrade` (or Store(url).upgrade())"


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """An Alembic config for the shipped migrations; with a connection, migrations run on it (in its transaction).
    ``url`` is for offline SQL output (``command.upgrade(cfg, "head", sql=True)``)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@functools.lru_cache(maxsize=1)
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    heads = _scripts().get_heads()
    if len(heads) != 1:  # pragma: no cover - a packaging mistake
        raise RuntimeError(f"callscribe store migrations have {len(heads)} heads: {heads}")
    return heads[0]


def known(revision: str) -> bool:
    try:
        return _scripts().get_revision(revision) is not None
    except Exception:
        return False


@dataclass(frozen=True)
class SchemaState:
    revision: str | None  # None: no callscribe schema
    foreign_tables: tuple[str, ...] = ()  # tables present although there is no revision

    @property
    def current(self) -> bool:
        return self.revision == head()

    @property
    def newer(self) -> bool:
        return self.revision is not None and not known(self.revision)


def lock(conn: Connection) -> None:
    """Serialise schema work across processes (the caller's transaction holds the lock)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_LOCK_KEY})


def state(conn: Connection) -> SchemaState:
    revision = MigrationContext.configure(conn).get_current_revision()
    if revision is not None:
        return SchemaState(revision)
    tables = tuple(t for t in inspect(conn).get_table_names() if t != "alembic_version")
    return SchemaState(None, tables)


def migrate(conn: Connection) -> tuple[str | None, str]:
    """Run the migrations up to head on ``conn`` (inside its transaction); (revision before, revision after)."""
    before = state(conn).revision
    command.upgrade(alembic_config(conn), "head")
    log.info("store schema upgraded from %s to %s", before or "empty", head())
    return before, head()
