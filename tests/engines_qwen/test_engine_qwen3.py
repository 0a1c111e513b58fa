"""The qwen3 engine on real speech, through a tiny random-weight Qwen3-ASR checkpoint loaded by the real code."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from callscribe.engines import base
from callscribe.engines.base import Clip, EngineError, EngineOptions
from callscribe.engines.qwen3_load import HF, QWEN_ASR, library_available, resolve_model

if not library_available(QWEN_ASR):
    pytest.skip("qwen-asr is not installed here (needs callscribe[qwen])", allow_module_level=True)

from qwen3_checks import (
    QUICK,
    SPEECH_FILES,
    PrefillSpy,
    assert_batched_matches_alone,
    assert_nan_rows_are_heard_alone,
    assert_penalty_spares_the_prompt,
    assert_structure,
    mixed_lengths,
    speech_clips,
)
from tiny_qwen import TinyQwen, build_tiny_qwen

from callscribe.engines.qwen3 import Qwen3Engine
from callscribe.engines.qwen3_batch import auto_batch_size

SR = base.SAMPLE_RATE


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory: pytest.TempPathFactory) -> TinyQwen:
    return build_tiny_qwen(tmp_path_factory.mktemp("tiny-qwen3"))


@pytest.fixture(scope="module")
def engine(tiny_qwen: TinyQwen) -> Qwen3Engine:
    made = base.create("qwen3", model=str(tiny_qwen.asr), aligner=str(tiny_qwen.aligner), batch_size=4)
    assert isinstance(made, Qwen3Engine)
    return made


@pytest.fixture(scope="module")
def speech_clips_(evalset: Path) -> list[Clip]:
    clips = speech_clips(evalset)
    assert len(clips) >= 5
    return clips


def test_registry_finds_the_tiny_model_without_loading_it(tiny_qwen: TinyQwen, tmp_path: Path) -> None:
    assert "qwen3" in base.names()
    ok, why = base.availability("qwen3", model=str(tiny_qwen.asr))
    assert ok and str(tiny_qwen.asr) in why
    ok, why = base.availability("qwen3", model="nobody/not-a-model")
    assert not ok and "nobody/not-a-model" in why
    (tmp_path / "config.json").write_text('{"model_type": "whisper"}')
    ok, _ = base.availability("qwen3", model=str(tmp_path))
    assert not ok, "a folder holding another kind of model is not a Qwen3-ASR model"


def test_the_qwen_asr_layout_is_found_and_loaded_by_qwen_asr(tiny_qwen: TinyQwen, engine: Qwen3Engine) -> None:
    assert "thinker_config" in json.loads((tiny_qwen.asr / "config.json").read_text())
    ok, why = base.availability("qwen3", model=str(tiny_qwen.asr))
    assert ok and "qwen-asr layout" in why
    assert engine.layout == QWEN_ASR and type(engine.backend).__name__ == "QwenAsrBackend"
    assert engine.asr.model is engine.backend.model


def test_batch_size_zero_picks_one_for_the_device(tiny_qwen: TinyQwen) -> None:
    made = base.create("qwen3", model=str(tiny_qwen.asr), device="cpu", batch_size=0)
    assert isinstance(made, Qwen3Engine) and made.batch_size == 4  # CPU: small batches
    # On CUDA the size comes from the loaded model's config; the sizing reads this layout's config (80 GB free).
    rows = auto_batch_size(made.batch_config(), "cuda:0", made.budget(30.0, {}), 30.0, free_bytes=80 << 30)
    assert 8 <= rows <= 128


def test_an_hf_folder_needs_the_other_extra(tmp_path: Path) -> None:
    config = {"model_type": "qwen3_asr", "audio_config": {"d_model": 64}, "text_config": {"hidden_size": 64}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    if library_available(HF):
        pytest.skip("transformers here has Qwen3-ASR too")
    with pytest.raises(EngineError, match=r"hf layout.*callscribe\[qwen-hf\]'"):
        base.create("qwen3", model=str(tmp_path))


@pytest.mark.evalset
def test_a_mixed_length_batch_gives_each_clip_what_it_gets_alone(
    engine: Qwen3Engine, speech_clips_: list[Clip]
) -> None:
    assert_batched_matches_alone(engine, mixed_lengths(speech_clips_))


def test_bad_model_sources_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=r"no config\.json"):
        base.create("qwen3", model=str(tmp_path))
    with pytest.raises(EngineError, match="unknown hub"):
        resolve_model("Qwen/Qwen3-ASR-0.6B", hub="elsewhere")
    if importlib.util.find_spec("modelscope") is None:
        with pytest.raises(EngineError, match="pip install modelscope"):
            resolve_model("Qwen/Qwen3-ASR-0.6B", hub="modelscope")


@pytest.mark.evalset
def test_real_speech_is_batched_longest_first(engine: Qwen3Engine, speech_clips_: list[Clip]) -> None:
    options = EngineOptions(batch_size=3, extra=QUICK)
    with PrefillSpy(engine) as spy:
        results = engine.transcribe(speech_clips_, options)
    n = len(speech_clips_)
    assert spy.batches == [3] * (n // 3) + ([n % 3] if n % 3 else [])
    assert spy.audio_frames == sorted(spy.audio_frames, reverse=True), "clips go longest first"
    assert_structure(speech_clips_, results)
    assert engine.stats.audio_s > 0 and engine.stats.generate_s > 0


@pytest.mark.evalset
def test_output_budget_follows_the_clip_length(engine: Qwen3Engine, speech_clips_: list[Clip]) -> None:
    clip = max(speech_clips_, key=lambda c: c.duration)
    before = engine.stats.new_tokens
    engine.transcribe([clip], EngineOptions(extra={"recover": False, "tokens_per_second": 2, "token_margin": 1}))
    assert engine.stats.new_tokens - before == int(np.ceil(clip.duration * 2)) + 1


@pytest.mark.evalset
def test_hotwords_and_forced_language_reach_the_prompt(engine: Qwen3Engine, speech_clips_: list[Clip]) -> None:
    clips = speech_clips_[:2]
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
def test_word_timestamps_from_the_forced_aligner(engine: Qwen3Engine, speech_clips_: list[Clip]) -> None:
    clips = speech_clips_[:3]
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


@pytest.mark.evalset
def test_the_penalty_retry_spares_the_hotwords_in_the_prompt(
    engine: Qwen3Engine, evalset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import soundfile as sf

    speech, _ = sf.read(evalset / SPEECH_FILES[0], dtype="float32")
    assert_penalty_spares_the_prompt(engine, Clip("call", 0, 0.0, speech[: SR * 3 // 2]), monkeypatch)


@pytest.mark.evalset
def test_a_row_whose_logits_turn_nan_is_heard_again_alone(engine: Qwen3Engine, speech_clips_: list[Clip]) -> None:
    assert_nan_rows_are_heard_alone(engine, speech_clips_)
