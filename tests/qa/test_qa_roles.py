"""QA never grades agent rules against a party whose role is unsure."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import cast

import pytest
from helpers_qa import load

from callscribe.model import CallInfo, QAResult, RuleResult, Transcript, Utterance
from callscribe.options import Options
from callscribe.qa import load_scorecard, run_qa
from callscribe.qa.rules import parse_scorecard, relies_on_roles
from callscribe.speakers import SpeakerPlan, finalize
from callscribe.speakers.channels import AudioSource

# Two people talking with nothing that says who serves whom; the first voice would be "agent" by timing alone.
NO_CUES = (
    (0.5, 3.0, "S1", "Hello."),
    (3.5, 7.0, "S2", "Hi, it's about the thing from last week."),
    (7.5, 11.0, "S1", "Right, the one on Tuesday."),
    (11.5, 15.0, "S2", "Yes. Is it done?"),
    (15.5, 19.0, "S1", "Not yet, maybe tomorrow."),
    (19.5, 22.0, "S2", "Okay, bye."),
)


def _mono(rows: tuple[tuple[float, float, str, str], ...] | list[tuple[float, float, str, str]]) -> Transcript:
    """A hand-made mono transcript through the real speakers stage (roles decided by ``finalize``)."""
    utts = tuple(Utterance(a, b, 0, text, speaker=s, language="en") for a, b, s, text in rows)
    duration = max(u.end for u in utts) + 0.5
    raw = Transcript(CallInfo("hand", "hand.wav", "", duration, 8000, 1), utts, "hand-written", language="en")
    plan = SpeakerPlan("mono", {0: [u.span for u in utts]}, {0: [u.speaker or "" for u in utts]}, channel=0)
    # a mono plan never reads the audio in finalize (only split calls re-measure levels)
    return finalize(raw, cast(AudioSource, None), plan, Options())


def _rules(result: QAResult) -> dict[str, RuleResult]:
    return {r.id: r for r in result.rules}


def test_no_content_cues_flag_the_call_and_leave_agent_rules_ungraded() -> None:
    t = _mono(NO_CUES)
    assert {s.role for s in t.speakers} == {"agent", "customer"}
    assert all(s.role_confidence is not None and s.role_confidence < 0.8 for s in t.speakers)
    assert any(e.startswith("unsure:") for s in t.speakers for e in s.evidence)
    assert any(n.startswith("roles unsure") for n in t.notes), t.notes

    result = run_qa(t, "en_default")
    rules = _rules(result)
    assert result.needs_review
    assert result.review_reasons[0].startswith("roles unsure"), result.review_reasons
    card = load_scorecard("en_default")
    role_rules = {r.id for r in card.rules if relies_on_roles(r)}
    assert role_rules >= {"greeting", "self_identification", "offer_help", "closing", "no_forbidden_phrases"}
    for rid in role_rules:
        r = rules[rid]
        assert not r.graded and not r.passed and r.points == 0 and r.earned == 0, r
        assert r.detail.startswith("not graded: roles unsure"), r.detail
        assert rid in result.review_reasons[0]
    # a rule that needs no roles is still graded, and only it counts in the score
    assert rules["no_long_silence"].graded and rules["no_long_silence"].passed
    assert (result.score, result.max_score) == (10.0, 10.0)
    # the reviewer is told what the check made of the roles as assigned
    assert "with the roles as assigned" in rules["greeting"].detail


def test_confident_roles_are_graded() -> None:
    good = load("en_good")
    rows = [(u.start, u.end, "S1" if u.role == "agent" else "S2", u.text) for u in good.utterances]
    t = _mono(rows)
    agent = next(s for s in t.speakers if s.id == "S1")
    assert agent.role == "agent" and agent.role_confidence is not None and agent.role_confidence > 0.99
    result = run_qa(t, "en_default")
    assert all(r.graded for r in result.rules)
    assert not any("roles unsure" in r for r in result.review_reasons)
    assert _rules(result)["greeting"].passed and result.max_score == 80.0


def test_customer_speaking_first_is_graded_as_the_customer() -> None:
    # the customer answers a call-back; the agent's words decide, and the agent is graded on the agent's words
    rows = [
        (0.5, 1.0, "S1", "Hello?"),
        (1.5, 6.0, "S2", "Hello, this is James from Northwind, returning your call about the slow connection."),
        (6.5, 9.0, "S1", "Oh yes. It is still slow in the mornings."),
        (9.5, 14.0, "S2", "I am sorry to hear that. I have reset your line, please restart your router."),
        (14.5, 16.0, "S1", "Okay, it looks much faster now."),
        (16.5, 19.0, "S2", "Great. Is there anything else I can help you with? Goodbye."),
    ]
    t = _mono(rows)
    assert {s.id: s.role for s in t.speakers} == {"S1": "customer", "S2": "agent"}
    result = run_qa(t, "en_default")
    rules = _rules(result)
    assert all(r.graded for r in result.rules)
    assert rules["self_identification"].passed and rules["closing"].passed
    assert rules["self_identification"].hits[0].utterance == 1


def test_scorecard_threshold_and_unsure_mark() -> None:
    t = _mono(NO_CUES)
    data = {
        "name": "lenient",
        "review": {"role_confidence": 0.5},
        "rules": [{"id": "greet", "role": "agent", "points": 5, "check": {"phrases": ["hello"]}}],
    }
    # the transcript's own unsure mark still holds the rule back, whatever the scorecard's threshold
    assert not _rules(run_qa(t, parse_scorecard(data, "lenient.yaml")))["greet"].graded
    # without the mark, the scorecard's threshold decides
    plain = tuple(
        dataclasses.replace(s, evidence=tuple(e for e in s.evidence if not e.startswith("unsure:"))) for s in t.speakers
    )
    unmarked = dataclasses.replace(t, speakers=plain)
    assert _rules(run_qa(unmarked, parse_scorecard(data, "lenient.yaml")))["greet"].graded
    assert not _rules(run_qa(unmarked, "en_default"))["greeting"].graded  # default threshold 0.8
    with pytest.raises(ValueError, match=r"lenient\.yaml: review: role_confidence"):
        parse_scorecard({**data, "review": {"role_confidence": 2}}, "lenient.yaml")


def test_which_rules_rely_on_roles() -> None:
    def card(check: dict, **rule: object) -> bool:
        data = {"name": "x", "rules": [{"id": "r", "points": 1, "check": check, **rule}]}
        return relies_on_roles(parse_scorecard(data, "x.yaml").rules[0])

    assert card({"phrases": ["hi"]}, role="agent")
    assert card({"phrases": ["hi"], "role": "customer"})
    assert not card({"phrases": ["hi"]})
    assert not card({"silence": {"over_s": 5}})
    assert card({"metric": "agent.talk_share", "op": "<", "value": 0.8})
    assert card({"metric": "response_latency_max", "op": "<", "value": 5})
    assert not card({"metric": "longest_gap", "op": "<", "value": 5})
    assert card({"not": {"interruptions": {"by": "agent"}}})
    assert card({"sentiment": {"party": "customer", "at": "end", "is": "negative"}})
    assert card({"follow": {"trigger": {"phrases": ["x"], "role": "customer"}, "response": {"phrases": ["y"]}}})
    assert card({"phrases": ["hi"]}, when={"phrases": ["refund"], "role": "customer"})


def test_not_graded_round_trips_and_old_results_load() -> None:
    result = run_qa(_mono(NO_CUES), "en_default")
    back = QAResult.from_dict(json.loads(json.dumps(result.to_dict(), ensure_ascii=False)))
    assert back == result and not _rules(back)["greeting"].graded
    old = result.to_dict()
    for r in old["rules"]:
        del r["graded"]  # a result written before rules could be ungraded
    assert all(r.graded for r in QAResult.from_dict(old).rules)


def test_missing_roles_are_not_graded_either() -> None:
    t = load("en_good")
    bare = tuple(dataclasses.replace(u, role=None, speaker=f"S{u.channel}") for u in t.utterances)
    result = run_qa(dataclasses.replace(t, utterances=bare), "en_default")
    assert result.review_reasons[0].startswith("no agent/customer roles in the transcript: not graded")
    assert not _rules(result)["greeting"].graded and _rules(result)["no_long_silence"].graded


def test_qa_command_reports_ungraded_rules(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from callscribe.cli import app

    out = tmp_path / "out"
    out.mkdir()
    (out / "hand.json").write_text(_mono(NO_CUES).to_json(), encoding="utf-8")
    res = CliRunner().invoke(app, ["qa", str(out)], terminal_width=250)
    assert res.exit_code == 0, res.output
    assert "roles unsure" in res.output and "1 need review" in res.output
    saved = QAResult.from_dict(json.loads((out / "hand.qa.json").read_text(encoding="utf-8")))
    assert sum(not r.graded for r in saved.rules) == 8 and saved.max_score == 10.0
