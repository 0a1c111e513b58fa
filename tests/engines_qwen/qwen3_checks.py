"""Checks shared by the qwen3 engine tests of both checkpoint layouts (qwen-asr and transformers ``-hf``).

Imports only numpy and callscribe at module level, so it loads in either test environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from callscribe.audio import iter_clips, prepare
from callscribe.engines.base import SAMPLE_RATE, Clip, EngineOptions, EngineResult
from callscribe.options import Options

SPEECH_FILES = (
    "audio/en_librispeech_1995-1837-0001.wav",
    "audio/zh_aishell1_BAC009S0764W0121.wav",
    "audio/en_whisper_jfk.flac",
    "audio/zh_fireredtts2_podcast_S1.flac",
    "audio/en_pocketsphinx_cards_005_numbers.wav",
)
# Random weights always run to the output budget; a small budget keeps the tests quick on two cores.
QUICK = {"recover": False, "tokens_per_second": 2, "token_margin": 4}
# The same budget for every clip whatever its length, so a clip's text cannot depend on its batch's longest clip.
FIXED_BUDGET = {"recover": False, "tokens_per_second": 1000, "max_new_tokens": 12}


def speech_clips(evalset: Path, files: tuple[str, ...] = SPEECH_FILES) -> list[Clip]:
    """Clips cut from real recordings by the pipeline's own decoder, VAD and clip cutter."""
    clips: list[Clip] = []
    for name in files:
        with prepare(evalset / name, Options()) as prepared:
            clips += list(iter_clips(prepared.audio, prepared.speech, call_id=Path(name).stem))
    return clips


def decoder(engine: Any) -> Any:
    """The module whose forward runs every generate() step (qwen-asr's thinker, or the -hf model itself)."""
    model = engine.backend.model
    return getattr(model, "thinker", model)


class PrefillSpy:
    """Counts what reaches the real decoder: one prefill (prompt pass) per generate() batch, its prompts as text,
    the audio frames the encoder got, and the next-token logits of every prefill row."""

    def __init__(self, engine: Any) -> None:
        self.tokenizer = engine.backend.processor.tokenizer
        self.batches: list[int] = []
        self.prompts: list[str] = []
        self.audio_frames: list[int] = []
        self.logits: list[Any] = []  # one (batch, vocab) tensor per prefill
        self._prefill = False
        model = decoder(engine)
        self._hooks = [
            model.register_forward_pre_hook(self._step, with_kwargs=True),
            model.lm_head.register_forward_hook(self._head),
            engine.backend.audio_tower.register_forward_pre_hook(self._audio, with_kwargs=True),
        ]

    def _step(self, _module: Any, _args: Any, kwargs: dict[str, Any]) -> None:
        self._prefill = kwargs.get("input_features") is not None
        if self._prefill:
            ids = kwargs["input_ids"]
            self.batches.append(int(ids.shape[0]))
            self.prompts += [self.tokenizer.decode(row, skip_special_tokens=False) for row in ids.tolist()]

    def _head(self, _module: Any, _args: Any, output: Any) -> None:
        if self._prefill:
            self.logits.append(output[:, -1, :].detach().float().cpu())

    def _audio(self, _module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        if "feature_lens" in kwargs:  # qwen-asr: frames per clip
            self.audio_frames.append(int(kwargs["feature_lens"].sum()))
        else:  # -hf: a mask over padded frames
            mask = kwargs.get("input_features_mask", args[1] if len(args) > 1 else None)
            self.audio_frames.append(int(mask.sum()))

    def __enter__(self) -> PrefillSpy:
        return self

    def __exit__(self, *_: object) -> None:
        for hook in self._hooks:
            hook.remove()


def mixed_lengths(clips: list[Clip]) -> list[Clip]:
    """Clips of very different lengths, a sub-minimum one (0.3 s, zero-padded by the engine) among them."""
    by_length = sorted(clips, key=lambda c: c.duration)
    tiny = Clip("short", 0, 0.0, by_length[-1].audio[SAMPLE_RATE : SAMPLE_RATE + int(0.3 * SAMPLE_RATE)])
    return [by_length[0], by_length[-1], tiny, by_length[len(by_length) // 2]]


def batched_and_alone(engine: Any, clips: list[Clip]) -> tuple[list[EngineResult], list[EngineResult], Any, Any]:
    """Transcribe ``clips`` as one left-padded batch and then one by one with the same output budget.

    Returns both results and the first-step logits of both runs, rows in ``clips`` order.
    """
    import torch

    options = EngineOptions(batch_size=len(clips), extra=FIXED_BUDGET)
    with PrefillSpy(engine) as spy:
        together = engine.transcribe(clips, options)
    assert spy.batches == [len(clips)], "one generate() call for the whole batch"
    order = sorted(range(len(clips)), key=lambda i: -len(clips[i].audio))  # the engine goes longest first
    batch_logits = torch.empty_like(spy.logits[0])
    for row, i in enumerate(order):
        batch_logits[i] = spy.logits[0][row]
    alone, alone_logits = [], []
    for clip in clips:
        with PrefillSpy(engine) as spy:
            alone += engine.transcribe([clip], options)
        alone_logits.append(spy.logits[0][0])
    return together, alone, batch_logits, torch.stack(alone_logits)


def assert_batched_matches_alone(engine: Any, clips: list[Clip]) -> None:
    import torch

    together, alone, batch_logits, alone_logits = batched_and_alone(engine, clips)
    assert torch.isfinite(batch_logits).all(), "no NaN / inf logits in a mixed-length batch"
    spread = max(float((alone_logits[i] - alone_logits[0]).abs().max()) for i in range(1, len(clips)))
    assert spread > 1e-3, "different audio gives different logits (else the comparison below means nothing)"
    assert float((batch_logits - alone_logits).abs().max()) < 1e-4, "padding changed a clip's logits"
    for clip, b, a in zip(clips, together, alone, strict=True):
        assert b.text and b.text == a.text, f"{clip.call_id}: batched {b.text!r} != alone {a.text!r}"
        assert b.text.strip("!"), "a clip's output is more than a run of '!'"


def assert_structure(clips: list[Clip], results: list[EngineResult]) -> None:
    """What every random-weight result must look like: text inside the clip, a confidence, the budget flag."""
    assert len(results) == len(clips)
    for clip, result in zip(clips, results, strict=True):
        assert result.segments, "random weights still write text"
        for seg in result.segments:
            assert 0.0 <= seg.start <= seg.end <= clip.duration + 1e-6
            assert seg.text and 0.0 < (seg.confidence or 0.0) <= 1.0
        # Random weights never emit end-of-text, so every output runs into its budget and is flagged.
        assert "truncated" in result.flags
