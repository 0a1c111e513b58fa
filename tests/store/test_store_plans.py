"""The two ways a search runs (from the index's matches, or walking the newest calls) give the same hits.

The store picks a plan by counting matches (see ``callscribe.store.plan``); here the thresholds are moved so that
one store answers every query both ways, and the answers are compared: words common and rare, AND / OR / NOT,
phrases, every filter, pages, calls with the same call time and calls without one, on SQLite and PostgreSQL. The
SQL that ran is checked too, so a walk really walked.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from store_fixtures import ENGINES, StoreCall, fresh_url, store_calls

from callscribe.store import CallMeta, NewCall, Store, plan

pytestmark = pytest.mark.evalset

COPIES = 12  # of each test call: 48 calls
START = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)
QUERIES = (
    "的",
    "我",
    "市场",
    "话费",
    "景德镇",
    "of",
    "the",
    "的 -是",
    "市场 OR 攀岩",
    "希望 OR 交易 -停滞",
    '"美国市场"',
    '"dark suit"',
    "退款",
)
FILTERS: tuple[dict[str, Any], ...] = (
    {},
    {"role": "customer"},
    {"agent": "A1"},
    {"queue": "billing", "role": "agent"},
    {"since": START + timedelta(hours=5)},
    {"until": START + timedelta(hours=7)},
    {"needs_review": True},
    {"limit": 3},
    {"limit": 4, "offset": 5},
    {"limit": 7, "offset": 30},
)


@pytest.fixture(scope="module")
def calls(evalset: Path, examples_dir: Path) -> tuple[StoreCall, ...]:
    return store_calls(str(evalset), str(examples_dir))


def copies(calls: tuple[StoreCall, ...]) -> Iterator[NewCall]:
    """Each test call ``COPIES`` times as another recording: three calls per hour (same call time), every
    ninth without a time, agents and queues taking turns."""
    for i in range(COPIES * len(calls)):
        c = calls[i % len(calls)]
        sha = hashlib.sha256(f"{i}:{c.transcript.call.sha256}".encode()).hexdigest()
        info = dataclasses.replace(c.transcript.call, sha256=sha, id=f"copy{i:03d}_{c.name}")
        when = None if i % 9 == 4 else START + timedelta(hours=i // 3)
        meta = CallMeta(f"A{i % 3}", when, ("billing", "support")[i % 2])
        qa = dataclasses.replace(c.qa, call_id=info.id)
        yield NewCall(dataclasses.replace(c.transcript, call=info), qa, meta=meta)


@pytest.fixture(scope="module", params=ENGINES)
def store(request: pytest.FixtureRequest, calls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    with fresh_url(request.param, tmp_path_factory.mktemp("plans")) as url, Store(url) as s:
        added = list(s.add_many(copies(calls), batch=7))
        assert [a.error for a in added] == [None] * len(added) and all(a.new for a in added)
        yield s


class Statements:
    """The SQL statements a store runs."""

    def __init__(self, store: Store) -> None:
        self.seen: list[str] = []
        event.listen(store.engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.seen.append(statement)

    def walked(self) -> bool:
        return any("ts_match_vq" in s or "+utterances.id" in s or "instr(" in s for s in self.seen)


def answers(store: Store, monkeypatch: pytest.MonkeyPatch, **plan_settings: Any) -> tuple[list[Any], bool]:
    """Every query with every filter, and ``calls(q=...)``, under these plan settings; whether any walked."""
    with monkeypatch.context() as m:
        for name, value in plan_settings.items():
            m.setattr(plan, name, value)
        sql = Statements(store)
        out: list[Any] = []
        for q in QUERIES:
            out += [store.search(q, **f) for f in FILTERS]
            out.append(store.calls(q=q, limit=10))
            out.append(store.calls(q=q, limit=5, offset=3, queue="support"))
        return out, sql.walked()


def test_walking_the_calls_finds_what_the_matches_give(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from_matches, walked = answers(store, monkeypatch, cap=lambda _n: 10**9)
    assert not walked
    assert sum(len(a) for a in from_matches) > 500  # the queries find things: the comparison means something
    # every query with a match walks: the whole store (the window covers it), each row checked in its tokens
    whole, walked = answers(store, monkeypatch, cap=lambda _n: 1, ROW_CHECK=1)
    assert walked and whole == from_matches
    # ... checked against the set of matches (SQLite; PostgreSQL has one way)
    by_index, walked = answers(store, monkeypatch, cap=lambda _n: 1, ROW_CHECK=10**9)
    assert walked and by_index == from_matches
    # a window of 3 calls: the walk stops at the 3rd newest call and, the page short, runs from the matches
    short, walked = answers(store, monkeypatch, cap=lambda _n: 1, WINDOW=3, JOIN_STEPS=0.0)
    assert walked and short == from_matches


def test_counting_picks_the_plan(store: Store) -> None:
    """With the real thresholds a store this small runs every query from the matches (few matches)."""
    sql = Statements(store)
    assert store.search("的")
    assert not sql.walked()
