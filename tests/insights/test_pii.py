"""PII detection and redaction: measured on hand-written lists, on transcripts with word times, and on audio."""

from __future__ import annotations

import logging
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from callscribe.model import CallInfo, Transcript, Utterance, Word
from callscribe.text.pii import PiiSpan, find_pii, redact_audio, redact_text, redact_transcript

DATA = Path(__file__).parent / "data"
log = logging.getLogger("callscribe")


def _positives() -> list[tuple[str, str, str]]:
    rows = []
    for line in (DATA / "pii_positive.tsv").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            kind, text, span = line.split("\t")
            rows.append((kind, text, span))
    return rows


def _negatives() -> list[str]:
    lines = (DATA / "pii_negative.txt").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_lists_are_big_enough() -> None:
    assert len(_positives()) >= 50
    assert len(_negatives()) >= 50


def test_precision_and_recall_on_the_lists() -> None:
    true_pos = false_pos = 0
    missed: list[str] = []
    spurious: list[str] = []
    for kind, text, span in _positives():
        matches = find_pii(text)
        hits = [m for m in matches if m.kind == kind and m.text == span]
        if hits:
            true_pos += 1
        else:
            missed.append(f"{kind}: {text} -> {matches}")
        # a second real number in the same line ("... 和 139...") is a true find, not a false one
        others = [m for m in matches if m not in hits and m.kind != kind]
        false_pos += len(others)
        spurious += [f"{text} -> {m}" for m in others]
    for text in _negatives():
        matches = find_pii(text)
        false_pos += len(matches)
        spurious += [f"{text} -> {m}" for m in matches]
    precision = true_pos / max(true_pos + false_pos, 1)
    recall = true_pos / len(_positives())
    log.info("PII precision %.3f recall %.3f", precision, recall)
    assert recall >= 0.95, missed
    assert precision >= 0.95, spurious


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("请拨打 138 0013 8000 或发邮件到 a.b@qq.com", "请拨打 [PHONE] 或发邮件到 [EMAIL]"),
        ("身份证11010519491231002X，卡号6222021234567894", "身份证[ID]，卡号[CARD]"),
        ("订单号13800138000，金额1380元", "订单号13800138000，金额1380元"),
        ("call five five five one two three four five six seven today", "call [PHONE] today"),
    ],
)
def test_redact_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_custom_mask_and_kinds() -> None:
    assert redact_text("电话13912345678", mask="<{kind}>") == "电话<PHONE>"
    assert redact_text("电话13912345678", mask="***") == "电话***"
    assert [m.kind for m in find_pii("13912345678 6222021234567894 x@y.cn")] == ["PHONE", "CARD", "EMAIL"]


def test_language_hint_keeps_american_formats_out_of_chinese() -> None:
    assert find_pii("555-0134", language="zh") == []
    assert [m.kind for m in find_pii("555-0134", language="en")] == ["PHONE"]


def _call(utterances: tuple[Utterance, ...]) -> Transcript:
    info = CallInfo(id="c1", path="c1.wav", sha256="0" * 64, duration=20.0, sample_rate=8000, channels=2)
    return Transcript(call=info, utterances=utterances, engine="test", language="zh")


def test_redact_transcript_words_and_times() -> None:
    zh_words = (
        Word("我的", 2.0, 2.3, 0.9),
        Word("手机号", 2.3, 2.8, 0.9),
        Word("是", 2.8, 2.9, 0.9),
        Word("幺三八", 3.0, 3.6, 0.8),
        Word("零零幺三", 3.7, 4.4, 0.7),
        Word("八零零零", 4.5, 5.2, 0.9),
        Word("谢谢", 5.4, 5.8, 0.9),
    )
    en_words = tuple(
        Word(w, 10.0 + 0.4 * k, 10.35 + 0.4 * k, 0.95)
        for k, w in enumerate(["it's", "john", "dot", "smith", "at", "gmail", "dot", "com", "okay"])
    )
    t = _call(
        (
            Utterance(2.0, 5.8, 1, "我的手机号是幺三八零零幺三八零零零谢谢", role="customer", words=zh_words),
            Utterance(6.0, 8.0, 0, "好的我帮您查一下", role="agent"),
            Utterance(10.0, 13.6, 1, "it's john dot smith at gmail dot com okay", role="customer", words=en_words),
        )
    )
    red, spans = redact_transcript(t)
    assert red.utterances[0].text == "我的手机号是[PHONE]谢谢"
    assert [w.text for w in red.utterances[0].words] == ["我的", "手机号", "是", "[PHONE]", "谢谢"]
    merged = red.utterances[0].words[3]
    assert (merged.start, merged.end, merged.probability) == (3.0, 5.2, 0.7)
    assert red.utterances[1] is t.utterances[1]
    assert red.utterances[2].text == "it's [EMAIL] okay"
    assert [w.text for w in red.utterances[2].words] == ["it's", "[EMAIL]", "okay"]
    assert [(s.kind, s.channel, s.utterance) for s in spans] == [("PHONE", 1, 0), ("EMAIL", 1, 2)]
    assert spans[0].start == pytest.approx(2.85) and spans[0].end == pytest.approx(5.35)
    assert spans[1].start == pytest.approx(10.25) and spans[1].end == pytest.approx(13.3)
    # the original is untouched (frozen dataclasses)
    assert "幺三八" in t.utterances[0].text


def test_redact_transcript_without_words_estimates_time() -> None:
    text = "号码是13800138000"
    t = _call((Utterance(0.0, 7.0, 0, text, role="customer"),))
    red, spans = redact_transcript(t)
    assert red.utterances[0].text == "号码是[PHONE]"
    assert red.utterances[0].words == ()
    assert len(spans) == 1
    assert 1.0 < spans[0].start < 1.6 and spans[0].end == pytest.approx(7.0)


def _decode(path: Path) -> tuple[np.ndarray, int]:
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        resampler = av.AudioResampler(format="s16", layout=stream.codec_context.layout, rate=stream.rate)
        blocks = [b.to_ndarray() for f in c.decode(stream) for b in resampler.resample(f)]
        channels = stream.codec_context.layout.nb_channels
        return np.concatenate(blocks, axis=1).reshape(-1, channels), stream.rate


def _tone_share(x: np.ndarray, rate: int, hz: float = 1000.0) -> float:
    """Share of the signal's energy within 20 Hz of ``hz``."""
    spectrum = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1.0 / rate)
    return float(spectrum[np.abs(freqs - hz) < 20].sum() / max(spectrum.sum(), 1e-9))


def test_redact_audio_puts_a_tone_over_the_span(evalset: Path, tmp_path: Path) -> None:
    source = evalset / "audio" / "en_whisper_jfk.flac"
    out = tmp_path / "jfk.redacted.wav"
    redact_audio(source, [PiiSpan(1.0, 2.0, "PHONE"), PiiSpan(5.0, 6.5, "CARD")], out)
    original, rate = _decode(source)
    redacted, out_rate = _decode(out)
    assert out_rate == rate and redacted.shape == original.shape
    inside = redacted[int(1.05 * rate) : int(1.95 * rate), 0]
    assert _tone_share(inside, rate) > 0.95
    assert _tone_share(original[int(1.05 * rate) : int(1.95 * rate), 0], rate) < 0.2  # it was speech before
    # outside the spans the samples are the original ones
    assert np.array_equal(redacted[: int(0.99 * rate)], original[: int(0.99 * rate)])
    assert np.array_equal(redacted[int(2.01 * rate) : int(4.99 * rate)], original[int(2.01 * rate) : int(4.99 * rate)])
    with wave.open(str(out)) as w:
        assert w.getsampwidth() == 2


def test_redact_audio_refuses_bad_input(tmp_path: Path) -> None:
    wav = tmp_path / "call.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes((np.random.default_rng(0).normal(0, 3000, 8000)).astype(np.int16).tobytes())
    with pytest.raises(ValueError, match="refusing to overwrite"):
        redact_audio(wav, [PiiSpan(0.1, 0.2, "PHONE")], wav)
    bad = tmp_path / "notaudio.wav"
    bad.write_text("hello")
    with pytest.raises(ValueError, match=r"notaudio\.wav"):
        redact_audio(bad, [], tmp_path / "out.wav")
    with pytest.raises(FileNotFoundError, match=r"missing\.wav"):
        redact_audio(tmp_path / "missing.wav", [], tmp_path / "out.wav")
    assert not (tmp_path / "out.wav").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["call.wav", "notaudio.wav"]
