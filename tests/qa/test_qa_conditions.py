"""Every condition kind of the scorecard format, and clear errors for bad scorecards."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers_qa import DATA, load

from callscribe.qa import ScorecardError, load_scorecard, run_qa


@pytest.fixture(scope="module")
def rules() -> dict:
    result = run_qa(load("zh_metrics"), DATA / "custom_card.yaml")
    assert result.scorecard == "custom"
    return {r.id: r for r in result.rules}


@pytest.mark.parametrize(
    ("rule", "passed"),
    [
        ("all_phrases", True),
        ("all_phrases_missing", False),
        ("at_least_three", True),  # 断了, 太慢了, 谢谢 said; 投诉 never
        ("at_least_four", False),
        ("regex_number", True),
        ("first_seconds", False),  # the greeting starts at 1.0 s, not before
        ("last_seconds", True),
        ("first_turns", True),
        ("last_turns", False),  # the customer's last turn is "没有了。"
        ("combined", True),
        ("metric_gap", True),
        ("metric_party", False),  # 157.9 characters a minute
        ("agent_interrupts", True),
        ("customer_starts_negative", True),
        ("any_positive_customer_line", True),
        ("talks_over", False),  # 3.4 s of overlap: the flag is raised
    ],
)
def test_condition_outcomes(rules: dict, rule: str, passed: bool) -> None:
    assert rules[rule].passed is passed, rules[rule].detail


def test_not_applicable_rules_are_left_out_of_the_score(rules: dict) -> None:
    for rid in ("metric_missing", "only_when_complaint"):
        assert rules[rid].passed and rules[rid].points == 0.0
        assert rules[rid].detail.startswith("not applicable")
    assert not rules["ivr_interrupts"].passed  # zero interruptions by the IVR is a real answer, not "unknown"


def test_condition_evidence(rules: dict) -> None:
    assert [h.text for h in rules["regex_number"].hits] == ["工号一二三"]
    assert [(h.utterance, h.start) for h in rules["agent_interrupts"].hits] == [(2, 8.6)]
    gap = rules["metric_gap"].hits[0]
    assert gap.utterance is None and gap.text == "longest_gap = 12"
    assert rules["customer_starts_negative"].hits[0].text == "我的宽带又断了，太慢了。"
    assert "flagged" in " ".join(
        r for r in run_qa(load("zh_metrics"), DATA / "custom_card.yaml").review_reasons if r.startswith("talks_over")
    )


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("rules: [{id: a, points: 1, check: {phrase: [x]}}]", "rule 'a': unknown condition ['phrase']"),
        ("rules: [{id: a, points: 1, check: {regex: '('}}]", "rule 'a': bad regex"),
        ("rules: [{id: a, check: {phrases: [x]}}]", "rule 'a': a scoring rule needs numeric points"),
        ("rules: [{id: a, points: 1, role: boss, check: {phrases: [x]}}]", "rule 'a': role must be one of"),
        ("rules: [{id: a, points: 1, window: {first_m: 3}, check: {phrases: [x]}}]", "unknown window key"),
        ("rules: [{id: a, points: 1, check: {metric: x, op: '~', value: 1}}]", "op must be one of"),
        ("rules: [{id: a, points: 1, check: {phrases: [x], match: sloppy}}]", "match must be exact or fuzzy"),
        ("rules: [{id: a, points: 1, chek: {phrases: [x]}}]", "unknown key(s) ['chek']"),
        ("rules: [{id: a, points: 1, check: {phrases: [x]}}, {id: a, points: 1, check: {phrases: [y]}}]", "duplicate"),
        ("rules: []", "rules must be a non-empty list"),
        ("rules: [{id: a, points: 1, check: {phrases: [x]}", "cannot read scorecard"),
    ],
)
def test_bad_scorecards_name_file_and_cause(tmp_path: Path, yaml_text: str, message: str) -> None:
    path = tmp_path / "card.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    with pytest.raises(ScorecardError) as err:
        load_scorecard(path)
    text = str(err.value)
    assert str(path) in text and message in text and "\n" not in text


def test_missing_scorecard_file(tmp_path: Path) -> None:
    with pytest.raises(ScorecardError, match="no such scorecard file"):
        load_scorecard(tmp_path / "nope.yaml")


def test_builtin_by_name_and_language() -> None:
    assert load_scorecard("en_default").name == "en_default"
    assert load_scorecard(None, "zh-CN").name == "zh_default"
    assert load_scorecard(None, "en").language == "en"
