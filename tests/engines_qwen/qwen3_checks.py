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


def assert_penalty_spares_the_prompt(engine: Any, short: Clip, monkeypatch: Any) -> None:
    """The repetition penalty the retry hands ``generate()`` leaves every prompt token (the hotword context among
    them) alone and pushes down only what the model generated; the stock penalty would push the hotwords down.
    ``short`` must be under 2 s, so that its runaway answer goes straight to the penalty retry."""
    import torch
    from transformers import RepetitionPenaltyLogitsProcessor

    from callscribe.engines.qwen3 import REPETITION_PENALTY

    seen: list[tuple[Any, list[Any], Any]] = []
    real = engine.backend.generate

    def spying(inputs: Any, **kwargs: Any) -> Any:
        out = real(inputs, **kwargs)
        seen.append((inputs["input_ids"].clone(), list(kwargs["logits_processor"]), out.clone()))
        return out

    monkeypatch.setattr(engine.backend, "generate", spying)
    options = EngineOptions(hotwords=("chargeback", "Acme Bank"), extra={**QUICK, "recover": True})
    (result,) = engine.transcribe([short], options)
    assert "penalty-retry" in result.flags and len(seen) == 2
    prompt_ids, processors, sequences = seen[-1]
    assert "chargeback, Acme Bank" in engine.backend.processor.tokenizer.decode(prompt_ids[0])
    (penalty,) = [p for p in processors if hasattr(p, "penalty")]
    generated = set(sequences[0, prompt_ids.shape[1] :].tolist())
    spared = set(prompt_ids[0].tolist()) - generated
    assert generated and spared
    scores = torch.full((1, int(sequences.max()) + 1), 3.0)
    after = penalty(sequences, scores.clone())[0]
    assert all(float(after[t]) == 3.0 for t in spared), "a prompt token was penalised"
    assert all(abs(float(after[t]) - 3.0 / REPETITION_PENALTY) < 1e-6 for t in generated)
    stock = RepetitionPenaltyLogitsProcessor(REPETITION_PENALTY)(sequences, scores.clone())[0]
    assert all(float(stock[t]) < 3.0 for t in spared), "the stock penalty hits the prompt (else this proves nothing)"


def assert_nan_rows_are_heard_alone(engine: Any, clips: list[Clip]) -> None:
    """Logits that turn NaN for one row of a batch (the upstream report: a short clip in a mixed-length batch on a
    GPU comes out as "!!!!"; injected here on the output layer for the shortest row, the last one, whenever a batch
    has several rows): that clip is decoded again alone and flagged ``nan-batch``; the other rows keep their text."""
    import torch

    head = next(m for name, m in engine.backend.model.named_modules() if name.endswith("lm_head"))

    def poison(_module: Any, _args: Any, out: Any) -> Any:
        if out.shape[0] > 1:
            out = out.clone()
            out[-1, -1, :] = float("nan")
        return out

    clips = mixed_lengths(clips)
    shortest = min(range(len(clips)), key=lambda i: len(clips[i].audio))
    options = EngineOptions(batch_size=len(clips), extra=FIXED_BUDGET)
    alone = [engine.transcribe([c], options)[0] for c in clips]
    hook = head.register_forward_hook(poison)
    try:
        together = engine.transcribe(clips, options)
    finally:
        hook.remove()
    assert torch.isnan(poison(None, None, torch.zeros(2, 1, 3))[-1]).all(), "the hook does poison a batch row"
    for i, (b, a) in enumerate(zip(together, alone, strict=True)):
        assert b.text and b.text == a.text, f"row {i}: batched {b.text!r} != alone {a.text!r}"
        assert ("nan-batch" in b.flags) == (i == shortest), b.flags
