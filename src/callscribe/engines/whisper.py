"""``whisper``: faster-whisper (CTranslate2) on our own clips, batched across calls.

``model`` is a local CTranslate2 model directory, a faster-whisper model name (downloaded by faster-whisper when the
network allows), or ``None`` for the bundled offline Whisper-base.
"""

from __future__ import annotations

import bisect
import logging
import math
import os
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from callscribe.engines import bundled
from callscribe.engines.base import (
    SAMPLE_RATE,
    Clip,
    EngineError,
    EngineOptions,
    EngineResult,
    EngineSegment,
    register,
)
from callscribe.engines.qwen3_recover import find_repeat_run
from callscribe.engines.whisper_live import LIVE_WINDOW, RETRY_WINDOW_S, short_segments
from callscribe.model import Word

log = logging.getLogger("callscribe")

# Clips are laid end to end for the batched pipeline on a 10 ms grid so offsets map back exactly.
_GRID = SAMPLE_RATE // 100
MAX_CLIP_S = 30.0
# Batch size when the options leave it to the engine. On CPU a batch buys no speed and costs memory: CTranslate2
# keeps a decoder cache of 448 tokens per beam and sequence (about 55 MB per clip for base with beam 5).
CPU_BATCH = 1
CPU_CLIPS_PER_CALL = 4
GPU_BATCH = 16
# Whisper's own rule for dropping a hallucination over silence.
NO_SPEECH_PROB = 0.6
LOGPROB_FLOOR = -1.0
# A neutral prompt that keeps Whisper's Mandarin in simplified characters and punctuated. Whisper sometimes
# repeats its prompt over unclear audio; such an echo is dropped.
ZH_PROMPT = "以下是普通话的句子。"
# A segment whose text compresses better than this is a repetition loop (Whisper's own threshold); its clip is
# decoded again, one clip at a time, with temperature fallback.
COMPRESSION_RATIO = 2.4
RETRY_TEMPERATURES = (0.2, 0.4, 0.6, 0.8, 1.0)
RETRY_SEED = 1234
# Byte-level tokens cut inside a multi-byte character decode to U+FFFD; such fragments carry no text.
REPLACEMENT_CHAR = "\ufffd"


def _available(model: str | None = None, **_: Any) -> tuple[bool, str]:
    try:
        import faster_whisper  # noqa: F401
    except ImportError:
        return False, "faster-whisper is not installed"
    if model:
        return True, f"model {model}"
    if bundled.is_installed():
        return True, "bundled offline Whisper-base (CPU, int8)"
    return False, f"the bundled model is not installed ({bundled.INSTALL_HINT})"


def _resolve_device(device: str) -> str:
    if device != "auto":
        return device
    try:
        import ctranslate2

        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    except Exception:  # pragma: no cover - no CUDA runtime at all
        return "cpu"


class WhisperEngine:
    name = "whisper"

    def __init__(
        self,
        model: str | None = None,
        device: str = "auto",
        compute_type: str = "auto",
        threads: int = 0,
    ) -> None:
        from faster_whisper import BatchedInferencePipeline, WhisperModel

        self.device = _resolve_device(device)
        self.compute_type = compute_type if compute_type != "auto" else ("int8" if self.device == "cpu" else "float16")
        if model is None:
            path = str(bundled.bundled_model_dir())
            self.model_label = "bundled whisper-base"
        else:
            local = Path(model).expanduser()
            if local.exists():
                if not (local / "model.bin").is_file():
                    raise EngineError(
                        f"{local}: not a CTranslate2 Whisper model (model.bin is missing); convert one with "
                        "ct2-transformers-converter or pass a faster-whisper model name"
                    )
                path = str(local)
            else:
                path = model
            self.model_label = model
        try:
            self.model = WhisperModel(
                path,
                device=self.device,
                compute_type=self.compute_type,
                cpu_threads=threads or (os.cpu_count() or 1),
            )
        except Exception as exc:  # CTranslate2 / hub errors arrive as many types
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise EngineError(
                f"cannot load Whisper model {path}: {reason} (model files missing or corrupt? a local directory "
                "needs model.bin, config.json, tokenizer.json; a model name needs network access once)"
            ) from exc
        self.pipeline = BatchedInferencePipeline(self.model)

    @property
    def default_batch(self) -> int:
        return CPU_BATCH if self.device == "cpu" else GPU_BATCH

    @property
    def clips_per_call(self) -> int | None:
        """Clips the pipeline hands over per engine call on CPU (None: its default). One clip is decoded at a
        time there, so a small engine call costs nothing, and a call that arrives meanwhile (the service's
        queue) is taken in after a few clips instead of after a whole call's worth."""
        return CPU_CLIPS_PER_CALL if self.device == "cpu" else None

    def describe(self) -> str:
        return f"whisper ({self.model_label}, {self.device}, {self.compute_type})"

    # -- language -------------------------------------------------------------------------------------------
    def _languages(self, clips: Sequence[Clip], forced: str | None) -> list[str]:
        """One language per clip: forced, the call's own (the pipeline asked :meth:`detect_language` once per
        call), or else detected once per call on its longest clip in this engine call."""
        if forced:
            return [forced] * len(clips)
        if not self.model.model.is_multilingual:
            return ["en"] * len(clips)
        longest: dict[str, Clip] = {}
        for clip in clips:
            if clip.language is None and (
                clip.call_id not in longest or clip.duration > longest[clip.call_id].duration
            ):
                longest[clip.call_id] = clip
        detected = {call_id: self.detect_language(clip) for call_id, clip in longest.items()}
        return [c.language or detected[c.call_id] for c in clips]

    def detect_language(self, clip: Clip) -> str:
        """Whisper's language for ``clip`` (its first 30 s)."""
        if not self.model.model.is_multilingual:
            return "en"
        language, _prob, _all = self.model.detect_language(audio=clip.audio[: int(MAX_CLIP_S * SAMPLE_RATE)])
        return str(language)

    # -- recognition ----------------------------------------------------------------------------------------
    def transcribe(self, clips: Sequence[Clip], options: EngineOptions) -> list[EngineResult]:
        results: list[EngineResult | None] = [None] * len(clips)
        languages = self._languages(clips, options.language)
        groups: dict[str, list[int]] = defaultdict(list)
        for i, language in enumerate(languages):
            groups[language].append(i)
        run = self._run_live if options.extra.get(LIVE_WINDOW) else self._run_group
        for language, indices in groups.items():
            for i, result in zip(indices, run([clips[i] for i in indices], language, options), strict=True):
                results[i] = result
        return [r for r in results if r is not None]

    def _run_group(
        self, clips: list[Clip], language: str, options: EngineOptions, fallback: bool = True
    ) -> list[EngineResult]:
        """Clips decoded on Whisper's 30 s window. A clip whose decode loops is decoded again with the temperature
        fallback (``fallback``), or, where that is too slow (a live stream: 10-16 s on a 2 s turn here, while every
        stream waits), keeps its segments that did not loop, flagged ``repetition``."""
        pieces, offsets, stamps = [], [], []
        cursor = 0
        for clip in clips:
            audio = clip.audio[: int(MAX_CLIP_S * SAMPLE_RATE)].astype(np.float32, copy=False)
            padded = math.ceil(max(len(audio), 1) / _GRID) * _GRID
            pieces.append(np.pad(audio, (0, padded - len(audio))))
            offsets.append(cursor / SAMPLE_RATE)
            stamps.append({"start": _stamp(cursor), "end": _stamp(cursor + len(audio))})
            cursor += padded
        joined = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        prompt = options.extra.get("initial_prompt")
        if prompt is None and language == "zh":
            prompt = ZH_PROMPT
        segments, _info = self.pipeline.transcribe(
            joined,
            language=language,
            beam_size=options.beam_size,
            batch_size=options.batch_size or self.default_batch,
            clip_timestamps=stamps,
            without_timestamps=False,
            word_timestamps=options.timestamps == "word",
            hotwords=", ".join(options.hotwords) if options.hotwords else None,
            initial_prompt=prompt,
            vad_filter=False,
        )
        per_clip: list[list[EngineSegment]] = [[] for _ in clips]
        runaway: set[int] = set()
        for seg in segments:
            # By the segment's middle: with word times faster-whisper moves its start to the first word, which
            # alignment can place a little before the clip's own start (in the previous clip's padding).
            k = max(0, bisect.bisect_right(offsets, (seg.start + max(seg.start, seg.end)) / 2) - 1)
            if _looping(seg):
                runaway.add(k)
                if not fallback:
                    continue
            kept = self._segment(seg, offsets[k], clips[k].duration, prompt, options.hotwords)
            if kept is not None:
                per_clip[k].append(kept)
        results = [EngineResult(segments=tuple(segs), language=language) for segs in per_clip]
        for k in sorted(runaway):
            if fallback:
                results[k] = self._retry(clips[k], language, options, prompt)
            else:
                results[k] = replace(results[k], flags=("repetition",))
        return results

    def _run_live(self, clips: list[Clip], language: str, options: EngineOptions) -> list[EngineResult]:
        """Live streams only (``options.extra[LIVE_WINDOW]``, set by the live hub): the encoder hears each clip's own
        length instead of 30 s (:mod:`callscribe.engines.whisper_live`); segments are kept as in :meth:`_run_group`."""
        prompt = options.extra.get("initial_prompt")
        if prompt is None and language == "zh":
            prompt = ZH_PROMPT
        size = max(1, options.batch_size or self.default_batch)
        results: list[EngineResult] = []
        for first in range(0, len(clips), size):
            batch = clips[first : first + size]
            for clip, segs in zip(batch, short_segments(self.model, batch, language, options, prompt), strict=True):
                if segs is None or any(_looping(seg) for seg in segs):  # the short window looped: a longer one
                    (segs,) = short_segments(self.model, [clip], language, options, prompt, RETRY_WINDOW_S)
                if segs is None or any(_looping(seg) for seg in segs):  # and then Whisper's own 30 s
                    results += self._run_group([clip], language, options, fallback=False)
                    continue
                kept = (self._segment(seg, 0.0, clip.duration, prompt, options.hotwords) for seg in segs)
                results.append(EngineResult(segments=tuple(k for k in kept if k is not None), language=language))
        return results

    def _segment(
        self, seg: Any, base: float, duration: float, prompt: str | None, hotwords: tuple[str, ...] = ()
    ) -> EngineSegment | None:
        """A faster-whisper segment in clip time, or ``None`` for silence hallucinations and prompt echoes."""
        if seg.no_speech_prob > NO_SPEECH_PROB and seg.avg_logprob < LOGPROB_FLOOR:
            return None
        text = seg.text.replace(REPLACEMENT_CHAR, "").strip()
        text = _strip_echo(text, prompt, hotwords)
        if not text:
            return None
        words = tuple(
            Word(
                text=w.word.strip(),
                start=_clamp(w.start - base, duration),
                end=_clamp(w.end - base, duration),
                probability=round(float(w.probability), 4),
            )
            for w in (seg.words or ())
            if w.word.strip()
        )
        start, end = _clamp(seg.start - base, duration), _clamp(seg.end - base, duration)
        return EngineSegment(start, max(end, start), text, words, round(math.exp(seg.avg_logprob), 4))

    def _retry(self, clip: Clip, language: str, options: EngineOptions, prompt: str | None) -> EngineResult:
        """Decode one clip again with Whisper's temperature fallback, which the batched path lacks.

        Sampling is seeded, so the same clip gets the same text on every run.
        """
        import ctranslate2

        ctranslate2.set_random_seed(RETRY_SEED)
        segments, _info = self.model.transcribe(
            clip.audio,
            language=language,
            beam_size=options.beam_size,
            temperature=RETRY_TEMPERATURES,
            compression_ratio_threshold=COMPRESSION_RATIO,
            condition_on_previous_text=False,
            initial_prompt=prompt,
            word_timestamps=options.timestamps == "word",
            hotwords=", ".join(options.hotwords) if options.hotwords else None,
            vad_filter=False,
        )
        kept = []
        for seg in segments:
            if _looping(seg):
                continue  # still looping at the highest temperature: better nothing than a loop
            piece = self._segment(seg, 0.0, clip.duration, prompt, options.hotwords)
            if piece is not None:
                kept.append(piece)
        return EngineResult(segments=tuple(kept), language=language, flags=("repetition",))


def _looping(seg: Any) -> bool:
    """Whisper's own compression test, plus an n-gram run anywhere (short loops compress too little to show)."""
    return seg.compression_ratio > COMPRESSION_RATIO or find_repeat_run(seg.tokens) is not None


_ECHO_STRIP = "。.,，、!！?？:：;； "
_ECHO_MIN_PREFIX = 4  # characters of the prompt a segment must start with to count as its echo
ECHO_SIMILARITY = 80.0  # rapidfuzz ratio at which a whole segment is the prompt again ("以下普通话的句子")


def _strip_echo(text: str, prompt: str | None, hotwords: tuple[str, ...]) -> str:
    """``text`` without what Whisper repeated from its prompt: the prompt sentence (also misspelt by a character),
    a leading piece of it, and a segment that is nothing but a list of glossary terms (the terms reach the decoder
    as prompt text too). Text without a letter or digit ("。。。") is nothing."""
    from rapidfuzz import fuzz

    if not any(ch.isalnum() for ch in text):
        return ""
    core = (prompt or "").strip(_ECHO_STRIP)
    if core and fuzz.ratio(text.strip(_ECHO_STRIP), core) >= ECHO_SIMILARITY:
        return ""
    head = 0
    while head < min(len(core), len(text)) and text[head] == core[head]:
        head += 1
    echoed = bool(head) and head >= min(_ECHO_MIN_PREFIX, len(core))
    if echoed:
        text = text[head:].lstrip(_ECHO_STRIP)
    if text and hotwords:
        # A lone term may be a real answer ("宽带套餐。"): it stays, and the glossary check asks the audio about it.
        pieces = [p for p in re.split(f"[{re.escape(_ECHO_STRIP)}]+", text) if p]
        if pieces and all(p in hotwords for p in pieces) and (echoed or len(pieces) > 1):
            return ""
    return text.strip()


def _stamp(sample: int) -> float:
    """Seconds that faster-whisper turns back into exactly ``sample`` (it truncates ``seconds * rate``).

    ``sample / rate`` can come back one sample short (``int(x / 16000 * 16000) == x - 1`` for some ``x``), and
    then a clip's audio depends on where it lies in the joined array, that is on the clips heard with it: the
    same call read differently alone than in a larger run. Half a sample more always truncates to ``sample``.
    """
    return (sample + 0.5) / SAMPLE_RATE


def _clamp(t: float, duration: float) -> float:
    return round(min(max(t, 0.0), duration), 3)


@register("whisper", availability=_available)
def create_whisper(
    model: str | None = None,
    device: str = "auto",
    compute_type: str = "auto",
    threads: int = 0,
    **_ignored: Any,
) -> WhisperEngine:
    return WhisperEngine(model=model, device=device, compute_type=compute_type, threads=threads)
