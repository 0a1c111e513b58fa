"""Databases and calls for the store tests.

PostgreSQL: a private server (initdb + pg_ctl in a temp dir on a free port, as the ``postgres`` user when we run
as root), started once per test process and stopped at exit; without the binaries, ``$CALLSCRIBE_TEST_PG_URL`` or
``postgresql://postgres@127.0.0.1:5432/test`` when reachable; else the PostgreSQL cases skip with the reason.
Each test gets a schema of its own (``search_path`` in the URL), dropped afterwards.

Calls: two-party stereo calls built from evalset-dev speech (``callscribe.eval.calls``) and the Mandarin billing
example, run through the real pipeline with the reference-text engine (decoding, VAD, split channels, roles and
PII redaction real; recognition replaced by each turn's reference text), then QA with ``store_card.yaml``.
"""

from __future__ import annotations

import atexit
import functools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from glob import glob
from pathlib import Path

import pytest
from speakers_calls import HeardTurn, ReferenceEngine, example_turns
from sqlalchemy import create_engine, text

from callscribe.model import QAResult, Transcript
from callscribe.store import CallMeta, Store

HERE = Path(__file__).resolve().parent
CARD = HERE / "store_card.yaml"
ENGINES = ("sqlite", "postgresql")
FALLBACK_PG = "postgresql://postgres@127.0.0.1:5432/test"


# -- PostgreSQL ---------------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    dirs = sorted(glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(Path(d).parent.name))
    return Path(dirs[-1]) if dirs and (Path(dirs[-1]) / "initdb").exists() else None


def _reachable(url: str) -> bool:
    engine = create_engine(
        url.replace("postgresql://", "postgresql+psycopg://", 1), connect_args={"connect_timeout": 2}
    )
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
    finally:
        engine.dispose()


def _start_private() -> tuple[str | None, str]:
    bindir = _pg_bin()
    if bindir is None:
        return None, "no PostgreSQL binaries (initdb) on this machine"
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres system user
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            return None, "running as root and there is no postgres system user to run initdb as"
        if not shutil.which("runuser"):
            return None, "running as root and runuser is missing"
        prefix = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="callscribe-pg-"))
    if prefix:
        os.chown(root, user.pw_uid, user.pw_gid)
    data, port = root / "data", _free_port()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=120)

    init = run(
        str(bindir / "initdb"),
        "-D",
        str(data),
        "-A",
        "trust",
        "-U",
        "postgres",
        "-E",
        "UTF8",
        "--locale=C",
        "--no-sync",
    )
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        return None, f"initdb failed: {init.stderr.strip().splitlines()[-1:]}"
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    start = run(str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "-t", "60", "start")
    if start.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        return None, f"pg_ctl start failed: {start.stderr.strip() or start.stdout.strip()}"

    def stop() -> None:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)

    atexit.register(stop)
    return f"postgresql://postgres@127.0.0.1:{port}/postgres", ""


@functools.lru_cache(maxsize=1)
def pg_base() -> tuple[str | None, str]:
    """(URL of a PostgreSQL server for tests, or None; why not)."""
    url, why = _start_private()
    if url:
        return url, ""
    for candidate in (os.environ.get("CALLSCRIBE_TEST_PG_URL"), FALLBACK_PG):
        if candidate and _reachable(candidate):
            return candidate, ""
    return None, f"PostgreSQL unavailable: {why}; and no server at $CALLSCRIBE_TEST_PG_URL or {FALLBACK_PG}"


@contextmanager
def fresh_url(kind: str, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database of this kind (skips the test when PostgreSQL is unavailable)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    base, why = pg_base()
    if base is None:
        pytest.skip(why)
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {name}"))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{name}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {name} CASCADE"))
        admin.dispose()


def execute(url: str, sql: str) -> None:
    """Run SQL on a test database from outside the store (what another program or version would do)."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.begin() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


# -- calls --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StoreCall:
    name: str
    transcript: Transcript
    qa: QAResult
    turns: tuple[HeardTurn, ...]  # what was said, by whom, when
    meta: CallMeta


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


# name, (party, piece) turns, meta; the pieces' texts are the evalset-dev references
BUILT = (
    (
        "zh_one",
        "zh",
        (("agent", "cosyvoice"), ("customer", "soulx"), ("agent", "aishell1")),
        CallMeta("A1", _utc(2026, 1, 5, 9, 0), "billing", {"campaign": "winter"}),
    ),
    (
        "zh_two",
        "zh",
        (("customer", "wenet"), ("agent", "fireredtts2:rest"), ("customer", "aishell2")),
        CallMeta("A1", _utc(2026, 1, 7, 15, 30), "billing"),
    ),
    (
        "en_three",
        "en",
        (("agent", "timit"), ("customer", "pocketsphinx"), ("agent", "ljspeech")),
        CallMeta("B2", _utc(2026, 2, 2, 10, 0), "support"),
    ),
)
EXAMPLE = ("zh_billing_stereo_8k.wav", CallMeta("B2", _utc(2026, 2, 3, 11, 0), "billing"))


@functools.lru_cache(maxsize=1)
def store_calls(evalset: str, examples: str) -> tuple[StoreCall, ...]:
    """The test calls, transcribed and checked once per test process."""
    import callscribe
    from callscribe.eval.calls import CallSpec, TurnSpec, load_pieces, write_call
    from callscribe.qa import run_qa

    out = Path(tempfile.mkdtemp(prefix="callscribe-store-calls-"))
    atexit.register(shutil.rmtree, out, True)
    pieces = load_pieces(evalset)
    calls = []
    for name, lang, turns, meta in BUILT:
        spec = CallSpec(name, lang, "stereo", 8000, tuple(TurnSpec(p, (k,)) for p, k in turns), noise_dbfs=None)
        built = write_call(spec, pieces, out)
        heard = tuple(HeardTurn(t.start, t.end, t.text, t.party) for t in built.ref.turns)
        options = {"language": lang, "channel_roles": ("agent", "customer")}
        t = callscribe.Pipeline(options, engine=ReferenceEngine(heard)).transcribe(built.audio_path)
        calls.append(StoreCall(name, t, run_qa(t, CARD), heard, meta))
    audio, meta = EXAMPLE
    heard = tuple(example_turns(Path(examples), audio))
    options = {"language": "zh", "channel_roles": ("agent", "customer"), "redact": ("pii",)}
    t = callscribe.Pipeline(options, engine=ReferenceEngine(heard)).transcribe(Path(examples) / audio)
    calls.append(StoreCall("zh_billing", t, run_qa(t, CARD), heard, meta))
    return tuple(calls)


def load(store: Store, calls: tuple[StoreCall, ...]) -> dict[str, int]:
    """Add every call (QA as the ``.qa.json`` dict for one, the object for the rest); ids by call name."""
    ids = {}
    for i, c in enumerate(calls):
        qa = c.qa.to_dict() if i == 1 else c.qa
        ids[c.name] = store.add(c.transcript, qa, meta=c.meta)
    return ids


def turn_saying(call: StoreCall, word: str) -> HeardTurn:
    (turn,) = [t for t in call.turns if word in t.text]
    return turn


@contextmanager
def loaded_store(kind: str, tmp_path: Path, calls: tuple[StoreCall, ...]) -> Iterator[tuple[Store, dict[str, int]]]:
    """A store of this kind holding every test call."""
    with fresh_url(kind, tmp_path) as url:
        store = Store(url)
        try:
            yield store, load(store, calls)
        finally:
            store.close()
