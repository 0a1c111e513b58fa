"""The qwen3 engine on the transformers-native (``-hf``) Qwen3-ASR layout, through a tiny random-weight checkpoint
built with transformers' own classes and loaded by the real code. Runs in the ``.venv-hf`` environment
(transformers >= 5.13); skips where transformers lacks Qwen3-ASR (the qwen-asr environment)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from callscribe.engines import base
from callscribe.engines.base import SAMPLE_RATE, Clip, EngineError, EngineOptions
from callscribe.engines.qwen3_load import HF, QWEN_ASR, library_available

if not library_available(HF):
    pytest.skip("transformers here has no Qwen3-ASR (needs callscribe[qwen-hf])", allow_module_level=True)

from qwen3_checks import (
    QUICK,
    PrefillSpy,
    assert_batched_matches_alone,
    assert_nan_rows_are_heard_alone,
    assert_penalty_spares_the_prompt,
    assert_structure,
    mixed_lengths,
    speech_clips,
)
from tiny_qwen import TinyQwen
from tiny_qwen_hf import build_tiny_qwen_hf

from callscribe.engines.qwen3 import Qwen3Engine
from callscribe.engines.qwen3_batch import auto_batch_size


@pytest.fixture(scope="session")
def tiny_hf(tmp_path_factory: pytest.TempPathFactory) -> TinyQwen:
    return build_tiny_qwen_hf(tmp_path_factory.mktemp("tiny-qwen3-hf"))


@pytest.fixture(scope="module")
def engine(tiny_hf: TinyQwen) -> Qwen3Engine:
    made = base.create("qwen3", model=str(tiny_hf.asr), aligner=str(tiny_hf.aligner), batch_size=4)
    assert isinstance(made, Qwen3Engine)
    return made


@pytest.fixture(scope="module")
def clips(evalset: Path) -> list[Clip]:
    found = speech_clips(evalset)
    assert len(found) >= 5
    return found


def test_the_hf_layout_is_found_and_loaded_by_transformers(tiny_hf: TinyQwen, engine: Qwen3Engine) -> None:
    config = json.loads((tiny_hf.asr / "config.json").read_text())
    assert config["model_type"] == "qwen3_asr" and "thinker_config" not in config
    ok, why = base.availability("qwen3", model=str(tiny_hf.asr))
    assert ok and "hf layout" in why
    assert engine.layout == HF and type(engine.backend).__name__ == "HfBackend"
    assert engine.backend.eos_ids and engine.batch_size == 4
    with pytest.raises(AttributeError, match=r"use \.backend"):
        _ = engine.asr


def test_batch_size_zero_picks_one_for_the_device(tiny_hf: TinyQwen) -> None:
    made = base.create("qwen3", model=str(tiny_hf.asr), device="cpu", batch_size=0)
    assert isinstance(made, Qwen3Engine) and made.batch_size == 4  # CPU: small batches
    # On CUDA the size comes from the loaded model's config; the sizing reads this layout's config (80 GB free).
    rows = auto_batch_size(made.batch_config(), "cuda:0", made.budget(30.0, {}), 30.0, free_bytes=80 << 30)
    assert 8 <= rows <= 128


def test_a_qwen_asr_folder_needs_the_other_extra(tmp_path: Path) -> None:
    config = {"model_type": "qwen3_asr", "thinker_config": {"audio_config": {}, "text_config": {}}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    if library_available(QWEN_ASR):
        pytest.skip("qwen-asr is installed here too")
    with pytest.raises(EngineError, match=r"qwen-asr layout.*callscribe\[qwen\]'"):
        base.create("qwen3", model=str(tmp_path))


@pytest.mark.evalset
def test_real_speech_in_batches_longest_first(engine: Qwen3Engine, clips: list[Clip]) -> None:
    with PrefillSpy(engine) as spy:
        results = engine.transcribe(clips, EngineOptions(batch_size=3, extra=QUICK))
    n = len(clips)
    assert spy.batches == [3] * (n // 3) + ([n % 3] if n % 3 else [])
    assert spy.audio_frames == sorted(spy.audio_frames, reverse=True), "clips go longest first"
    assert_structure(clips, results)
    assert all(r.language is None for r in results), "random output carries no language tag"
    assert engine.stats.audio_s > 0 and engine.stats.generate_s > 0


@pytest.mark.evalset
def test_hotwords_and_forced_language_reach_the_prompt(engine: Qwen3Engine, clips: list[Clip]) -> None:
    options = EngineOptions(language="zh", hotwords=("Acme Bank", "chargeback"), extra=QUICK)
    with PrefillSpy(engine) as spy:
        results = engine.transcribe(clips[:2], options)
    assert len(spy.prompts) == 2
    for prompt in spy.prompts:
        assert "<|im_start|>system\nAcme Bank, chargeback<|im_end|>" in prompt
        assert prompt.endswith("<|im_end|>\n<|im_start|>assistant\nlanguage Chinese<asr_text>")
    assert [r.language for r in results] == ["zh", "zh"]


@pytest.mark.evalset
def test_a_mixed_length_batch_gives_each_clip_what_it_gets_alone(engine: Qwen3Engine, clips: list[Clip]) -> None:
    assert_batched_matches_alone(engine, mixed_lengths(clips))


@pytest.mark.evalset
def test_runaway_output_is_split_then_retried(engine: Qwen3Engine, clips: list[Clip]) -> None:
    long_clip = max(clips, key=lambda c: c.duration)
    short_clip = Clip("c", 1, 0.0, long_clip.audio[: SAMPLE_RATE * 3 // 2])
    with PrefillSpy(engine) as spy:
        long_result, short_result = engine.transcribe(
            [long_clip, short_clip], EngineOptions(extra=dict(QUICK, recover=True))
        )
    assert spy.batches == [2, 2, 3]  # both clips, the long clip's halves, then the penalty pass
    assert {"truncated", "split-retry", "penalty-retry", "unresolved"} <= set(long_result.flags)
    assert "split-retry" not in short_result.flags and "penalty-retry" in short_result.flags
    first, second = long_result.segments
    assert first.start == 0.0 and first.end == second.start
    assert second.end == pytest.approx(long_clip.duration, abs=1e-3)


@pytest.mark.evalset
def test_the_penalty_retry_spares_the_hotwords_in_the_prompt(
    engine: Qwen3Engine, clips: list[Clip], monkeypatch: pytest.MonkeyPatch
) -> None:
    long_clip = max(clips, key=lambda c: c.duration)
    assert_penalty_spares_the_prompt(engine, Clip("c", 0, 0.0, long_clip.audio[: SAMPLE_RATE * 3 // 2]), monkeypatch)


@pytest.mark.evalset
def test_word_times_from_the_hf_forced_aligner(engine: Qwen3Engine, clips: list[Clip]) -> None:
    results = engine.transcribe(clips[:3], EngineOptions(timestamps="word", extra=QUICK))
    assert type(engine._aligner).__name__ == "HfAligner"
    for clip, result in zip(clips[:3], results, strict=True):
        words = [w for seg in result.segments for w in seg.words]
        assert words, "every segment with text gets aligned words"
        assert [w.start for w in words] == sorted(w.start for w in words)
        assert all(0.0 <= w.start <= w.end <= clip.duration + 1e-6 and w.text for w in words)
        assert {w.text for w in words} <= set(result.text.split())
    assert engine.stats.align_s > 0


def test_short_and_empty_clips(engine: Qwen3Engine) -> None:
    tone = (0.1 * np.sin(2 * np.pi * 440 * np.arange(SAMPLE_RATE // 10) / SAMPLE_RATE)).astype(np.float32)
    results = engine.transcribe(
        [Clip("c", 0, 0.0, tone), Clip("c", 0, 1.0, np.zeros(0, dtype=np.float32))], EngineOptions(extra=QUICK)
    )
    assert all(0.0 <= s.start <= s.end <= 0.1 + 1e-6 for s in results[0].segments)
    assert results[1].segments == () and results[1].flags == ()


@pytest.mark.evalset
def test_a_row_whose_logits_turn_nan_is_heard_again_alone(engine: Qwen3Engine, clips: list[Clip]) -> None:
    assert_nan_rows_are_heard_alone(engine, clips)
