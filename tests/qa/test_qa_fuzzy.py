"""Phrase matching that survives ASR errors but does not match look-alikes."""

from __future__ import annotations

import pytest

from callscribe.qa.fuzzy import find, tokenize


@pytest.mark.parametrize(
    ("text", "phrase", "quoted"),
    [
        ("你好很高兴为你服务", "您好很高兴为您服务", "你好很高兴为你服务"),  # 您 -> 你 (nin/ni)
        ("您好很高性为您服务", "您好很高兴为您服务", "您好很高性为您服务"),  # homophone 兴/性
        ("喂，你好，很高兴为你服务！", "您好很高兴为您服务", "你好，很高兴为你服务"),  # punctuation in between
        ("我们公号是1024", "工号", "公号"),  # homophone 工/公
        ("Thank you for cooling Acme", "thank you for calling", "Thank you for cooling"),
        ("I dont know", "I don't know", "I dont know"),
    ],
)
def test_garbled_phrases_still_match(text: str, phrase: str, quoted: str) -> None:
    (m,) = find(text, phrase, fuzzy=True)
    assert m.text == quoted
    assert 0.8 <= m.similarity < 1.0


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("你们好烦", "您好"),
        ("请看一下公告", "工号"),
        ("我知道了", "不知道"),
        ("很高兴认识你", "很高兴为您服务"),
        ("感谢您", "感谢来电"),
        ("yellow", "hello"),
        ("there is an issue", "sue"),
    ],
)
def test_look_alikes_do_not_match(text: str, phrase: str) -> None:
    assert find(text, phrase, fuzzy=True) == []


def test_exact_mode_is_strict_and_finds_every_occurrence() -> None:
    assert find("你听得懂吗", "你听不懂吗") == []
    assert [m.begin for m in find("不知道，真不知道", "不知道")] == [0, 5]
    assert find("I'm sorry, so SORRY", "sorry")[1].text == "SORRY"


def test_tokens_keep_original_spans() -> None:
    toks = tokenize("您好，工号８８６６ Don’t")
    assert [t.text for t in toks] == ["您", "好", "工", "号", "8866", "don't"]
    assert [t.sound for t in toks[:4]] == ["nin", "hao", "gong", "hao"]
    assert (toks[4].begin, toks[4].end) == (5, 9)
