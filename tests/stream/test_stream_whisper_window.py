"""The whisper engine's live mode: the encoder on the clip's length. As accurate as the 30 s window on evalset-dev
speech, never a loop, and only when asked for."""

from __future__ import annotations

from pathlib import Path

import pytest

from callscribe.engines import whisper_live
from callscribe.engines.base import Clip, EngineOptions
from callscribe.eval.calls import load_pieces
from callscribe.eval.score import score_text

pytestmark = [pytest.mark.evalset, pytest.mark.slow]
KEYS = ("aishell1_BAC009S0764W0121", "wenetspeech_TEST_NET_Y0000000000_-KTKHdZ2fb8_S00000", "whisper_jfk",
        "pocketsphinx_cards_005_numbers", "ljspeech_LJ002-0020_numbers", "fireredtts2_podcast_S1:bc")  # fmt: skip


def test_the_window_fits_the_clip() -> None:
    assert whisper_live.window_frames(150) == 500  # at least 5 s
    assert whisper_live.window_frames(450) == 600  # 4.5 s + 1 s margin, in whole seconds
    assert whisper_live.window_frames(1000) == 1100
    assert whisper_live.window_frames(2950) == 3000  # never past Whisper's own 30 s
    assert whisper_live.window_frames(0) == 500


def test_live_window_decodes_as_well_as_the_full_window(evalset: Path) -> None:
    from callscribe.engines.whisper import WhisperEngine

    engine = WhisperEngine(threads=2)
    pieces = load_pieces(evalset)
    errors = {"full": 0, "live": 0}
    tokens = 0
    for key in KEYS:
        p = pieces[key]
        clip = Clip("c", 0, 0.0, p.audio, "s", 0)
        for mode, extra in (("full", {}), ("live", {whisper_live.LIVE_WINDOW: True})):
            options = EngineOptions(language=p.lang, beam_size=5, timestamps="word", extra=extra)
            (result,) = engine.transcribe([clip], options)
            score = score_text(p.text, result.text, p.lang)
            errors[mode] += score.errors
            tokens += score.ref_tokens if mode == "live" else 0
            for seg in result.segments:
                assert 0.0 <= seg.start <= seg.end <= p.duration + 1e-3
                assert all(seg.start - 1e-3 <= w.start <= w.end <= seg.end + 1e-3 for w in seg.words)
            assert len(result.text) <= 3 * len(p.text) + 10, f"{mode} {key}: a loop reached the text {result.text!r}"
    assert errors["live"] <= errors["full"] + max(2, 0.03 * tokens), errors


def test_a_live_loop_is_flagged_not_retried_at_each_temperature(evalset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whisper's temperature fallback took 10-16 s on a 2 s turn here, with every live stream waiting: live, a clip
    that loops on every window keeps what did not loop and says ``repetition``; a batch clip still gets the retry."""
    from callscribe.engines import whisper as whisper_engine
    from callscribe.engines.whisper import WhisperEngine

    engine = WhisperEngine(threads=2)
    p = load_pieces(evalset)["whisper_jfk"]
    clip = Clip("c", 0, 0.0, p.audio, "s", 0)
    retried: list[float] = []
    monkeypatch.setattr(whisper_engine, "_looping", lambda seg: True)  # every decode "loops"
    monkeypatch.setattr(engine, "_retry", lambda c, *a: retried.append(c.duration) or whisper_engine.EngineResult(()))
    (live,) = engine.transcribe([clip], EngineOptions(language="en", extra={whisper_live.LIVE_WINDOW: True}))
    assert live.flags == ("repetition",) and live.segments == () and retried == []
    (batch,) = engine.transcribe([clip], EngineOptions(language="en"))
    assert retried == [clip.duration] and batch.segments == ()
