"""The default Chinese and English scorecards on hand-written calls: every rule passes on one, fails on another."""

from __future__ import annotations

import dataclasses
import json

import pytest
from helpers_qa import load

from callscribe.model import QAResult, Transcript
from callscribe.qa import load_scorecard, run_qa

LANGS = ("zh", "en")


def _rules(result: QAResult) -> dict:
    return {r.id: r for r in result.rules}


def _with_text(t: Transcript, index: int, text: str) -> Transcript:
    utts = list(t.utterances)
    utts[index] = dataclasses.replace(utts[index], text=text)
    return dataclasses.replace(t, utterances=tuple(utts))


@pytest.mark.parametrize("lang", LANGS)
def test_good_call_passes_every_rule(lang: str) -> None:
    card = load_scorecard(None, lang)
    result = run_qa(load(f"{lang}_good"))
    assert result.scorecard == f"{lang}_default"
    rules = _rules(result)
    assert set(rules) == {r.id for r in card.rules}
    assert all(r.passed for r in result.rules), [r.id for r in result.rules if not r.passed]
    assert result.score == result.max_score == sum(r.points for r in card.rules if r.kind == "score")
    assert not result.needs_review and result.review_reasons == ()
    assert (
        rules["apology_on_complaint"].hits[-1].text.lower() == "sorry"
        or "抱歉" in rules["apology_on_complaint"].hits[-1].text
    )


@pytest.mark.parametrize("lang", LANGS)
def test_bad_call_fails_every_rule(lang: str) -> None:
    card = load_scorecard(None, lang)
    result = run_qa(load(f"{lang}_bad"))
    rules = _rules(result)
    assert not any(r.passed for r in result.rules), [r.id for r in result.rules if r.passed]
    assert result.score == 0.0 and result.max_score == sum(r.points for r in card.rules if r.kind == "score")
    flagged = {r.id for r in card.rules if r.kind == "flag"}
    assert flagged == {"escalation_risk", "customer_ends_negative"}
    assert result.needs_review
    assert {reason.split(":")[0] for reason in result.review_reasons} == flagged
    # every failure cites where: utterance index, times inside the call, and the words
    forbidden = rules["no_forbidden_phrases"].hits
    assert forbidden and all(h.utterance is not None and h.start < h.end and h.text for h in forbidden)
    assert rules["no_long_silence"].hits[0].text == "silence 12.0 s"


def test_hits_cite_utterance_times_and_text() -> None:
    result = run_qa(load("zh_bad"))
    rules = _rules(result)
    hits = [(h.utterance, h.start, h.end, h.text) for h in rules["no_forbidden_phrases"].hits]
    assert hits == [(2, 12.5, 16.0, "不知道"), (2, 12.5, 16.0, "不归我管")]
    esc = [h.text for h in rules["escalation_risk"].hits]
    assert esc == ["投诉", "12315", "曝光"]


@pytest.mark.parametrize(
    "greeting",
    [
        "你好很高兴为你服务，我是工号1024，请问有什么可以帮您？",
        "您好很高性为您服务，我是工号1024，请问有什么可以帮您？",
    ],
)
def test_garbled_greeting_still_passes(greeting: str) -> None:
    rules = _rules(run_qa(_with_text(load("zh_good"), 0, greeting)))
    assert rules["greeting"].passed
    assert rules["greeting"].hits[0].text in greeting


def test_homophone_agent_number_counts_as_identification() -> None:
    rules = _rules(run_qa(_with_text(load("zh_good"), 0, "您好，公号1024为您服务，请问有什么可以帮您？")))
    assert rules["self_identification"].passed
    assert rules["self_identification"].hits[0].text == "公号"


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("喂，你们好烦啊，说吧。", "greeting"),
        ("请先看一下公告，说吧。", "self_identification"),
        ("你们这个问题，我帮你看看。", "offer_help"),
    ],
)
def test_look_alikes_do_not_pass(text: str, rule: str) -> None:
    assert not _rules(run_qa(_with_text(load("zh_good"), 0, text)))[rule].passed


def test_near_miss_of_forbidden_phrase_is_not_a_violation() -> None:
    t = _with_text(load("zh_good"), 4, "我知道了，您听得懂吗？我再说一遍。")
    assert _rules(run_qa(t))["no_forbidden_phrases"].passed


def test_greeting_after_first_15_seconds_fails() -> None:
    t = load("zh_good")
    late = tuple(dataclasses.replace(u, start=u.start + 16, end=u.end + 16) for u in t.utterances)
    rules = _rules(run_qa(dataclasses.replace(t, utterances=late)))
    assert not rules["greeting"].passed
    assert rules["offer_help"].passed  # turn windows move with the call


def test_apology_is_not_applicable_without_a_complaint() -> None:
    t = _with_text(load("zh_good"), 1, "你好，我想问一下宽带什么时候到期。")
    result = run_qa(t)
    apology = _rules(result)["apology_on_complaint"]
    assert apology.passed and apology.points == 0.0 and apology.detail.startswith("not applicable")
    assert result.max_score == 65.0 and result.score == 65.0


def test_apology_must_follow_the_complaint() -> None:
    # the apology comes before the complaint: it does not answer it
    t = _with_text(load("zh_good"), 2, "我马上帮您查一下。")
    t = _with_text(t, 0, "您好，非常抱歉让您久等，我是工号1024，请问有什么可以帮您？")
    assert not _rules(run_qa(t))["apology_on_complaint"].passed


def test_low_confidence_deciding_words_send_the_call_to_review() -> None:
    result = run_qa(load("zh_lowconf"))
    assert result.score == result.max_score
    assert result.needs_review
    greeting, self_id = result.review_reasons
    assert greeting == "greeting: passed on low-confidence speech '您好' at 0.4s (p=0.31, utterance confidence 0.90)"
    assert self_id.startswith("self_identification: passed on low-confidence speech '工号' at 8.5s")
    assert "(utterance confidence 0.35)" in self_id
    hit = _rules(result)["greeting"].hits[0]
    assert (hit.start, hit.end, hit.low_confidence) == (0.4, 0.9, True)  # timed by its words
    assert not _rules(result)["offer_help"].hits[0].low_confidence


def test_confident_words_need_no_review() -> None:
    t = load("zh_lowconf")
    sure = []
    for u in t.utterances:
        words = tuple(dataclasses.replace(w, probability=0.9) for w in u.words)
        sure.append(dataclasses.replace(u, words=words, confidence=0.9))
    assert not run_qa(dataclasses.replace(t, utterances=tuple(sure))).needs_review


def test_transcript_without_roles_is_flagged() -> None:
    t = load("en_good")
    bare = tuple(dataclasses.replace(u, role=None, speaker=f"S{u.channel}") for u in t.utterances)
    result = run_qa(dataclasses.replace(t, utterances=bare))
    assert result.needs_review
    assert any("no agent/customer roles" in r for r in result.review_reasons)
    assert not _rules(result)["greeting"].passed


def test_language_picks_the_scorecard_and_result_round_trips() -> None:
    t = dataclasses.replace(load("en_good"), language=None)
    result = run_qa(t)
    assert result.scorecard == "en_default"
    assert run_qa(t, "zh_default").scorecard == "zh_default"
    back = QAResult.from_dict(json.loads(json.dumps(result.to_dict(), ensure_ascii=False)))
    assert back.rules == result.rules and back.score == result.score
    assert back.metrics["parties"]["agent"]["turns"] == 5
    assert back.sentiment["customer_trend"] in ("improved", "steady", "worsened")
