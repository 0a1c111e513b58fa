"""Search over real calls on SQLite and PostgreSQL: words that were spoken are found where they were said."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from store_fixtures import ENGINES, StoreCall, loaded_store, store_calls, turn_saying

from callscribe.store import QueryError, SearchHit

pytestmark = pytest.mark.evalset


@pytest.fixture(scope="module")
def calls(evalset: Path, examples_dir: Path) -> tuple[StoreCall, ...]:
    return store_calls(str(evalset), str(examples_dir))


@pytest.fixture(scope="module", params=ENGINES)
def loaded(request: pytest.FixtureRequest, calls: tuple[StoreCall, ...], tmp_path_factory: pytest.TempPathFactory):
    with loaded_store(request.param, tmp_path_factory.mktemp("db"), calls) as (store, ids):
        yield store, ids


def by_name(calls: tuple[StoreCall, ...]) -> dict[str, StoreCall]:
    return {c.name: c for c in calls}


def unmarked(hit: SearchHit) -> str:
    return hit.snippet.replace("[", "").replace("]", "")


# two- and three-character words, each said once in one of the calls (jieba cuts 我/的话/费多: 话费 spans a cut)
SPOKEN = [
    ("景德镇", "zh_one"),
    ("攀岩", "zh_one"),
    ("交易", "zh_one"),
    ("市场", "zh_two"),
    ("清楚", "zh_two"),
    ("话费", "zh_billing"),
    ("报修", "zh_billing"),
    ("工号", "zh_billing"),
]


@pytest.mark.parametrize(("word", "name"), SPOKEN)
def test_spoken_words_are_found_in_the_right_call_and_time(loaded, calls, word: str, name: str) -> None:
    store, ids = loaded
    call = by_name(calls)[name]
    (hit,) = store.search(word)
    turn = turn_saying(call, word)
    assert hit.call_id == ids[name] and hit.call_name == call.transcript.call.id
    assert hit.role == turn.party
    assert hit.call_time == call.meta.call_time and hit.agent_id == call.meta.agent_id
    shared = min(hit.end, turn.end) - max(hit.start, turn.start)
    assert shared >= 0.8 * (turn.end - turn.start), (hit, turn)
    assert word in hit.text and f"[{word}]" in hit.snippet and unmarked(hit) == hit.text
    assert hit.source == call.transcript.call.path


@pytest.mark.parametrize("word", ["退款", "账单", "投诉", "发票", "refund", "spade", "滨海"])
def test_words_never_spoken_find_nothing(loaded, word: str) -> None:
    store, _ = loaded
    assert store.search(word) == []


def test_and_or_not_and_phrases(loaded, calls) -> None:
    store, ids = loaded
    both = store.search("攀岩 滑雪")
    assert [(h.call_id, h.role) for h in both] == [(ids["zh_one"], "customer")]
    assert store.search("攀岩 交易") == []  # AND holds within one utterance
    either = store.search("攀岩 OR 市场")
    assert {h.call_id for h in either} == {ids["zh_one"], ids["zh_two"]} and len(either) == 2
    assert store.search("攀岩 | 市场") == either
    kept = store.search("希望 OR 交易 -停滞")  # 交易 was said with 停滞: that utterance is left out
    assert [h.text for h in kept] == [turn_saying(by_name(calls)["zh_one"], "希望").text]
    assert store.search("希望 OR 交易 NOT 停滞") == kept
    assert [h.call_id for h in store.search('"美国市场"')] == [ids["zh_two"]]
    assert store.search('"市场美国"') == []
    assert store.search("美国市场") == store.search('"美国市场"')
    assert store.search("市场美国") == []  # a query word is matched as written


def test_english_words_phrases_and_case(loaded) -> None:
    store, ids = loaded
    (hit,) = store.search("SPADES")
    assert hit.call_id == ids["en_three"] and hit.role == "customer" and "[spades]" in hit.snippet
    assert [h.snippet for h in store.search("eighteen")] == ["IN [EIGHTEEN] THIRTEEN"]
    assert len(store.search('"dark suit"')) == 1 and store.search('"suit dark"') == []
    assert len(store.search("greasy water")) == 1
    assert store.search("hearts -clubs") == []
    assert store.search("or") == [] and len(store.search("of")) == 1  # lower-case or/not are words


def test_queries_with_nothing_to_find_say_so_in_one_line(loaded) -> None:
    store, _ = loaded
    for query in ("-攀岩", "NOT 攀岩", "，。！", '""'):
        with pytest.raises(QueryError) as err:
            store.search(query)
        assert "\n" not in str(err.value) and "search query" in str(err.value)


def test_filters(loaded, calls) -> None:
    store, ids = loaded
    named = by_name(calls)
    assert len(store.search("景德镇", role="customer")) == 1 and store.search("景德镇", role="agent") == []
    assert len(store.search("市场", agent="A1")) == 1 and store.search("市场", agent="B2") == []
    assert len(store.search("市场", queue="billing")) == 1 and store.search("市场", queue="support") == []
    # zh_two was on 2026-01-07 15:30 UTC: since is inclusive, until exclusive
    assert len(store.search("市场", since=date(2026, 1, 7))) == 1
    assert len(store.search("市场", since="2026-01-07T15:30:00+00:00")) == 1
    assert store.search("市场", since=date(2026, 1, 8)) == []
    assert store.search("市场", until="2026-01-07T15:30:00Z") == []
    assert len(store.search("市场", until=date(2026, 1, 8))) == 1
    for word, name in SPOKEN:
        qa = named[name].qa
        for rule in qa.rules:
            failed = rule.graded and not rule.passed
            assert len(store.search(word, rule_failed=rule.id)) == int(failed), (word, rule.id)
        assert len(store.search(word, needs_review=qa.needs_review)) == 1
        assert store.search(word, needs_review=not qa.needs_review) == []
    assert {h.call_id for h in store.search("的", call_id=ids["zh_one"])} == {ids["zh_one"]}


def test_redacted_speech_is_found_by_its_mask_with_its_times(loaded, calls) -> None:
    store, ids = loaded
    billing = by_name(calls)["zh_billing"].transcript
    (hit,) = store.search("phone")
    assert hit.call_id == ids["zh_billing"] and hit.role == "customer"
    assert [r["kind"] for r in hit.redactions] == [r.kind for r in billing.redactions] == ["PHONE"]
    assert hit.redactions[0]["start"] == billing.redactions[0].start


def test_order_and_paging(loaded, calls) -> None:
    store, _ = loaded
    hits = store.search("的", limit=100)
    assert len({h.call_id for h in hits}) >= 3
    keys = [(-h.call_time.timestamp(), h.utterance) for h in hits]
    assert keys == sorted(keys)  # newest call first, then in call order
    assert store.search("的", limit=2, offset=1) == hits[1:3]
    assert store.search("的", limit=5, offset=len(hits)) == []
