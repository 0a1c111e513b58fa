"""One Chinese script in the text, and glossary terms only where the audio supports them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from callscribe.engines.base import Clip, EngineResult, EngineSegment
from callscribe.engines.whisper import ZH_PROMPT, _strip_echo
from callscribe.model import Utterance, Word
from callscribe.terms import check_terms, support
from callscribe.text.glossary import Glossary
from callscribe.text.script import validate_script
from callscribe.utterances import build_utterances

TRADITIONAL = "吃燕窩就選燕之屋，我喜歡為您服務"


def _results(text: str, language: str) -> list[tuple[Clip, EngineResult]]:
    clip = Clip("c", 0, 1.0, np.zeros(16000, np.float32))
    seg = EngineSegment(0.0, 1.0, text, (Word("喜歡", 0.2, 0.5, 0.9),))
    return [(clip, EngineResult((seg,), language))]


def test_mandarin_comes_out_simplified_by_default_before_the_glossary_sees_it() -> None:
    glossary = Glossary((), (("燕之屋", "燕之屋品牌"),))
    built = build_utterances(_results(TRADITIONAL, "zh"), [], glossary, script="simplified", language=None)
    (u,) = built.utterances
    assert u.text == "吃燕窝就选燕之屋品牌，我喜欢为您服务"
    assert u.words[0].text == "喜欢"


@pytest.mark.parametrize(
    ("script", "language", "expected"), [("keep", "zh", TRADITIONAL), ("simplified", "en", TRADITIONAL)]
)
def test_keep_and_other_languages_are_left_alone(script: str, language: str, expected: str) -> None:
    built = build_utterances(_results(TRADITIONAL, language), [], Glossary(), script=script, language=None)
    assert built.utterances[0].text == expected


def test_traditional_on_request_and_bad_script_refused() -> None:
    built = build_utterances(_results("为您服务", "zh"), [], Glossary(), script="traditional", language=None)
    assert built.utterances[0].text == "為您服務"
    with pytest.raises(ValueError, match="zh-script"):
        validate_script("cantonese")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("以下是普通话, 滨海新区, 滨海新区。", ""),  # prompt echo followed by the glossary as a list
        ("以下是普通话的句子。", ""),
        ("以下普通话的句子。", ""),  # the prompt with a character missing
        ("。。。。。。", ""),
        ("以下是您的账单", "以下是您的账单"),
        ("以下是普通话我想问一下", "我想问一下"),
        ("滨海新区，宽带套餐", ""),  # the glossary read out as a list
        ("滨海新区", "滨海新区"),  # a lone term may be a real answer: the audio check decides
        ("我想问我在滨海新区有房", "我想问我在滨海新区有房"),
    ],
)
def test_whisper_prompt_and_glossary_echoes_are_stripped(text: str, expected: str) -> None:
    assert _strip_echo(text, ZH_PROMPT, ("滨海新区", "宽带套餐")) == expected


def _utt(text: str, start: float = 0.0) -> Utterance:
    return Utterance(start, start + 2.0, 0, text)


def _reread_with(answers: dict[str, str], asked: list[str]):
    def reread(us: Sequence[Utterance]) -> list[tuple[str, tuple[Word, ...]]]:
        asked.extend(u.text for u in us)
        return [(answers[u.text], ()) for u in us]

    return reread


def test_the_glossary_is_tried_only_where_the_unbiased_text_sounds_like_a_term() -> None:
    pytest.importorskip("pypinyin")
    glossary = Glossary(("滨海新区", "Northwind Broadband"))
    asked: list[str] = []
    utts = [_utt("我想问我在冰海星区有房"), _utt("Thank you for calling.", 3.0), _utt("我在滨海新区", 6.0)]
    reread = _reread_with({"我想问我在冰海星区有房": "我想问我在滨海新区有房"}, asked)
    checked = check_terms(utts, glossary, reread)
    assert asked == ["我想问我在冰海星区有房"], "no term in sight, no second decode"
    assert [u.text for u in checked.utterances] == ["我想问我在滨海新区有房", "Thank you for calling.", "我在滨海新区"]
    assert "glossary" in checked.utterances[0].flags
    assert [(h.term, h.start, h.support) for h in checked.hits] == [
        ("滨海新区", 0.0, "sounds-like"),
        ("滨海新区", 6.0, "unbiased"),
    ]
    assert checked.found == ("滨海新区",)


@pytest.mark.parametrize(
    ("biased", "why"),
    [
        ("我想问我在滨海新区有房，宽带套餐", "also holds 宽带套餐"),  # a term the audio never sounded like
        ("滨海新区", "says less"),  # the bias swallowed the rest of the sentence
    ],
)
def test_a_biased_reading_that_invents_or_deletes_is_not_used(biased: str, why: str) -> None:
    pytest.importorskip("pypinyin")
    glossary = Glossary(("滨海新区", "宽带套餐"))
    utt = _utt("我想问我在冰海星区有房")
    checked = check_terms([utt], glossary, _reread_with({utt.text: biased}, []))
    assert checked.utterances == [utt] and checked.hits == []
    assert any(why in n for n in checked.notes)


def test_support_through_corrections_and_fuzzy_latin_names() -> None:
    glossary = Glossary(("滨海新区", "Northwind Broadband"), (("冰台新区", "滨海新区"),))
    assert support("滨海新区", "我在冰台新区有房", glossary) == "unbiased"
    assert support("Northwind Broadband", "thank you for calling Norse Windblow", glossary) == "sounds-like"
    assert support("Northwind Broadband", "thank you for calling, have a nice day", glossary) is None
    assert support("滨海新区", "我想问一下", glossary) is None


def test_no_glossary_no_second_reading() -> None:
    def reread(us: Sequence[Utterance]) -> list[tuple[str, tuple[Word, ...]]]:
        raise AssertionError("must not be called")

    assert check_terms([_utt("滨海新区")], Glossary(), reread).hits == []


def test_fuzzy_pinyin_hears_front_and_back_nasals_alike() -> None:
    pytest.importorskip("pypinyin")
    glossary = Glossary(("滨海新区",))
    assert support("滨海新区", "我想问,我在冰海星区有房。", glossary) == "sounds-like"  # bing/bin, xing/xin
    assert support("滨海新区", "我想问一下我的账单", glossary) is None
