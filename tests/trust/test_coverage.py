"""No speech lost: the coverage check finds holes and thin segments, decodes them again, and flags what stays silent."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest

from callscribe import Pipeline, coverage
from callscribe.engines.base import Clip, EngineOptions, EngineResult, EngineSegment
from callscribe.model import Span
from conftest import EVALSET, evalset_items


def _clip(start: float, seconds: float, speech: Sequence[Span]) -> Clip:
    return Clip("c", 0, start, np.zeros(round(seconds * 16000), np.float32), speech=tuple(speech))


def _seg(start: float, end: float, text: str) -> EngineSegment:
    return EngineSegment(start, end, text)


def test_syllables_count_cjk_latin_and_digits() -> None:
    assert coverage.syllables("你好，世界") == 4
    assert coverage.syllables("hello there") == 3
    assert coverage.syllables("138 0012") == 7


def test_a_tail_without_text_is_a_hole() -> None:
    clip = _clip(10.0, 30.0, [Span(10.2, 18.0), Span(18.5, 39.8)])
    result = EngineResult((_seg(0.2, 20.0, "字" * 80),))
    redo = coverage.check(clip, result)
    assert redo is not None and not redo.thin
    assert [(round(h.start, 1), round(h.end, 1)) for h in redo.holes] == [(30.3, 39.8)]


def test_a_segment_with_too_little_text_for_its_speech_is_thin() -> None:
    clip = _clip(0.0, 22.0, [Span(0.3, 4.5), Span(5.0, 7.0), Span(7.5, 21.7)])
    result = EngineResult((_seg(0.5, 21.9, "甚至出现交易几乎停滞的情况"),))
    redo = coverage.check(clip, result)
    assert redo is not None and [i for i, _ in redo.thin] == [0]
    # Re-decoded one piece per stretch of speech, never merged back into one long window.
    assert [p for _, p, _ in coverage.pieces(redo)] == [
        Span(0.3, 4.5),
        Span(5.0, 7.0),
        Span(7.5, 14.6),
        Span(14.6, 21.7),
    ]


def test_well_covered_clip_needs_nothing() -> None:
    clip = _clip(0.0, 10.0, [Span(0.2, 9.8)])
    assert coverage.check(clip, EngineResult((_seg(0.1, 9.9, "字" * 40),))) is None


class _Truncating:
    """Stands in for a decoder that stops early on long clips and is right on short ones; ``mute`` hears nothing."""

    name = "truncating"

    def __init__(self, mute: bool = False) -> None:
        self.mute = mute
        self.calls: list[int] = []

    def describe(self) -> str:
        return self.name

    def transcribe(self, clips: Sequence[Clip], options: EngineOptions) -> list[EngineResult]:
        self.calls.append(len(clips))
        out = []
        for clip in clips:
            if clip.duration > 6.0:
                out.append(EngineResult((_seg(0.0, clip.duration, "one"),), "en"))
            elif self.mute and len(self.calls) > 1:
                out.append(EngineResult((), "en"))
            else:
                out.append(EngineResult((_seg(0.0, clip.duration, "word " * round(2 * clip.duration)),), "en"))
        return out


def test_pipeline_recovers_speech_a_long_clip_lost(examples_dir) -> None:
    engine = _Truncating()
    t = Pipeline({"speakers": 1, "language": "en"}, engine=engine).transcribe(examples_dir / "en_broadband_mono.mp3")
    assert len(engine.calls) >= 2, "the thin first reading must be decoded again"
    texts = [u for u in t.utterances if u.text]
    assert len(texts) > 3 and all("recovered" in u.flags for u in texts)
    assert not any("uncovered" in u.flags for u in t.utterances)
    speech_end = max(u.end for u in texts)
    assert speech_end > t.call.duration - 3.0


def test_speech_that_stays_silent_is_flagged_and_noted(examples_dir) -> None:
    t = Pipeline({"speakers": 1, "language": "en"}, engine=_Truncating(mute=True)).transcribe(
        examples_dir / "en_broadband_mono.mp3"
    )
    flagged = [u for u in t.utterances if "uncovered" in u.flags]
    assert flagged and all(u.text == "" and u.duration >= coverage.FLAG_MIN_S for u in flagged)
    assert any("flagged uncovered" in n for n in t.notes)
    assert any("uncovered" in u["flags"] for u in json.loads(t.to_json())["utterances"])
    from callscribe.outputs.writers import WRITERS
    from callscribe.qa import run_qa

    assert "[speech without text]" in WRITERS["txt"].render(t)
    qa = run_qa(t)
    assert qa.needs_review and any("without text" in r for r in qa.review_reasons)


@pytest.mark.evalset
def test_real_mandarin_call_keeps_every_utterance(evalset, tmp_path) -> None:
    """Ten real Mandarin utterances back to back: every one ends up under text (the whisper engine, one voice)."""
    import av
    import soxr

    rows = [r for r in evalset_items("zh", "ground_truth") if r["duration_s"] < 5]
    parts, refs, t = [np.zeros(4800, np.float32)], [], 0.3
    for row in (rows * 4)[:10]:
        with av.open(str(EVALSET / row["file"])) as c:
            s = c.streams.audio[0]
            x = np.concatenate([f.to_ndarray().reshape(-1, f.samples)[0].astype(np.float32) for f in c.decode(s)])
            rate = s.rate
        x = soxr.resample(x / (np.abs(x).max() + 1e-9) * 0.5, rate, 16000).astype(np.float32)
        refs.append(Span(t, t + len(x) / 16000))
        parts += [x, np.zeros(8000, np.float32)]
        t += len(x) / 16000 + 0.5
    audio = np.concatenate(parts)
    tr = Pipeline({"engine": "whisper", "language": "zh", "speakers": 1}).transcribe(audio, sample_rate=16000)
    spoken = [u for u in tr.utterances if u.text]
    for ref in refs:
        assert any(u.span.intersection(ref) > 0.3 * ref.duration for u in spoken), f"lost {ref}"
