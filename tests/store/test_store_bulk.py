"""``Store.add_many``, the bulk import of ``callscribe index``: calls come back as ``add`` stores them, a re-run
replaces them in place, a bad call costs only itself, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from store_fixtures import ENGINES, StoreCall, fresh_url, store_calls

from callscribe.model import QAResult, Transcript, Word
from callscribe.store import NewCall, Store

pytestmark = pytest.mark.evalset


@pytest.fixture(scope="module")
def calls(evalset: Path, examples_dir: Path) -> tuple[StoreCall, ...]:
    return store_calls(str(evalset), str(examples_dir))


@pytest.fixture(params=ENGINES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with fresh_url(request.param, tmp_path) as url, Store(url) as s:
        yield s


def new_calls(calls: tuple[StoreCall, ...]) -> list[NewCall]:
    return [NewCall(c.transcript, c.qa if i % 2 else c.qa.to_dict(), meta=c.meta) for i, c in enumerate(calls)]


def record(store: Store, call_id: int) -> dict[str, Any]:
    """A stored call without the times of the write."""
    rec = store.call(call_id)
    assert rec is not None
    summary = dataclasses.asdict(rec.summary)
    del summary["id"], summary["created_at"], summary["updated_at"]
    return {"summary": summary, "transcript": rec.transcript, "qa": rec.qa}


def test_add_many_stores_what_add_stores_and_reruns_in_place(store: Store, calls, tmp_path: Path) -> None:
    added = list(store.add_many(new_calls(calls), batch=3, durable=False))
    assert [(a.index, a.new, a.error) for a in added] == [(i, True, None) for i in range(len(calls))]
    for a, c in zip(added, calls, strict=True):
        assert a.call_id is not None
        rec = store.call(a.call_id)
        assert rec is not None and Transcript.from_dict(rec.transcript) == c.transcript
        assert rec.qa is not None and QAResult.from_dict(rec.qa) == c.qa
    counts = store.counts()
    (tmp_path / "add").mkdir()
    # the same calls through add, one transaction each, into another database: the same rows
    with fresh_url(store.dialect, tmp_path / "add") as url, Store(url) as other:
        ids = [other.add(c.transcript, c.qa, meta=c.meta) for c in calls]
        assert [record(other, i) for i in ids] == [record(store, a.call_id) for a in added if a.call_id]
        assert other.counts() == counts
    # again: replaced in place (same ids, not new), nothing added; a QA result dropped as add drops it
    again = [dataclasses.replace(n, qa=None) if i == 0 else n for i, n in enumerate(new_calls(calls))]
    rerun = list(store.add_many(again))
    assert [(a.call_id, a.new) for a in rerun] == [(a.call_id, False) for a in added]
    assert store.call(rerun[0].call_id or 0).qa is None  # type: ignore[union-attr]
    assert store.counts()["calls"] == counts["calls"] == len(calls)


def test_one_bad_call_costs_only_itself(store: Store, calls) -> None:
    first, second = calls[0], calls[1]
    wrong_qa = dataclasses.replace(second.qa, call_id="another call")
    items = [
        NewCall(first.transcript, first.qa, meta=first.meta),
        NewCall({"call": "not a transcript"}),
        NewCall(second.transcript, wrong_qa),
        NewCall(second.transcript, second.qa, meta=second.meta),
        NewCall(first.transcript, first.qa, meta=first.meta),  # the same call again in the batch: replaces it
    ]
    added = list(store.add_many(items, batch=10))
    assert [a.index for a in added] == list(range(5))
    assert added[1].error and "not a transcript" in added[1].error and added[1].call_id is None
    assert added[2].error and "another call" in added[2].error and added[2].call_id is None
    assert [(a.call_id is not None, a.error) for a in (added[0], added[3], added[4])] == [(True, None)] * 3
    assert added[4].call_id == added[0].call_id and added[0].new and not added[4].new
    assert store.counts()["calls"] == 2


def test_a_call_the_database_refuses_rolls_back_only_itself(store: Store, calls) -> None:
    """PostgreSQL refuses a NUL character in text: the batch is written again one call at a time."""
    if store.dialect != "postgresql":
        pytest.skip("SQLite stores a NUL character")
    bad = calls[2].transcript
    utterance = dataclasses.replace(bad.utterances[0], text="bad\x00text")
    bad = dataclasses.replace(bad, utterances=(utterance, *bad.utterances[1:]))
    items = [NewCall(c.transcript, c.qa, meta=c.meta) for c in calls]
    items[2] = NewCall(bad, calls[2].qa)
    added = list(store.add_many(items, durable=False))
    assert [a.error is None for a in added] == [True, True, False, True]
    assert added[2].error and "NUL" in added[2].error.upper() and "\n" not in added[2].error
    assert store.counts()["calls"] == 3
    with store.engine.connect() as conn:  # the batch really was rolled back and rewritten: no half call
        assert conn.execute(text("SELECT count(*) FROM utterances")).scalar() == sum(
            len(c.transcript.utterances) for i, c in enumerate(calls) if i != 2
        )


def with_words(t: Transcript, sha: str) -> Transcript:
    """The transcript as another recording whose utterances carry word timings (two words each, one with no
    probability)."""
    utterances = tuple(
        dataclasses.replace(
            u, words=(Word(u.text[:1], u.start, u.start + 0.1, 0.9), Word(u.text[1:2] or "x", u.start + 0.1, u.end))
        )
        for u in t.utterances
    )
    return dataclasses.replace(t, utterances=utterances, call=dataclasses.replace(t.call, sha256=sha))


def test_word_timings_are_kept_or_left_out_per_call(store: Store, calls) -> None:
    timed = [with_words(c.transcript, f"{i:064x}") for i, c in enumerate(calls)]
    items = [NewCall(t, words=i != 1) for i, t in enumerate(timed)]  # the second call without its words
    added = list(store.add_many(items, batch=2))
    for i, (a, t) in enumerate(zip(added, timed, strict=True)):
        rec = store.call(a.call_id or 0)
        assert rec is not None
        back = Transcript.from_dict(rec.transcript)
        if i == 1:
            assert all(not u.words for u in back.utterances)
            assert back == dataclasses.replace(
                t, utterances=tuple(dataclasses.replace(u, words=()) for u in t.utterances)
            )
        else:
            assert back == t and all(len(u.words) == 2 for u in back.utterances)
    one = store.add(with_words(calls[0].transcript, "f" * 64))
    rec = store.call(one)
    assert rec is not None and Transcript.from_dict(rec.transcript) == with_words(calls[0].transcript, "f" * 64)
