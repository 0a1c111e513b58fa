"""Opening a database: bad URLs, unreachable servers, locked files and foreign or newer schemas each fail in one
line naming the URL (password masked) before any work; the migrations build exactly what the models describe."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from store_fixtures import ENGINES, execute, fresh_url

from callscribe.store import Store, StoreError
from callscribe.store.models import Base
from callscribe.store.schema import alembic_config, head


def one_line_error(url: str, **kwargs) -> str:
    with pytest.raises(StoreError) as err:
        Store(url, **kwargs)
    msg = str(err.value)
    assert "\n" not in msg and msg.strip() == msg
    return msg


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("url", "cause"),
    [
        ("mysql://bob:s3cret@db.example/calls", "unsupported database 'mysql'"),
        ("http://bob:s3cret@example.com/x", "unsupported database 'http'"),
        ("postgresql+asyncpg://bob:s3cret@127.0.0.1/calls", "psycopg 3"),
        ("sqlite+aiosqlite:///x.db", "sqlite3"),
        ("://", "not a database URL"),
    ],
)
def test_wrong_urls(url: str, cause: str) -> None:
    msg = one_line_error(url)
    assert cause in msg and "s3cret" not in msg


def test_unreachable_server_masks_the_password() -> None:
    port = free_port()
    msg = one_line_error(f"postgresql://bob:s3cret@127.0.0.1:{port}/calls", timeout=2)
    assert msg.startswith(f"postgresql://bob:***@127.0.0.1:{port}/calls: cannot connect (")
    assert "s3cret" not in msg


def test_sqlite_files_that_cannot_be_used(tmp_path: Path) -> None:
    assert "folder" in one_line_error(f"sqlite:///{tmp_path}/missing/calls.db") and "does not exist" in one_line_error(
        f"sqlite:///{tmp_path}/missing/calls.db"
    )
    assert "is a folder" in one_line_error(str(tmp_path))
    junk = tmp_path / "notes.db"
    junk.write_text("these are notes, not a database\n" * 100)
    assert "not an SQLite database" in one_line_error(str(junk))
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE invoices (id INTEGER)")
    assert "holds other tables (invoices) but no callscribe schema" in one_line_error(str(other))


def test_locked_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "calls.db"
    opened = Store(path, timeout=0.2)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process writing
    try:
        msg = one_line_error(str(path), timeout=0.2)
        assert msg == f"sqlite:///{path}: database is locked by another process (waited 0.2 s)"
        with pytest.raises(StoreError, match="locked") as err:  # a store opened before: its write fails the same way
            opened.add_terms(["宽带"])
        assert "\n" not in str(err.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert opened.add_terms(["宽带"]) == 1
    opened.close()


@pytest.mark.parametrize("kind", ENGINES)
def test_schema_revisions(kind: str, tmp_path: Path) -> None:
    with fresh_url(kind, tmp_path) as url:
        msg = one_line_error(url, upgrade=False)  # empty and told not to migrate
        assert "database is empty" in msg and "callscribe db upgrade" in msg
        store = Store(url)  # an empty database is migrated on opening
        assert store.upgrade() == (None, head()) and store.revision == head()
        store.close()
        again = Store(url, upgrade=False)
        assert again.upgrade() == (head(), head())
        again.close()
        execute(url, "UPDATE alembic_version SET version_num = '9999_from_the_future'")
        msg = one_line_error(url)
        assert "schema revision 9999_from_the_future is newer than this callscribe" in msg
        assert msg.startswith(f"{url}: ")


def _not_in_models(obj, name, type_, reflected, compare_to) -> bool:
    """The search index is made by the migration outside the models (FTS5 tables, the tsvector column)."""
    return not (name.startswith("utterances_fts") or name in ("search_vector", "ix_utterances_search_vector"))


@pytest.mark.parametrize("kind", ENGINES)
def test_migrations_build_what_the_models_describe_and_go_back(kind: str, tmp_path: Path) -> None:
    with fresh_url(kind, tmp_path) as url:
        store = Store(url)
        with store.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"include_object": _not_in_models, "compare_type": True})
            assert compare_metadata(ctx, Base.metadata) == []
        with store.engine.begin() as conn:
            command.downgrade(alembic_config(conn), "base")
        with store.engine.connect() as conn:
            from sqlalchemy import inspect

            assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
        store.close()
        assert Store(url).counts()["calls"] == 0  # and up again


def test_default_url_and_plain_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLSCRIBE_DB", f"sqlite:///{tmp_path}/from_env.db")
    Store().close()
    assert (tmp_path / "from_env.db").is_file()
    monkeypatch.delenv("CALLSCRIBE_DB")
    monkeypatch.chdir(tmp_path)
    with Store() as store:
        assert store.display_url == "sqlite:///callscribe.db"
    assert (tmp_path / "callscribe.db").is_file()
    with Store(tmp_path / "plain.db") as store:
        assert store.display_url == f"sqlite:///{tmp_path}/plain.db"
