"""A database that cannot be used stops ``transcribe --db`` (and the store commands) in one line with exit 2, before
the model loads or any call is transcribed: a wrong URL, a server that does not answer, a locked SQLite file, a
schema newer than this callscribe."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from store_cli_calls import ENGINES, build, execute, fresh_url, run_cli, transcribe_args
from typer.testing import CliRunner

from callscribe.cli import app
from callscribe.store import Store

pytestmark = pytest.mark.evalset


@pytest.fixture(scope="module")
def calls(evalset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("errors")
    build(evalset, tmp)
    return tmp


def refused(calls: Path, out: Path, url: str) -> str:
    """Run transcribe --db URL; it must stop in one line, exit 2, with nothing transcribed. Returns the line."""
    done = run_cli(calls / "refs", *transcribe_args(calls / "calls", out, "--db", url), timeout=120)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "engine:" not in done.stderr and not list(out.glob("*.json"))
    return lines[0]


def store_commands_refuse(url: str, out: Path) -> None:
    for args in (["index", str(out)], ["search", "希望"], ["report", "agents"], ["db", "upgrade"]):
        res = CliRunner().invoke(app, [*args, "--db", url])
        assert res.exit_code == 2, (args, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1 and res.stderr.startswith("error: "), (args, res.stderr)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://root@127.0.0.1/calls", "unsupported database"),
        ("not a url://", "not a database URL"),
        ("sqlite:////no/such/folder/calls.db", "does not exist"),
        ("postgresql://nobody:secret@127.0.0.1:1/calls", "cannot connect"),
    ],
)
def test_bad_urls(calls: Path, tmp_path: Path, url: str, says: str) -> None:
    line = refused(calls, tmp_path / "out", url)
    assert says in line and "secret" not in line
    store_commands_refuse(url, tmp_path)


def test_no_database_given(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["search", "希望"], env={"CALLSCRIBE_DB": ""})
    assert res.exit_code == 2 and res.stderr.strip() == "error: no database: give --db URL or set CALLSCRIBE_DB"


def test_metadata_needs_a_database(calls: Path, tmp_path: Path) -> None:
    done = run_cli(calls / "refs", *transcribe_args(calls / "calls", tmp_path / "out", "--name-pattern", "{agent_id}"))
    assert done.returncode == 2 and "give --db URL too" in done.stderr and "engine:" not in done.stderr


def test_locked_sqlite(calls: Path, tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    Store(f"sqlite:///{db}").close()
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        line = refused(calls, tmp_path / "out", f"sqlite:///{db}")
        assert "database is locked" in line
        res = CliRunner().invoke(app, ["index", str(tmp_path), "--db", f"sqlite:///{db}"])
        assert res.exit_code == 2 and "database is locked" in res.stderr
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    done = run_cli(calls / "refs", *transcribe_args(calls / "calls", tmp_path / "out", "--db", f"sqlite:///{db}"))
    assert done.returncode == 0 and "database: 3 calls stored (3 new)" in done.stderr  # free again: it works


@pytest.fixture(params=ENGINES)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_url(request.param, tmp_path) as found:
        yield found


def test_newer_schema(calls: Path, tmp_path: Path, url: str) -> None:
    Store(url).close()
    execute(url, "UPDATE alembic_version SET version_num = '9999_from_the_future'")
    line = refused(calls, tmp_path / "out", url)
    assert "schema revision 9999_from_the_future is newer than this callscribe" in line
    store_commands_refuse(url, tmp_path)
