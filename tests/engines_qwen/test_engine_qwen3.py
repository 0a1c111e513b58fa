"""The qwen3 engine on real speech, through a tiny random-weight Qwen3-ASR checkpoint loaded by the real code."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tiny_qwen import TinyQwen, build_tiny_qwen

from callscribe.audio import iter_clips, prepare
from callscribe.engines import base
from callscribe.engines.base import Clip, EngineError, EngineOptions
from callscribe.engines.qwen3 import Qwen3Engine
from callscribe.engines.qwen3_load import resolve_model
from callscribe.options import Options

SR = base.SAMPLE_RATE
SPEECH_FILES = (
    "audio/en_librispeech_1995-1837-0001.wav",
    "audio/zh_aishell1_BAC009S0764W0121.wav",
    "audio/en_whisper_jfk.flac",
    "audio/zh_fireredtts2_podcast_S1.flac",
    "audio/en_pocketsphinx_cards_005_numbers.wav",
)
# Random weights always run to the output budget; a small budget keeps the tests quick on two cores.
QUICK = {"recover": False, "tokens_per_second": 2, "token_margin": 4}


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory: pytest.TempPathFactory) -> TinyQwen:
    return build_tiny_qwen(tmp_path_factory.mktemp("tiny-qwen3"))


@pytest.fixture(scope="module")
def engine(tiny_qwen: TinyQwen) -> Qwen3Engine:
    made = base.create("qwen3", model=str(tiny_qwen.asr), aligner=str(tiny_qwen.aligner), batch_size=4)
    assert isinstance(made, Qwen3Engine)
    return made


@pytest.fixture(scope="module")
def speech_clips(evalset: Path) -> list[Clip]:
    """Clips cut from real recordings by the pipeline's own decoder, VAD and clip cutter."""
    clips: list[Clip] = []
    for name in SPEECH_FILES:
        with prepare(evalset / name, Options()) as prepared:
            clips += list(iter_clips(prepared.audio, prepared.speech, call_id=Path(name).stem))
    assert len(clips) >= 5
    return clips


class PrefillSpy:
    """Counts what reaches the real decoder: one prefill (prompt pass) per generate() batch."""

    def __init__(self, engine: Qwen3Engine) -> None:
        self.engine = engine
        self.batches: list[int] = []
        self.prompts: list[str] = []
        self.audio_frames: list[int] = []
        thinker = engine.asr.model.thinker
        self._hooks = [
            thinker.register_forward_pre_hook(self._thinker, with_kwargs=True),
            thinker.audio_tower.register_forward_pre_hook(self._audio, with_kwargs=True),
        ]

    def _thinker(self, _module: Any, _args: Any, kwargs: dict[str, Any]) -> None:
        if kwargs.get("input_features") is not None:  # the prompt pass of a generate() call
            ids = kwargs["input_ids"]
            self.batches.append(int(ids.shape[0]))
            tokenizer = self.engine.asr.processor.tokenizer
            self.prompts += [tokenizer.decode(row, skip_special_tokens=False) for row in ids.tolist()]

    def _audio(self, _module: Any, _args: Any, kwargs: dict[str, Any]) -> None:
        self.audio_frames.append(int(kwargs["feature_lens"].sum()))

    def __enter__(self) -> PrefillSpy:
        return self

    def __exit__(self, *_: object) -> None:
        for hook in self._hooks:
            hook.remove()


def test_registry_finds_the_tiny_model_without_loading_it(tiny_qwen: TinyQwen, tmp_path: Path) -> None:
    assert "qwen3" in base.names()
    ok, why = base.availability("qwen3", model=str(tiny_qwen.asr))
    assert ok and str(tiny_qwen.asr) in why
    ok, why = base.availability("qwen3", model="nobody/not-a-model")
    assert not ok and "nobody/not-a-model" in why
    (tmp_path / "config.json").write_text('{"model_type": "whisper"}')
    ok, _ = base.availability("qwen3", model=str(tmp_path))
    assert not ok, "a folder holding another kind of model is not a Qwen3-ASR model"


def test_bad_model_sources_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=r"no config\.json"):
        base.create("qwen3", model=str(tmp_path))
    with pytest.raises(EngineError, match="unknown hub"):
        resolve_model("Qwen/Qwen3-ASR-0.6B", hub="elsewhere")
    if importlib.util.find_spec("modelscope") is None:
        with pytest.raises(EngineError, match="pip install modelscope"):
            resolve_model("Qwen/Qwen3-ASR-0.6B", hub="modelscope")


@pytest.mark.evalset
def test_real_speech_is_batched_longest_first(engine: Qwen3Engine, speech_clips: list[Clip]) -> None:
    options = EngineOptions(batch_size=3, extra=QUICK)
    with PrefillSpy(engine) as spy:
        results = engine.transcribe(speech_clips, options)
    n = len(speech_clips)
    assert len(results) == n
    assert spy.batches == [3] * (n // 3) + ([n % 3] if n % 3 else [])
    assert spy.audio_frames == sorted(spy.audio_frames, reverse=True), "clips go longest first"
    for clip, result in zip(speech_clips, results, strict=True):
        assert result.segments, "random weights still write text"
        for seg in result.segments:
            assert 0.0 <= seg.start <= seg.end <= clip.duration + 1e-6
            assert seg.text and 0.0 < (seg.confidence or 0.0) <= 1.0
        # Random weights never emit end-of-text, so every output runs into its budget and is flagged.
        assert "truncated" in result.flags
    assert engine.stats.audio_s > 0 and engine.stats.generate_s > 0


@pytest.mark.evalset
def test_output_budget_follows_the_clip_length(engine: Qwen3Engine, speech_clips: list[Clip]) -> None:
    clip = max(speech_clips, key=lambda c: c.duration)
    before = engine.stats.new_tokens
    engine.transcribe([clip], EngineOptions(extra={"recover": False, "tokens_per_second": 2, "token_margin": 1}))
    assert engine.stats.new_tokens - before == int(np.ceil(clip.duration * 2)) + 1


@pytest.mark.evalset
def test_hotwords_and_forced_language_reach_the_prompt(engine: Qwen3Engine, speech_clips: list[Clip]) -> None:
    clips = speech_clips[:2]
    options = EngineOptions(language="en", hotwords=("Acme Bank", "chargeback"), extra=QUICK)
    with PrefillSpy(engine) as spy:
        results = engine.transcribe(clips, options)
    assert len(spy.prompts) == 2
    for prompt in spy.prompts:
        system = prompt.split("<|im_start|>user")[0]
        assert "Acme Bank, chargeback" in system
        assert prompt.endswith("<|im_start|>assistant\nlanguage English<asr_text>")
    assert [r.language for r in results] == ["en", "en"]

    with PrefillSpy(engine) as spy:
        detected = engine.transcribe(clips[:1], EngineOptions(extra=QUICK))
    assert spy.prompts[0].endswith("<|im_start|>assistant\n"), "no language forced: the model writes the tag"
    assert detected[0].language is None, "random output carries no language tag"


def test_unsupported_language_is_refused(engine: Qwen3Engine) -> None:
    clip = Clip("c", 0, 0.0, np.zeros(SR, dtype=np.float32))
    with pytest.raises(EngineError, match="'xx' is not supported"):
        engine.transcribe([clip], EngineOptions(language="xx"))


@pytest.mark.evalset
def test_runaway_output_is_split_then_retried_with_a_penalty(engine: Qwen3Engine, evalset: Path) -> None:
    import soundfile as sf

    speech, sr = sf.read(evalset / SPEECH_FILES[0], dtype="float32")
    assert sr == SR
    long_clip = Clip("call", 0, 0.0, speech)  # 8.7 s: long enough to split
    short_clip = Clip("call", 1, 0.0, speech[: SR * 3 // 2])  # 1.5 s: too short, gets the penalty retry
    with PrefillSpy(engine) as spy:
        results = engine.transcribe([long_clip, short_clip], EngineOptions(extra=dict(QUICK, recover=True)))
    # first pass (2 clips), the two halves of the long clip, then one penalty pass over what is still bad
    assert spy.batches == [2, 2, 3]
    long_result, short_result = results
    assert long_result.flags[:1] == ("truncated",)
    assert {"split-retry", "penalty-retry", "unresolved"} <= set(long_result.flags)
    assert "split-retry" not in short_result.flags and "penalty-retry" in short_result.flags
    first, second = long_result.segments
    assert first.start == 0.0 and first.end == second.start
    assert 0.25 * long_clip.duration <= second.start <= 0.75 * long_clip.duration
    assert second.end == pytest.approx(long_clip.duration, abs=1e-3)


@pytest.mark.evalset
def test_word_timestamps_from_the_forced_aligner(engine: Qwen3Engine, speech_clips: list[Clip]) -> None:
    clips = speech_clips[:3]
    results = engine.transcribe(clips, EngineOptions(timestamps="word", extra=QUICK))
    for clip, result in zip(clips, results, strict=True):
        words = [w for seg in result.segments for w in seg.words]
        assert words, "every segment with text gets aligned words"
        assert [w.start for w in words] == sorted(w.start for w in words)
        for w in words:
            assert 0.0 <= w.start <= w.end <= clip.duration + 1e-6 and w.text
        for seg in result.segments:
            assert seg.start <= seg.words[0].start and seg.words[-1].end <= seg.end
    assert engine.stats.align_s > 0


def test_short_and_empty_clips(engine: Qwen3Engine) -> None:
    tone = (0.1 * np.sin(2 * np.pi * 440 * np.arange(SR // 10) / SR)).astype(np.float32)
    results = engine.transcribe(
        [Clip("c", 0, 0.0, tone), Clip("c", 0, 1.0, np.zeros(0, dtype=np.float32))],
        EngineOptions(extra=QUICK),
    )
    assert len(results) == 2
    assert all(0.0 <= s.start <= s.end <= 0.1 + 1e-6 for s in results[0].segments)
    assert results[1].segments == () and results[1].flags == ()
