"""Calls in the store on SQLite and PostgreSQL: round trip, listing filters, idempotent re-adds, one transaction,
deletion and the agent report (checked against the reference turns and the QA results)."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from store_fixtures import ENGINES, StoreCall, fresh_url, loaded_store, store_calls

from callscribe.model import QAResult, Transcript
from callscribe.store import CallMeta, Store, StoreError

pytestmark = pytest.mark.evalset


@pytest.fixture(scope="module")
def calls(evalset: Path, examples_dir: Path) -> tuple[StoreCall, ...]:
    return store_calls(str(evalset), str(examples_dir))


@pytest.fixture(scope="module", params=ENGINES)
def loaded(request: pytest.FixtureRequest, calls: tuple[StoreCall, ...], tmp_path_factory: pytest.TempPathFactory):
    with loaded_store(request.param, tmp_path_factory.mktemp("db"), calls) as (store, ids):
        yield store, ids


@pytest.fixture(params=ENGINES)
def store(request: pytest.FixtureRequest, tmp_path: Path):
    with fresh_url(request.param, tmp_path) as url:
        s = Store(url)
        yield s
        s.close()


def names(store: Store, ids: dict[str, int], **filters) -> list[str]:
    back = {v: k for k, v in ids.items()}
    return [back[c.id] for c in store.calls(**filters)]


def test_a_call_comes_back_as_it_went_in(loaded, calls) -> None:
    store, ids = loaded
    for c in calls:
        rec = store.call(ids[c.name])
        assert Transcript.from_dict(rec.transcript) == c.transcript
        assert QAResult.from_dict(rec.qa) == c.qa
        s = rec.summary
        assert (s.agent_id, s.call_time, s.queue, s.meta) == (
            c.meta.agent_id,
            c.meta.call_time,
            c.meta.queue,
            c.meta.extra,
        )
        assert (s.sha256, s.source, s.channels) == (c.transcript.call.sha256, c.transcript.call.path, 2)
        assert (s.score, s.needs_review) == (c.qa.score, c.qa.needs_review)
        assert s.options_key == c.transcript.options["result_key"]
        assert store.has(s.sha256, s.options_key) and store.find(s.sha256, s.options_key) == s.id
    assert store.call(max(ids.values()) + 1000) is None
    assert not store.has(calls[0].transcript.call.sha256, "other options")


def test_listing_filters(loaded, calls) -> None:
    store, ids = loaded
    qa = {c.name: c.qa for c in calls}
    assert names(store, ids) == ["zh_billing", "en_three", "zh_two", "zh_one"]  # newest first
    assert names(store, ids, order_by="call_time") == ["zh_one", "zh_two", "en_three", "zh_billing"]
    assert names(store, ids, agent="A1") == ["zh_two", "zh_one"]
    assert set(names(store, ids, queue="billing")) == {"zh_one", "zh_two", "zh_billing"}
    assert names(store, ids, since="2026-02-01") == ["zh_billing", "en_three"]
    assert names(store, ids, until=date(2026, 2, 1)) == ["zh_two", "zh_one"]
    assert names(store, ids, since=date(2026, 1, 6), until=date(2026, 2, 3)) == ["en_three", "zh_two"]
    assert set(names(store, ids, needs_review=True)) == {n for n, r in qa.items() if r.needs_review}
    assert set(names(store, ids, needs_review=False)) == {n for n, r in qa.items() if not r.needs_review}
    for rule in ("mentions_trip", "no_hedging", "short_call"):
        failed = {n for n, r in qa.items() for x in r.rules if x.id == rule and x.graded and not x.passed}
        assert set(names(store, ids, rule_failed=rule)) == failed, rule
    assert set(names(store, ids, min_score=15)) == {n for n, r in qa.items() if r.score >= 15}
    assert set(names(store, ids, max_score=15)) == {n for n, r in qa.items() if r.score <= 15}
    by_score = sorted(qa, key=lambda n: (qa[n].score, ids[n]))
    assert names(store, ids, order_by="score") == by_score
    assert names(store, ids, q="话费") == ["zh_billing"]
    assert names(store, ids, q="市场 OR 攀岩", agent="A1") == ["zh_two", "zh_one"]
    assert names(store, ids, limit=2, offset=1) == ["en_three", "zh_two"]
    with pytest.raises(ValueError, match="order_by"):
        store.calls(order_by="loudness")


def test_re_adding_updates_in_place(store: Store, calls) -> None:
    c = calls[0]
    first = store.add(c.transcript, c.qa, meta=c.meta)
    before = store.counts()
    created = store.call(first).summary.created_at
    later = CallMeta("Z9", datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc), "retention", {"note": "moved"})
    assert store.add(c.transcript, c.qa.to_dict(), meta=later) == first
    assert store.counts() == before
    s = store.call(first).summary
    assert (s.agent_id, s.queue, s.meta, s.created_at) == ("Z9", "retention", {"note": "moved"}, created)
    assert s.updated_at >= created
    assert store.add(c.transcript, c.qa) == first and store.call(first).summary.agent_id == "Z9"  # meta kept
    assert [h.call_id for h in store.search("景德镇")] == [first]
    # without QA: the stored QA (of the old transcript) goes
    assert store.add(c.transcript, None) == first
    rec = store.call(first)
    assert rec.qa is None and rec.summary.needs_review is None and store.counts()["rule_results"] == 0
    # other options: another call
    other = store.add(c.transcript, c.qa, options_key="other options")
    assert other != first and len(store.calls()) == 2 and len(store.search("景德镇")) == 2


def test_a_failed_add_leaves_nothing(store: Store, calls) -> None:
    good, other = calls[0], calls[1]
    first = store.add(good.transcript, good.qa, meta=good.meta)
    before, kept = store.counts(), store.call(first)
    bad = other.qa.to_dict()
    bad["rules"].append(bad["rules"][0])  # the same rule twice: the database refuses it after the call went in
    with pytest.raises(StoreError) as err:
        store.add(other.transcript, bad, meta=other.meta)
    assert "\n" not in str(err.value) and str(err.value).startswith(store.display_url)
    assert store.counts() == before
    assert store.search("市场") == [] and not store.has(
        other.transcript.call.sha256, other.transcript.options["result_key"]
    )
    with pytest.raises(StoreError):  # the same for a re-add: the stored version stays whole
        store.add(good.transcript, {**bad, "call_id": good.qa.call_id}, meta=other.meta)
    assert store.counts() == before and store.call(first) == kept


def test_bad_inputs_are_refused_before_writing(store: Store, calls) -> None:
    c = calls[0]
    no_hash = dataclasses.replace(c.transcript, call=dataclasses.replace(c.transcript.call, sha256=""))
    with pytest.raises(ValueError, match="no sha256"):
        store.add(no_hash)
    with pytest.raises(ValueError, match="QA result is for call"):
        store.add(c.transcript, calls[1].qa)
    with pytest.raises(ValueError, match="not a QA result"):
        store.add(c.transcript, {"score": 1})
    assert store.counts()["calls"] == 0


def test_delete_call(store: Store, calls) -> None:
    ids = [store.add(c.transcript, c.qa, meta=c.meta) for c in calls[:2]]
    store.add_correction(ids[0], "景德镇", "景德镇市", author="rev1", utterance=1)
    store.add_verdict(ids[0], "agree", reviewer="rev1")
    assert store.delete_call(ids[0]) and not store.delete_call(ids[0])
    assert store.search("景德镇") == [] and len(store.search("市场")) == 1
    counts = store.counts()
    assert counts["calls"] == 1 and counts["corrections"] == 0 and counts["verdicts"] == 0
    assert counts["utterances"] == counts["search"] == len(calls[1].transcript.utterances)
    assert counts["rule_results"] == len(calls[1].qa.rules)


def _talk(c: StoreCall, party: str | None) -> float:
    """Speaking time from the reference turns (what was built into the call), one party or all."""
    return sum(t.end - t.start for t in c.turns if party is None or t.party == party)


def test_agent_report_by_week_and_month(loaded, calls) -> None:
    store, _ = loaded
    weeks = {(r.agent_id, r.period): r for r in store.agent_report(by="week")}
    assert list(weeks) == [("A1", "2026-W02"), ("B2", "2026-W06")]
    for (agent, _), row in weeks.items():
        group = [c for c in calls if c.meta.agent_id == agent]
        assert row.calls == row.scored_calls == len(group) == 2
        assert row.mean_score == pytest.approx(sum(c.qa.score for c in group) / 2)
        assert row.mean_score_pct == pytest.approx(sum(100 * c.qa.score / c.qa.max_score for c in group) / 2)
        assert row.needs_review == sum(c.qa.needs_review for c in group)
        talk = sum(_talk(c, "agent") for c in group) / sum(_talk(c, None) for c in group)
        assert row.talk_ratio == pytest.approx(talk, abs=0.02)
        moods = [c.qa.sentiment["by_party"]["customer"] for c in group if "customer" in c.qa.sentiment["by_party"]]
        assert row.customer_sentiment == pytest.approx(sum(moods) / len(moods))
    a1 = weeks[("A1", "2026-W02")]
    # zh_one's customer talks of 景德镇 and 滑雪, zh_two's does not; zh_two's agent hedges (可能说), zh_one's does not
    assert a1.rule_fail_rates == {"mentions_trip": 0.5, "no_hedging": 0.5, "short_call": 0.0}
    assert a1.rule_graded == {"mentions_trip": 2, "no_hedging": 2, "short_call": 2}
    assert a1.period_start == datetime(2026, 1, 5, tzinfo=timezone.utc)
    months = store.agent_report(by="month", since=date(2026, 2, 1))
    assert [(r.agent_id, r.period, r.calls) for r in months] == [("B2", "2026-02", 2)]
    assert store.agent_report(by="week", until=date(2026, 1, 7))[0].calls == 1
    shanghai = store.agent_report(by="month", tz="Asia/Shanghai")
    assert shanghai[0].period_start.utcoffset().total_seconds() == 8 * 3600
    with pytest.raises(ValueError, match="period"):
        store.agent_report(by="day")


@pytest.mark.parametrize("kind", ENGINES)
def test_writers_at_once_store_each_call_once(kind: str, tmp_path: Path, calls) -> None:
    with fresh_url(kind, tmp_path) as url:
        stores = [Store(url) for _ in range(3)]
        jobs = [(s, c) for c in calls[:2] for s in stores]  # each call added by three writers at once
        with ThreadPoolExecutor(len(jobs)) as pool:
            ids = list(pool.map(lambda job: job[0].add(job[1].transcript, job[1].qa, meta=job[1].meta), jobs))
        assert len(set(ids[:3])) == 1 and len(set(ids[3:])) == 1 and ids[0] != ids[3]
        counts = stores[0].counts()
        assert counts["calls"] == 2 and counts["qa_results"] == 2
        assert counts["utterances"] == counts["search"] == sum(len(c.transcript.utterances) for c in calls[:2])
        for s in stores:
            s.close()
