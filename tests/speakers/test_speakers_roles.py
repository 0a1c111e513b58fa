"""Role patterns, user overrides, labels, and the RTTM writer."""

from __future__ import annotations

from pathlib import Path

import pytest

from callscribe.model import CallInfo, Transcript, Utterance
from callscribe.outputs.rttm import parse_rttm, write_rttm
from callscribe.speakers import assign_roles, load_patterns, role_label
from callscribe.speakers.roles import is_ivr


def _u(start: float, speaker: str, text: str, dur: float = 2.0) -> Utterance:
    return Utterance(start, start + dur, 0, text, speaker=speaker)


def test_chinese_agent_phrases_beat_speaking_first() -> None:
    utts = [
        _u(0.0, "S1", "喂，你好，我想问一下我的话费"),
        _u(2.5, "S2", "您好，很高兴为您服务，我的工号是八六七五"),
        _u(5.0, "S1", "我的账单多扣了五十块"),
        _u(8.0, "S2", "好的，请问还有什么可以帮您"),
    ]
    d = assign_roles(utts, ["S1", "S2"], load_patterns())
    assert (d["S2"].role, d["S1"].role) == ("agent", "customer")
    assert d["S2"].confidence > 0.99
    assert any("很高兴为您服务" in e for e in d["S2"].evidence)


def test_no_phrases_falls_back_to_who_spoke_first() -> None:
    d = assign_roles([_u(0.0, "A", "hello"), _u(3.0, "B", "hi there")], ["A", "B"], load_patterns())
    assert d["A"].role == "agent" and d["B"].role == "customer"
    assert 0.5 < d["A"].confidence < 0.7
    assert d["A"].evidence[0].startswith("spoke first")


def test_third_voice_is_ivr_or_other() -> None:
    utts = [
        _u(0.0, "S3", "Welcome. This call may be recorded. For billing, press 1."),
        _u(4.0, "S1", "Thank you for calling, how can I help you?"),
        _u(7.0, "S2", "I'd like to cancel my order."),
        _u(10.0, "S4", "uh huh"),
        _u(12.0, "S2", "It never arrived."),
    ]
    d = assign_roles(utts, ["S1", "S2", "S3", "S4"], load_patterns())
    assert {s: x.role for s, x in d.items()} == {"S1": "agent", "S2": "customer", "S3": "ivr", "S4": "other"}
    assert is_ivr("请按1查询话费", load_patterns()) and not is_ivr("您好", load_patterns())


def test_user_config_replaces_or_extends_patterns(tmp_path: Path) -> None:
    cfg = tmp_path / "roles.yaml"
    cfg.write_text("agent:\n  - {pattern: 'acme desk', weight: 5}\n", encoding="utf-8")
    replaced = load_patterns(str(cfg))
    assert [p.regex.pattern for p in replaced.of("agent")] == ["acme desk"]
    assert replaced.of("customer") == load_patterns().of("customer")
    cfg2 = tmp_path / "more.yaml"
    cfg2.write_text("extend: true\nagent: ['acme desk']\n", encoding="utf-8")
    assert len(load_patterns(str(cfg2)).of("agent")) == len(load_patterns().of("agent")) + 1
    d = assign_roles([_u(0, "A", "hi"), _u(3, "B", "acme desk, go ahead")], ["A", "B"], replaced)
    assert d["B"].role == "agent"


def test_bad_user_config_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("agnet: ['x']\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.yaml: unknown key\(s\) agnet"):
        load_patterns(str(bad))
    broken = tmp_path / "broken.yaml"
    broken.write_text("agent: ['(unclosed']\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken\.yaml: bad pattern"):
        load_patterns(str(broken))
    with pytest.raises(ValueError, match=r"missing\.yaml: roles config not found"):
        load_patterns(str(tmp_path / "missing.yaml"))


def test_role_label_by_language() -> None:
    assert role_label("agent", "zh") == "客服" and role_label("customer", "zh-CN") == "客户"
    assert role_label("agent", "en") == "Agent" and role_label("customer", None) == "Customer"
    assert role_label(None, "zh") == "未知" and role_label("ivr", "en") == "IVR"


def test_rttm_round_trip() -> None:
    call = CallInfo("c1", "/calls/my call.wav", "", 10.0, 8000, 1)
    utts = (
        Utterance(2.0, 3.5, 0, "b", speaker="S2"),
        Utterance(0.5, 1.75, 0, "a", speaker="S1"),
        Utterance(4.0, 4.0, 1, "empty"),
        Utterance(5.0, 6.0, 1, "c"),
    )
    text = write_rttm(Transcript(call, utts, "whisper"))
    lines = text.splitlines()
    assert lines[0] == "SPEAKER my_call 1 0.500 1.250 <NA> <NA> S1 <NA> <NA>"
    assert len(lines) == 3 and lines[2].split()[7] == "ch1"
    turns = parse_rttm(text)
    assert [(t.span.start, t.span.end, t.speaker) for t in turns] == [
        (0.5, 1.75, "S1"),
        (2.0, 3.5, "S2"),
        (5.0, 6.0, "ch1"),
    ]
    with pytest.raises(ValueError, match=r"x\.rttm:1"):
        parse_rttm("SPEAKER f 1 abc 1.0 <NA> <NA> S1", "x.rttm")
