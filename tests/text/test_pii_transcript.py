"""PII in whole transcripts: numbers read across a pause, ID numbers and their check character, masks, words."""

from __future__ import annotations

import re

import pytest

from callscribe.model import CallInfo, Speaker, Transcript, Utterance, Word
from callscribe.text.pii import find_pii, redact_text, redact_transcript, validate_mask
from callscribe.text.pii_transcript import MAX_JOIN_GAP_S

_DIGITS = re.compile(r"[0-9零〇幺一二三四五六七八九两]")


def _call(*utterances: Utterance, language: str = "zh", speakers: tuple[Speaker, ...] = ()) -> Transcript:
    info = CallInfo(id="c1", path="c1.wav", sha256="0" * 64, duration=60.0, sample_rate=8000, channels=2)
    return Transcript(call=info, utterances=utterances, engine="test", language=language, speakers=speakers)


def _u(start: float, end: float, channel: int, text: str, speaker: str, words: tuple[Word, ...] = ()) -> Utterance:
    return Utterance(start, end, channel, text, speaker=speaker, words=words)


def test_a_number_split_by_a_pause_is_masked_in_both_utterances() -> None:
    t = _call(
        _u(1.0, 3.0, 0, "请提供手机号。", "agent"),
        _u(3.5, 5.0, 1, "一三八，零零一二，", "customer", (Word("一三八", 3.5, 4.0), Word("，零零一二，", 4.1, 5.0))),
        _u(5.2, 5.6, 0, "嗯", "agent"),  # the other party's backchannel in between does not break it
        _u(6.5, 7.5, 1, "嗯，三四五六。", "customer", (Word("嗯，", 6.5, 6.7), Word("三四五六。", 6.8, 7.5))),
    )
    assert find_pii(t.utterances[1].text) == [] and find_pii(t.utterances[3].text) == []  # neither half alone
    red, spans = redact_transcript(t)
    assert [u.text for u in red.utterances] == ["请提供手机号。", "[PHONE]，", "嗯", "嗯，[PHONE]。"]
    assert [w.text for w in red.utterances[1].words] == ["[PHONE]，"]
    assert [w.text for w in red.utterances[3].words] == ["嗯，", "[PHONE]。"]
    assert [(s.kind, s.channel, s.utterance) for s in spans] == [("PHONE", 1, 1), ("PHONE", 1, 3)]
    assert spans[1].start == pytest.approx(6.65) and spans[1].end == pytest.approx(7.5)


def test_written_number_across_three_utterances_of_one_speaker_on_a_mono_call() -> None:
    t = _call(
        _u(8.0, 10.0, 0, "my number is 138", "S2"),
        _u(10.2, 10.8, 0, "okay", "S1"),
        _u(11.0, 11.6, 0, "0012", "S2"),
        _u(12.5, 13.4, 0, "3456, thanks.", "S2"),
        language="en",
    )
    red, spans = redact_transcript(t)
    assert [u.text for u in red.utterances] == ["my number is [PHONE]", "okay", "[PHONE]", "[PHONE], thanks."]
    assert [s.utterance for s in spans] == [0, 2, 3]


def test_a_grouped_id_split_before_its_check_character() -> None:
    t = _call(_u(12.0, 14.0, 1, "身份证号 110105 19491231", "customer"), _u(15.0, 15.8, 1, "002X。", "customer"))
    red, spans = redact_transcript(t)
    assert [u.text for u in red.utterances] == ["身份证号 [ID]", "[ID]。"]
    assert {s.kind for s in spans} == {"ID"}


@pytest.mark.parametrize(
    ("second", "why"),
    [
        (_u(3.5, 4.5, 0, "零零一二三四五六", "agent"), "another party"),
        (_u(3.0 + MAX_JOIN_GAP_S + 0.5, 9.0, 1, "零零一二三四五六", "customer"), "too long a pause"),
        (_u(3.5, 4.5, 1, "好的，零零一二三四五六", "customer"), "words before the digits"),
    ],
)
def test_numbers_are_not_joined_across(second: Utterance, why: str) -> None:
    first = _u(1.0, 3.0, 1, "一三八", "customer")
    red, spans = redact_transcript(_call(first, second))
    assert red.utterances == (first, second), why
    assert spans == []


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("身份证 110105 19491231 002X", "110105 19491231 002X"),
        ("身份证号幺幺零幺零五幺九四九幺二三幺零零二叉", "幺幺零幺零五幺九四九幺二三幺零零二叉"),
        ("我的身份证是一一零一零五一九四九一二三一零零二艾克斯", "一一零一零五一九四九一二三一零零二艾克斯"),
        ("it is one one zero one zero five one nine four nine one two three one zero zero two x", None),
        ("11010519491231002x。", "11010519491231002x"),
    ],
)
def test_id_numbers_with_x_are_ids_whole(text: str, span: str | None) -> None:
    matches = find_pii(text)
    assert [(m.kind, m.verified) for m in matches] == [("ID", True)]
    if span is not None:
        assert matches[0].text == span
    assert not _DIGITS.search(redact_text(text).replace("[ID]", ""))


def test_an_id_misheard_by_one_digit_is_still_masked_but_not_verified() -> None:
    good, bad = "身份证号幺幺零幺零五幺九四九幺二三幺零零二叉", "身份证号幺幺零幺零五幺九四九幺二三幺零零二三"
    assert [(m.kind, m.verified) for m in find_pii(good)] == [("ID", True)]
    assert [(m.kind, m.verified, m.text) for m in find_pii(bad)] == [("ID", False, bad[4:])]
    # one digit dropped: 17 digits after an ID cue
    dropped = "身份证号码是四四零三零六一九八五零六一二三四一"
    assert [(m.kind, m.verified) for m in find_pii(dropped)] == [("ID", False)]
    assert redact_text(dropped) == "身份证号码是[ID]"
    # and a phone number with an extra digit is masked whole, not 11 of 12
    assert redact_text("我的号码是幺三八零零幺三八零零零零") == "我的号码是[PHONE]"


def test_kinds_are_labelled_by_what_the_number_is() -> None:
    text = "手机13800138000，身份证110105194912310021，卡号6222021234567894，另一张卡6222021234567895"
    got = [(m.kind, m.verified) for m in find_pii(text)]
    assert got == [("PHONE", True), ("ID", False), ("CARD", True), ("CARD", False)]


@pytest.mark.parametrize(
    "mask", ["{x}", "{", "}", "{}", "{0}", "{kind.upper}", "{kind[0]}", "{kind!z}", "{kind:d}", "[{kind}] {n}"]
)
def test_a_bad_mask_is_refused_up_front(mask: str) -> None:
    with pytest.raises(ValueError) as info:
        validate_mask(mask)
    message = str(info.value)
    assert "{kind}" in message and "\n" not in message and repr(mask) in message
    with pytest.raises(ValueError):
        redact_text("电话13912345678", mask=mask)
    with pytest.raises(ValueError):
        redact_transcript(_call(_u(0.0, 1.0, 0, "电话13912345678", "S1")), mask=mask)


@pytest.mark.parametrize("mask", ["[{kind}]", "***", "<{kind}>", "{{{kind}}}", "{kind!s}", "{kind:>6}", ""])
def test_good_masks_pass(mask: str) -> None:
    validate_mask(mask)
    assert "13912345678" not in redact_text("电话13912345678", mask=mask)


def test_words_that_cannot_be_placed_in_the_text_are_masked_by_time() -> None:
    # the text was rewritten after recognition (digits normalised), so the word no longer appears in it
    words = (Word("号码", 0.0, 0.5), Word("一三八 零零一三 八零零零", 0.6, 3.0), Word("谢谢", 3.2, 3.6))
    red, _ = redact_transcript(_call(_u(0.0, 3.6, 1, "号码13800138000谢谢", "customer", words)))
    assert red.utterances[0].text == "号码[PHONE]谢谢"
    assert [w.text for w in red.utterances[0].words] == ["号码", "[PHONE]", "谢谢"]


def test_speaker_evidence_quotes_are_redacted() -> None:
    speakers = (Speaker("S1", 1, "customer", 0.9, ('customer: "我的手机13800138000" at 3.0s',)),)
    red, _ = redact_transcript(_call(_u(3.0, 5.0, 1, "我的手机13800138000", "S1"), speakers=speakers))
    assert red.speakers[0].evidence == ('customer: "我的手机[PHONE]" at 3.0s',)
