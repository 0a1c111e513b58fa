"""Listing calls by the customer's mood on SQLite and PostgreSQL: the mood the store keeps on each call row agrees
with the stored QA result's customer sentiment (at the thresholds too), combines with the other filters, sorts and
pages like them, follows a re-added call's new QA, and is filled in for calls stored before it existed."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect
from store_fixtures import ENGINES, StoreCall, fresh_url, store_calls

from callscribe.model import QAResult
from callscribe.qa.sentiment import POSITIVE_AT
from callscribe.store import CallMeta, Store
from callscribe.store.moods import MOODS, mood_of
from callscribe.store.schema import alembic_config, head

pytestmark = pytest.mark.evalset

# the customer's mean sentiment of each stored call; None: no customer speech; "no QA": no QA result at all
MEANS = (POSITIVE_AT, -POSITIVE_AT, 0.19999, -0.19999, 0.0, 0.8, -0.7, None, "no QA", -0.35, 0.45, -0.2000001)


@pytest.fixture(scope="module")
def calls(evalset: Path, examples_dir: Path) -> tuple[StoreCall, ...]:
    return store_calls(str(evalset), str(examples_dir))


def with_customer(qa: QAResult, mean: float | None) -> QAResult:
    by_party = {p: v for p, v in (qa.sentiment.get("by_party") or {}).items() if p != "customer"}
    if mean is not None:
        by_party["customer"] = mean
    return dataclasses.replace(qa, sentiment={**qa.sentiment, "by_party": by_party})


def add_all(store: Store, calls: tuple[StoreCall, ...]) -> dict[int, QAResult | None]:
    """One call per entry of MEANS (a base call under another recording hash), an hour apart; their QA by id."""
    start = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
    stored: dict[int, QAResult | None] = {}
    for k, mean in enumerate(MEANS):
        base = calls[k % len(calls)]
        t = dataclasses.replace(base.transcript, call=dataclasses.replace(base.transcript.call, sha256=f"{k:064x}"))
        qa = None if mean == "no QA" else with_customer(base.qa, mean)  # type: ignore[arg-type]
        stored[store.add(t, qa, meta=CallMeta(("A1", "B2")[k % 2], start + timedelta(hours=k)))] = qa
    return stored


def expected_mood(qa: QAResult | None) -> str:
    """The mood from the QA result as stored: the customer's mean as the call's JSON gives it back."""
    return mood_of(None if qa is None else (qa.sentiment.get("by_party") or {}).get("customer"))


@pytest.mark.parametrize("kind", ENGINES)
def test_calls_by_customer_mood(kind: str, tmp_path: Path, calls) -> None:
    with fresh_url(kind, tmp_path) as url, Store(url) as store:
        stored = add_all(store, calls)
        for call_id, qa in stored.items():  # the stored QA gives the same mood
            record = store.call(call_id)
            assert record is not None
            assert expected_mood(None if record.qa is None else QAResult.from_dict(record.qa)) == expected_mood(qa)
        by_mood = {m: [c.id for c in store.calls(sentiment=m, limit=None)] for m in MOODS}
        for mood, ids in by_mood.items():
            want = [i for i, qa in stored.items() if expected_mood(qa) == mood]
            assert ids == sorted(want, reverse=True)  # newest first, as without the filter
        assert all(by_mood.values())
        assert sorted(i for ids in by_mood.values() for i in ids) == sorted(stored)
        # with other filters, another order and pages
        negative_a1 = [i for i in by_mood["negative"] if store.call(i).summary.agent_id == "A1"]  # type: ignore[union-attr]
        assert [c.id for c in store.calls(sentiment="negative", agent="A1")] == negative_a1
        by_score = [c.id for c in store.calls(sentiment="neutral", order_by="-score", limit=None)]
        assert sorted(by_score) == sorted(by_mood["neutral"])
        pages = [c.id for off in range(0, 6, 2) for c in store.calls(sentiment="neutral", limit=2, offset=off)]
        assert pages == by_mood["neutral"][:6]
        with pytest.raises(ValueError, match="sentiment"):
            store.calls(sentiment="angry")


@pytest.mark.parametrize("kind", ENGINES)
def test_search_by_customer_mood(kind: str, tmp_path: Path, calls) -> None:
    """A search keeps only the hits in calls of the mood asked for, in the order it gives them unfiltered, and
    refuses a mood that is not one even when nothing matches."""
    with fresh_url(kind, tmp_path) as url, Store(url) as store:
        stored = add_all(store, calls)
        words = {w for cid in stored for u in store.call(cid).transcript["utterances"] for w in u["text"].split()}  # type: ignore[union-attr]
        assert words
        for word in sorted(words, key=len, reverse=True)[:3]:
            every = store.search(word, limit=1000)
            assert every
            for mood in MOODS:
                want = [(h.call_id, h.utterance) for h in every if expected_mood(stored[h.call_id]) == mood]
                got = [(h.call_id, h.utterance) for h in store.search(word, sentiment=mood, limit=1000)]
                assert got == want
        with pytest.raises(ValueError, match="sentiment"):
            store.search("hello", sentiment="angry")


def test_cli_moods_are_the_stores() -> None:
    from callscribe.cli_store import Mood

    assert tuple(m.value for m in Mood) == MOODS


@pytest.mark.parametrize("kind", ENGINES)
def test_re_adding_a_call_changes_its_mood(kind: str, tmp_path: Path, calls) -> None:
    c = calls[0]
    with fresh_url(kind, tmp_path) as url, Store(url) as store:
        call_id = store.add(c.transcript, with_customer(c.qa, -0.6), meta=c.meta)
        assert [x.id for x in store.calls(sentiment="negative")] == [call_id]
        assert store.add(c.transcript, with_customer(c.qa, 0.6)) == call_id
        assert [x.id for x in store.calls(sentiment="positive")] == [call_id]
        assert store.calls(sentiment="negative") == []
        assert store.add(c.transcript, None) == call_id
        assert [x.id for x in store.calls(sentiment="unknown")] == [call_id]


@pytest.mark.parametrize("kind", ENGINES)
def test_calls_stored_before_the_mood_column_get_it(kind: str, tmp_path: Path, calls) -> None:
    with fresh_url(kind, tmp_path) as url:
        with Store(url) as store:
            stored = add_all(store, calls)
            with store.engine.begin() as conn:  # back to the schema before the mood column
                command.downgrade(alembic_config(conn), "0001")
            with store.engine.connect() as conn:
                assert "customer_mood" not in {c["name"] for c in inspect(conn).get_columns("calls")}
        with Store(url) as store:  # migrated again on opening: the mood comes from the stored QA results
            assert store.upgrade() == ("0001", head())
            for mood in MOODS:
                want = sorted((i for i, qa in stored.items() if expected_mood(qa) == mood), reverse=True)
                assert [c.id for c in store.calls(sentiment=mood, limit=None)] == want
