"""``transcribe --db`` then ``search``: words that were said are found in the right call at the right time, by the
right party; words never said are not; the filters narrow the hits the way the stored calls say they should.

The calls are real speech (evalset-dev) through the real CLI and pipeline; only recognition is the reference text.
Runs on SQLite and on a private PostgreSQL (skipped where no PostgreSQL can be started).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from store_cli_calls import ENGINES, NEVER_SAID, Stored, check_store_matches_folder, folder_calls, stored_calls

from callscribe.model import QAResult
from callscribe.store.moods import MOODS, mood_of

pytestmark = pytest.mark.evalset


@pytest.fixture(scope="module", params=ENGINES)
def stored(request: pytest.FixtureRequest, evalset: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stored]:
    with stored_calls(request.param, evalset, tmp_path_factory.mktemp(f"stored_{request.param}")) as calls:
        yield calls


def said(stored: Stored, word: str) -> set[tuple[str, str]]:
    """(call, party) of every reference turn in which ``word`` was said."""
    return {(c.ref.id, t.party) for c in stored.calls for t in c.ref.turns if word in t.text}


@pytest.mark.parametrize("word", ["交易", "停滞", "攀岩", "希望", "知道", "市场", "景德镇", "一首歌"])
def test_spoken_words_are_found_in_their_call_at_their_time(stored: Stored, word: str) -> None:
    rc, hits = stored.search(word)
    assert rc == 0
    assert {(h["call_name"], h["role"]) for h in hits} == said(stored, word)
    refs = {c.ref.id: c.ref for c in stored.calls}
    for h in hits:
        (turn,) = [t for t in refs[h["call_name"]].turns if t.party == h["role"] and word in t.text]
        assert turn.start - 0.3 <= h["start"] <= turn.start + 0.5 and h["end"] <= turn.end + 0.5
        assert f"[{word}]" in h["snippet"] and word in h["text"]
        assert h["source"].endswith(f"{h['call_name']}.wav") and h["channel"] == (0 if h["role"] == "agent" else 1)
        assert h["agent_id"] == h["call_name"].split("_")[0]  # from the name pattern


def test_a_word_never_said_finds_nothing(stored: Stored) -> None:
    assert all(NEVER_SAID not in t.text for c in stored.calls for t in c.ref.turns)
    rc, stdout, stderr = stored.invoke("search", NEVER_SAID)
    assert (rc, stdout) == (1, "")
    assert stderr.strip() == f"no calls match '{NEVER_SAID}'"


def test_table_shows_call_time_role_and_the_match(stored: Stored) -> None:
    rc, stdout, _ = stored.cli("search", "景德镇")
    assert rc == 0
    (row,) = [line for line in stdout.splitlines() if line.startswith("│") and "景德镇" in line]
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert cells[:5] == ["A02_20240514-141500_sales", "2024-05-14 14:15", "A02", "00:00", "agent"]
    assert "[景德镇]" in cells[5]


def test_filters_role_agent_and_time(stored: Stored) -> None:
    assert stored.search("交易", "--role", "agent")[0] == 1  # only the customer said it
    assert {h["role"] for h in stored.search("交易", "--role", "customer")[1]} == {"customer"}
    _, hits = stored.search("希望", "--agent", "A02")
    assert {h["call_name"] for h in hits} == {"A02_20240514-141500_sales"}
    # 知道 is said in a May call of A01 and a June call of A01; the name pattern gave the call times
    _, hits = stored.search("知道", "--since", "2024-06-01")
    assert {h["call_name"] for h in hits} == {"A01_20240603-110000_sales"}
    _, hits = stored.search("知道", "--until", "2024-05-06")  # a bare --until date takes that whole day
    assert {h["call_name"] for h in hits} == {"A01_20240506-093000_billing"}
    assert stored.search("知道", "--until", "2024-05-06T09:00")[0] == 1
    _, hits = stored.search("一首歌", "--since", "2024-05-10", "--until", "2024-05-31")
    assert {h["call_name"] for h in hits} == {"A02_20240514-141500_sales"}


def customer_mean(qa: QAResult | None) -> float | None:
    return None if qa is None else (qa.sentiment.get("by_party") or {}).get("customer")


def test_filters_by_qa_verdicts(stored: Stored) -> None:
    files = {t.call.id: qa for t, qa in folder_calls(stored.out).values()}
    assert all(qa is not None for qa in files.values())
    failed = {name for name, qa in files.items() if any(r.id == "no_hedging" and not r.passed for r in qa.rules)}
    review = {name for name, qa in files.items() if qa.needs_review}
    assert failed and review and review != set(files)  # the scorecard tells the calls apart
    for word in ("知道", "希望", "一首歌"):  # words said in more than one call
        everywhere = {h["call_name"] for h in stored.search(word)[1]}
        assert {h["call_name"] for h in stored.search(word, "--rule-failed", "no_hedging")[1]} == everywhere & failed
        assert {h["call_name"] for h in stored.search(word, "--needs-review")[1]} == everywhere & review
        by_mood = [{h["call_name"] for h in stored.search(word, "--sentiment", m)[1]} for m in MOODS]
        assert sorted(n for names in by_mood for n in names) == sorted(everywhere)  # each call in one mood
        for mood, names in zip(MOODS, by_mood, strict=True):
            assert names == {n for n in everywhere if mood_of(customer_mean(files[n])) == mood}
    rc, _, stderr = stored.invoke("search", "知道", "--sentiment", "angry")
    assert rc == 2 and "angry" in stderr


def test_limit_and_bad_input(stored: Stored) -> None:
    rc, hits = stored.search("知道 OR 希望 OR 一首歌", "--limit", "2")
    assert rc == 0 and len(hits) == 2
    rc, _, stderr = stored.invoke("search", "，。")
    assert rc == 2 and len(stderr.strip().splitlines()) == 1 and "no words to look for" in stderr
    rc, _, stderr = stored.invoke("search", "希望", "--since", "last week")
    assert rc == 2 and "--since 'last week'" in stderr and len(stderr.strip().splitlines()) == 1


def test_store_holds_exactly_the_folder(stored: Stored) -> None:
    assert check_store_matches_folder(stored.url, stored.out) == len(stored.calls)
