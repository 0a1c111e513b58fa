"""The review desk's customer-mood filter: a page of one mood is read from the store's mood column, so every page
is full until the calls of that mood run out, newest first, and the next link goes on where it stopped. The calls
are short Mandarin conversations run through the real QA (the customer's words decide the mood)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from callscribe.model import CallInfo, Speaker, Transcript, Utterance
from callscribe.qa import load_scorecard, run_qa
from callscribe.server.ui.listing import calls_page, mood_of, parse_filters
from callscribe.store import CallMeta, Store

CUSTOMER_SAYS = (
    "太好了，问题解决了，非常感谢你的帮助",
    "太糟糕了，我非常生气，你们的服务太差了",
    "我想查一下这个月的账单",
    "这次扣费太离谱了，我很不满意",
    "谢谢，你们处理得很快，我很满意",
    "你们又乱收费，真的太让人失望了",
    "好的",
)
CALLS = 30


def conversation(k: int) -> Transcript:
    said = CUSTOMER_SAYS[k % len(CUSTOMER_SAYS)]
    utts = (
        Utterance(0.5, 3.0, 0, "您好，这里是客服中心，请问有什么可以帮您", "S0", "agent", language="zh"),
        Utterance(3.5, 7.0, 1, said, "S1", "customer", language="zh"),
        Utterance(7.5, 9.0, 0, "好的，还有其他问题吗", "S0", "agent", language="zh"),
    )
    call = CallInfo(f"call{k:03d}", f"/recordings/call{k:03d}.wav", f"{k:064x}", 10.0, 8000, 2)
    return Transcript(call, utts, "reference", "zh", {}, {}, (Speaker("S0", 0, "agent"), Speaker("S1", 1, "customer")))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    card = load_scorecard(None, "zh")
    start = datetime(2026, 5, 4, 9, tzinfo=timezone.utc)
    with Store(tmp_path_factory.mktemp("desk") / "calls.db") as s:
        moods = {}
        for k in range(CALLS):
            t = conversation(k)
            qa = run_qa(t, card) if k % 10 != 9 else None  # some calls without QA
            call_id = s.add(t, qa, meta=CallMeta("A1", start + timedelta(minutes=k)))
            moods[call_id] = mood_of(None if qa is None else qa.sentiment["by_party"].get("customer"))
        yield s, moods


@pytest.mark.parametrize("mood", ["negative", "positive", "neutral", "unknown"])
def test_mood_pages_are_full(store, mood: str) -> None:
    s, moods = store
    want = sorted((i for i, m in moods.items() if m == mood), reverse=True)  # newest first
    assert want
    per, offset, seen = 4, 0, []
    while True:
        page = calls_page(s, parse_filters({"mood": mood, "per": str(per), "offset": str(offset)}), timezone.utc)
        rows = [r.id for r in page.rows]
        assert page.moods == {i: mood for i in rows}
        assert len(rows) == min(per, len(want) - len(seen))  # full unless the mood's calls run out
        seen += rows
        if page.next_offset is None:
            break
        assert page.prev_offset == (max(0, offset - per) if offset else None)
        offset = page.next_offset
    assert seen == want


def test_mood_combines_with_the_other_filters(store) -> None:
    s, moods = store
    f = parse_filters({"mood": "negative", "sort": "created", "since": "2026-05-04", "until": "2026-05-04"})
    page = calls_page(s, f, timezone.utc)
    assert [r.id for r in page.rows] == sorted(i for i, m in moods.items() if m == "negative")
    assert calls_page(s, parse_filters({"mood": "negative", "agent": "B9"}), timezone.utc).rows == []
