"""Review corrections and verdicts, jobs, API keys and the glossary on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from store_fixtures import ENGINES, StoreCall, fresh_url, store_calls

from callscribe.store import Store


@pytest.fixture(params=ENGINES)
def store(request: pytest.FixtureRequest, tmp_path: Path):
    with fresh_url(request.param, tmp_path) as url:
        s = Store(url)
        yield s
        s.close()


@pytest.fixture(scope="module")
def calls(evalset: Path, examples_dir: Path) -> tuple[StoreCall, ...]:
    return store_calls(str(evalset), str(examples_dir))


@pytest.mark.evalset
def test_corrections_and_verdicts(store: Store, calls) -> None:
    call_id = store.add(calls[0].transcript, calls[0].qa)
    c = store.add_correction(call_id, "景德镇", "景德镇市", author="rev1", utterance=1)
    store.add_correction(call_id, "停滞", "停止", author="rev2", utterance=2)
    assert [(x.author, x.before, x.after, x.utterance, x.field) for x in store.corrections(call_id)] == [
        ("rev1", "景德镇", "景德镇市", 1, "text"),
        ("rev2", "停滞", "停止", 2, "text"),
    ]
    assert c.created_at.tzinfo is not None
    v = store.add_verdict(call_id, "disagree", reviewer="rev1", rule_id="no_hedging", note="she did not hedge")
    assert store.verdicts(call_id) == [v] and v.rule_id == "no_hedging"
    with pytest.raises(KeyError, match="no call"):
        store.add_verdict(call_id + 99, "agree")
    assert store.corrections(call_id + 99) == []


def test_jobs_move_through_their_states(store: Store) -> None:
    first = store.add_job({"path": "/calls/a.wav", "options": {"language": "zh"}})
    second = store.add_job({"path": "/calls/b.wav"}, kind="index")
    assert first.state == "queued" and store.job(first.id) == first
    taken = store.claim_job()
    assert (taken.id, taken.state, taken.attempts) == (first.id, "running", 1) and taken.started_at is not None
    assert store.claim_job(kind="transcribe") is None  # the only other job is an index job
    assert store.claim_job().id == second.id and store.claim_job() is None
    failed = store.update_job(first.id, "failed", error="decode: not audio")
    assert failed.finished_at is not None and failed.error == "decode: not audio"
    store.update_job(first.id, "queued")
    again = store.claim_job()
    assert (again.id, again.attempts, again.error, again.finished_at) == (first.id, 2, None, None)
    done = store.update_job(first.id, "done", payload={"path": "/calls/a.wav", "pages": 1})
    assert done.payload["pages"] == 1 and [j.id for j in store.jobs(state="done")] == [first.id]
    assert [j.id for j in store.jobs()] == [first.id, second.id]
    with pytest.raises(ValueError, match="job state"):
        store.update_job(first.id, "exploded")
    with pytest.raises(KeyError, match="no job"):
        store.update_job("0" * 32, "done")
    assert store.job("0" * 32) is None


def test_api_keys_are_kept_hashed(store: Store) -> None:
    record, key = store.create_key("ingest", scope="write")
    assert key.startswith("cs_") and len(key) > 40 and record.prefix == key[:10]
    assert store.verify_key(key) == record and store.verify_key(key + "x") is None
    with pytest.raises(ValueError, match="exists"):
        store.create_key("ingest")
    store.create_key("reader")
    assert [k.name for k in store.api_keys()] == ["ingest", "reader"]
    assert store.revoke_key("ingest") and not store.revoke_key("ingest") and not store.revoke_key("nobody")
    assert store.verify_key(key) is None and store.api_keys()[0].revoked_at is not None


@pytest.mark.evalset
def test_glossary_terms_are_kept_whole_and_stored_calls_follow(store: Store, calls) -> None:
    c = calls[0]
    call_id = store.add(c.transcript, c.qa)
    said = next(u.text for u in c.transcript.utterances if "白日梦想家" in u.text)
    # a pair of characters jieba does not know as a word, in what the customer said
    pair = next(
        said[i : i + 2]
        for i in range(len(said) - 1)
        if said[i : i + 2].isalpha() and not store.tokenizer.is_word(said[i : i + 2])
    )
    assert "白日梦想家" not in store.search_tokens(said) and pair not in store.search_tokens(said)
    assert [h.call_id for h in store.search(pair)] == [call_id]
    assert store.add_terms(["白日梦想家", pair, " "]) == 2 and store.add_terms([pair]) == 0
    assert store.terms() == sorted(["白日梦想家", pair])
    assert {"白日梦想家", pair} <= set(store.search_tokens(said))
    # the stored utterance was tokenized again: the new word is found, and nothing is left to reindex
    assert [h.call_id for h in store.search(pair)] == [call_id]
    assert store.reindex() == 0
    reopened = Store(_url(store))
    assert "白日梦想家" in reopened.search_tokens(said)
    reopened.close()


def _url(store: Store) -> str:
    return store.url.render_as_string(hide_password=False)
