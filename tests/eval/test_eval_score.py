"""CER/WER/mixed error rate: equal to jiwer's own numbers on unnormalised text, corpus-level totals."""

from __future__ import annotations

from pathlib import Path

import jiwer
import pytest

from callscribe.eval.score import ErrorCounts, choose_metric, score_text, tokenize
from conftest import evalset_items

# What Whisper-base printed for evalset-dev files (stem -> hypothesis), unnormalised.
WHISPER_BASE = {
    "zh_aishell1_BAC009S0764W0121": "甚至出现交易几乎停制的情况",
    "zh_funasr_llamacpp_sample_hotline": "我想问我在冰海星区有房",
    "zh_cosyvoice_zero_shot_prompt": "洗澡你以后能够做的比我还好用",
    "zh_fireredtts2_podcast_S1": "可能是跟美国市场有什么样的可能说当然如果有机会"
    "能亲身去考察去了解一下当然是有更好的帮助",
    "en_timit_LDC93S1_8k": " She had a dark suit in greasy wash for her whole year.",
    "en_librispeech_1995-1837-0001": " It was the first great sorrow of his life. It was not so much the loss"
    " of the cotton itself, but the fantasy, the hopes, the dreams built around it.",
    "en_whisper_jfk": " And so my fellow Americans ask not what your country can do for you, ask what you can do"
    " for your country",
}


def _pairs(lang: str) -> list[tuple[str, str]]:
    rows = {Path(r["file"]).stem: r for r in evalset_items(lang)}
    pairs = [(rows[stem]["text"], hyp) for stem, hyp in WHISPER_BASE.items() if stem in rows]
    if not pairs:
        pytest.skip("../shared/evalset-dev is not present")
    return pairs


def test_cer_equals_jiwer_on_real_chinese_pairs() -> None:
    pairs = _pairs("zh")
    for ref, hyp in pairs:
        score = score_text(ref, hyp, "zh", normalize=False)
        assert score.metric == "cer"
        assert score.rate == pytest.approx(jiwer.cer(ref, hyp))
    refs, hyps = zip(*pairs, strict=True)
    total = ErrorCounts.total(score_text(r, h, "zh", normalize=False) for r, h in pairs)
    assert total.rate == pytest.approx(jiwer.cer(list(refs), list(hyps)))


def test_wer_equals_jiwer_on_real_english_pairs() -> None:
    pairs = _pairs("en")
    for ref, hyp in pairs:
        score = score_text(ref, hyp, "en", normalize=False)
        out = jiwer.process_words(ref, hyp)
        assert score.metric == "wer"
        assert score.rate == pytest.approx(jiwer.wer(ref, hyp))
        assert (score.hits, score.substitutions, score.deletions, score.insertions) == (
            out.hits,
            out.substitutions,
            out.deletions,
            out.insertions,
        )
    refs, hyps = zip(*pairs, strict=True)
    total = ErrorCounts.total(score_text(r, h, "en", normalize=False) for r, h in pairs)
    assert total.rate == pytest.approx(jiwer.wer(list(refs), list(hyps)))  # corpus level, not a mean


def test_total_is_not_an_average_of_ratios() -> None:
    short = score_text("换一首歌", "换一首", "zh")  # 1 error in 4
    long = score_text("甚至出现交易几乎停滞的情况", "甚至出现交易几乎停滞的情况", "zh")  # 0 in 13
    total = ErrorCounts.total([short, long])
    assert total.rate == pytest.approx(1 / 17)
    assert total.rate != pytest.approx((short.rate + long.rate) / 2)


def test_normalisation_lowers_the_error_on_real_pairs() -> None:
    for ref, hyp in _pairs("en") + _pairs("zh"):
        raw = score_text(ref, hyp, normalize=False)
        normed = score_text(ref, hyp)
        assert normed.errors <= raw.errors
    jfk = next(r["text"] for r in evalset_items("en") if "jfk" in r["file"])
    assert score_text(jfk, WHISPER_BASE["en_whisper_jfk"]).rate == 0.0  # only case and punctuation differed


def test_mixed_text_uses_characters_and_words() -> None:
    assert tokenize("我用iphone 15打了3个电话", "mer") == [
        "我",
        "用",
        "iphone",
        "1",
        "5",
        "打",
        "了",
        "3",
        "个",
        "电",
        "话",
    ]
    assert choose_metric("我用iPhone打电话") == "mer"
    score = score_text("我用iPhone 15打了三个电话", "我用 I phone 十六 打了3个电话", align=True)
    assert score.metric == "mer"
    assert score.ref_tokens == 11
    # "iphone" -> "i phone" is one substitution plus one insertion; 5 -> 6 one substitution.
    assert (score.substitutions, score.deletions, score.insertions) == (2, 0, 1)
    errors = [(op.op, op.ref, op.hyp) for op in score.alignment if op.op != "equal"]
    assert errors == [("insert", "", "i"), ("substitute", "iphone", "phone"), ("substitute", "5", "6")]


def test_metric_choice_and_tokens() -> None:
    assert choose_metric("换一首歌") == "cer"
    assert choose_metric("hello there") == "wer"
    assert choose_metric("2024", "zh") == "cer" and choose_metric("2024", "en") == "wer"
    assert tokenize("ab c", "cer") == ["a", "b", "c"]
    assert tokenize("in 1813", "wer") == ["in", "1813"]
    with pytest.raises(ValueError, match="unknown metric"):
        score_text("a", "a", metric="ser")


def test_empty_sides() -> None:
    nothing_said = score_text("", "hello there")
    assert (nothing_said.insertions, nothing_said.rate) == (2, None)
    nothing_heard = score_text("hello there", "")
    assert (nothing_heard.deletions, nothing_heard.rate) == (2, 1.0)


def test_alignment_chunks_come_from_jiwer() -> None:
    ref, hyp = (
        "She had your dark suit in greasy wash water all year.",
        " She had a dark suit in greasy wash for her whole year.",
    )
    score = score_text(ref, hyp, "en", align=True)
    out = jiwer.process_words(ref.lower().rstrip("."), hyp.lower().strip().rstrip("."))
    assert [op.op for op in score.alignment] == [c.type for c in out.alignments[0]]
    assert ("your", "a") in [(op.ref, op.hyp) for op in score.alignment if op.op == "substitute"]
    assert not score_text(ref, hyp, "en").alignment  # only on demand
