"""The desk's pieces without a server: glossary entries from corrections, verdict notes read back, per-rule
precision, the calls page's query parsing, waveform peaks of real speech, the live board, sessions."""

from __future__ import annotations

import json
import wave
from datetime import date, datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qsl

import numpy as np
import pytest

from callscribe.server.ui.access import Sessions
from callscribe.server.ui.listing import Filters, mood_of, parse_filters
from callscribe.server.ui.live import LiveBoard, live_board, snapshot
from callscribe.server.ui.media import compute_peaks, peaks_bytes, span_key
from callscribe.server.ui.review import (
    Ledger,
    RulePrecision,
    add_call_precision,
    glossary_entry,
    hit_note,
    propose_entry,
    review_state,
    score_note,
)

WHEN = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("before", "after", "entry"),
    [
        ("我住在冰台新区。", "我住在滨海新区。", ("冰台新区", "滨海新区")),  # widened to jieba's words
        ("我的话费多扣了", "我的花费多扣了", ("话费", "花费")),
        ("we use wen three now", "we use Qwen3 now", ("wen three", "Qwen3")),  # whole Latin words
        ("the word is", "the world is", ("word", "world")),
        ("没有变化", "没有变化", None),
    ],
)
def test_a_correction_proposes_the_changed_words_as_a_glossary_entry(before: str, after: str, entry: object) -> None:
    assert propose_entry(before, after) == entry


def test_glossary_entries_are_checked_before_they_reach_the_store() -> None:
    assert glossary_entry(" 冰台新区 ", "滨海新区") == "冰台新区 => 滨海新区"
    for wrong, right in (("", "x"), ("a => b", "c"), ("a", "b#c"), ("same", "same"), ("x" * 65, "y")):
        with pytest.raises(ValueError, match="glossary entry"):
            glossary_entry(wrong, right)


def _verdict(verdict: str, rule: str | None, note: str, by: str = "r1") -> SimpleNamespace:
    return SimpleNamespace(verdict=verdict, rule_id=rule, note=note, reviewer=by, created_at=WHEN)


QA = {
    "rules": [
        {
            "id": "greeting",
            "passed": True,
            "hits": [{"start": 1.5, "utterance": 0, "text": "您好"}, {"start": 9.0, "utterance": 3, "text": "你好"}],
        },
        {"id": "refund", "passed": False, "hits": [{"start": 4.25, "utterance": 1, "text": "退款"}]},
        {"id": "closing", "passed": False, "hits": []},
    ]
}


def test_verdict_notes_are_read_back_latest_first_and_tied_to_their_hit() -> None:
    rows = [
        _verdict("false_hit", "greeting", hit_note(0, 1.5, "not a greeting")),
        _verdict("correct", "greeting", hit_note(0, 1.5)),  # changed their mind
        _verdict("correct", "refund", hit_note(0, 7.0, "an older QA run's hit")),  # start differs: dropped
        _verdict("false_hit", "closing", "the agent did close"),
        _verdict("score_override", None, score_note(85, "fair: 100 words")),
        _verdict("review_resolved", None, "ok"),
    ]
    state = review_state(rows, QA)
    assert state.hits[("greeting", 0)].verdict == "correct" and state.hits[("greeting", 0)].comment == ""
    assert ("refund", 0) not in state.hits
    assert state.rules["closing"].comment == "the agent did close"
    assert state.override is not None and state.override.score == 85 and state.override.comment == "fair: 100 words"
    assert state.resolved and len(state.history) == len(rows)


def test_precision_counts_verdicts_and_hits_a_correction_took_away() -> None:
    table: dict[str, RulePrecision] = {}
    verdicts = [_verdict("correct", "greeting", hit_note(0, 1.5)), _verdict("false_hit", "closing", "")]
    fixed = [SimpleNamespace(field="text", utterance=1, before="我要退款", after="我要推广")]
    add_call_precision(table, QA, verdicts, fixed)
    add_call_precision(table, QA, [_verdict("false_hit", "greeting", hit_note(1, 9.0))], [])
    g, r, c = table["greeting"], table["refund"], table["closing"]
    assert (g.confirmed, g.false_hits, g.unjudged, g.precision) == (1, 1, 2, 0.5)
    assert (r.corrected_away, r.unjudged, r.precision) == (1, 1, 0.0)
    assert (c.rule_overturned, c.precision) == (1, None)


def test_ledger_keeps_reviewed_calls(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ui" / "reviewed.json")
    assert ledger.ids() == []
    for call in (3, 1, 3):
        ledger.add(call)
    assert ledger.ids() == [1, 3] and json.loads(ledger.path.read_text()) == {"calls": [1, 3]}
    ledger.path.write_text("{not json")
    with pytest.raises(ValueError, match=r"reviewed\.json"):
        ledger.ids()


def test_calls_page_query_is_parsed_and_written_back() -> None:
    f = parse_filters(
        {
            "q": " 退款 ",
            "since": "2026-01-01",
            "until": "2026-01-31",
            "min_score": "40",
            "sort": "score",
            "review": "yes",
            "mood": "negative",
            "offset": "100",
            "per": "20",
        }
    )
    assert f == Filters(
        q="退款",
        since=date(2026, 1, 1),
        until=date(2026, 1, 31),
        min_score=40.0,
        sort="score",
        review="yes",
        mood="negative",
        offset=100,
        per=20,
    )
    assert parse_filters(dict(parse_qsl(f.params()))) == f
    kw = f.store_kwargs(timezone.utc)
    assert kw["until"] == datetime(2026, 2, 1, tzinfo=timezone.utc) and kw["needs_review"] is True
    bad = parse_filters({"since": "yesterday", "min_score": "lots", "sort": "name", "mood": "angry"})
    assert bad == Filters() and len(bad.errors) == 4 and all("=" in e for e in bad.errors)
    assert [mood_of(x) for x in (-0.5, 0.0, 0.3, None)] == ["negative", "neutral", "positive", "unknown"]


def test_peaks_follow_the_speech_of_each_channel(tmp_path: Path, evalset: Path) -> None:
    from callscribe.eval.calls import CallSpec, TurnSpec, load_pieces, write_call

    pieces = load_pieces(evalset, ("zh",))
    first, second = sorted(pieces)[:2]
    spec = CallSpec(
        "peaks",
        "zh",
        "stereo",
        8000,
        (TurnSpec("agent", (first,)), TurnSpec("customer", (second,))),
        bleed_db=-40.0,
        noise_dbfs=None,
    )
    built = write_call(spec, pieces, tmp_path)
    with wave.open(str(built.audio_path)) as w:
        duration = w.getnframes() / w.getframerate()
    peaks = compute_peaks(built.audio_path, duration)
    assert peaks["channels"] == 2 and abs(peaks["duration"] - duration) < 0.01
    data = np.array(peaks["data"])
    per_s = peaks["sample_rate"] / peaks["samples_per_peak"]
    assert data.shape[1] == pytest.approx(duration * per_s, abs=1)
    agent, customer = built.ref.turns[0], built.ref.turns[1]
    for turn, loud, quiet in ((agent, 0, 1), (customer, 1, 0)):
        a, b = int(turn.start * per_s) + 2, int(turn.end * per_s) - 2
        assert data[loud, a:b].mean() > 4 * max(1, data[quiet, a:b].mean())  # bleed is 40 dB down
    cached = peaks_bytes(tmp_path / "cache", "ab" * 32, built.audio_path, duration)
    assert json.loads(cached)["data"] == peaks["data"]
    assert peaks_bytes(tmp_path / "cache", "ab" * 32, tmp_path / "gone.wav", duration) == cached  # read back
    with pytest.raises(ValueError, match=r"notes\.txt"):
        (tmp_path / "notes.txt").write_text("not audio")
        compute_peaks(tmp_path / "notes.txt", 1.0)
    assert span_key([]) == "plain" and span_key([(1.0, 2.0)]) != span_key([(1.0, 2.5)])


def test_live_board_keeps_partials_replaced_by_finals() -> None:
    app = SimpleNamespace(state=SimpleNamespace())
    assert snapshot(app) == []
    board = live_board(app)
    assert live_board(app) is board and app.state.live_calls is board
    board.begin("s1", agent_id="A17", queue="billing")
    board.line("s1", role="customer", text="我的话", start=1.0, final=False)
    board.line("s1", role="customer", text="我的话费", start=1.0, final=False)
    board.line("s1", role="customer", text="我的话费多扣了。", start=1.0, final=True)
    board.line("s1", role="agent", text="抱歉", start=3.0, final=False)
    board.alert("s1", "customer asked for a supervisor")
    board.line("nobody", role="agent", text="ignored")
    (call,) = snapshot(app)
    assert [(x["text"], x["final"]) for x in call["lines"]] == [("我的话费多扣了。", True), ("抱歉", False)]
    assert call["alerts"] == ["customer asked for a supervisor"] and call["agent_id"] == "A17"
    board.end("s1")
    assert snapshot(app) == []
    other = SimpleNamespace(state=SimpleNamespace(live_calls=SimpleNamespace(live_calls=lambda: [])))
    with pytest.raises(TypeError):
        live_board(other)
    assert isinstance(LiveBoard().live_calls(), list)


def test_sessions_expire_when_idle() -> None:
    sessions = Sessions(idle_s=0.05)
    s = sessions.open("key")
    assert sessions.get(s.id) is s and s.csrf and s.id != s.csrf
    import time

    time.sleep(0.1)
    assert sessions.get(s.id) is None and sessions.get(None) is None
