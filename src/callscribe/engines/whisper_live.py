"""Short-window decoding for the ``whisper`` engine: the encoder runs on the clip's own length, not 30 s.

Whisper's encoder always hears a 30 s window (3000 mel frames); a live turn of two seconds pays for all of it. The
CTranslate2 Whisper encoder takes shorter inputs, so a live decode can pad a clip's features only to its length
plus ``MARGIN_S``, rounded up to ``STEP_S``, at least ``MIN_WINDOW_S`` (whisper.cpp's ``audio_ctx`` does the same):
about 0.03 s of encoder on this CPU for a 5 s window instead of 1.5 s for 30 s. The decoding itself is the batched
pipeline's (its prompt, beam, timestamp tokens, segment split and word alignment); results differ from the 30 s
window a little (measured on evalset-dev in docs/streaming.md). Used only when :data:`LIVE_WINDOW` is set in
``EngineOptions.extra`` (the live hub sets it); batch transcripts never take this path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from callscribe.engines.base import SAMPLE_RATE, Clip, EngineOptions

if TYPE_CHECKING:
    from faster_whisper.transcribe import Segment

LIVE_WINDOW = "live_window"  # EngineOptions.extra key: decode with the short encoder window
FULL_FRAMES = 3000  # Whisper's own window: 30 s of 10 ms mel frames
MARGIN_S = 1.0  # silence after the clip inside the window: without it Whisper drops or garbles the last word
STEP_S = 1.0  # windows are whole seconds
MIN_WINDOW_S = 5.0  # shorter windows loop more often (evalset-dev: docs/streaming.md)
RETRY_WINDOW_S = 10.0  # a clip the first window did not serve tries this one before the full 30 s
# Tokens a clip may produce: a short window makes Whisper loop now and then (it hears the clip again instead of
# ending), and a loop of 448 tokens costs seconds. A clip that reaches the cap, says the same three or more tokens
# twice in a row, or whose text ends ``TAIL_GAP_S`` before its audio does (Whisper stopped early), is decoded again
# on the full window: a wrong guess costs time, never text.
TOKENS_PER_S = 12.0
TOKENS_MIN = 24
REPEAT_MIN_TOKENS = 3
TAIL_GAP_S = 1.0
PREPEND = "\"'“¿([{-"  # faster-whisper's defaults
APPEND = "\"'.。,，!！?？:：”)]}、"


def window_frames(frames: int, min_window_s: float | None = None) -> int:
    """Encoder frames for a clip of ``frames`` mel frames: its length plus ``MARGIN_S``, in whole ``STEP_S``, at
    least ``min_window_s`` (default ``MIN_WINDOW_S``), at most 30 s."""
    step = max(1, round(STEP_S * 100))
    least = MIN_WINDOW_S if min_window_s is None else min_window_s
    want = max(math.ceil((frames + MARGIN_S * 100) / step) * step, round(least * 100))
    return min(FULL_FRAMES, max(want, math.ceil(frames / 100) * 100))


def short_segments(
    model: Any,
    clips: Sequence[Clip],
    language: str,
    options: EngineOptions,
    prompt: str | None,
    min_window_s: float | None = None,
) -> list[list[Segment] | None]:
    """faster-whisper segments (clip time) of each clip, decoded as one batch on a window fitted to the longest;
    ``None`` for a clip the short window did not serve (a loop, or text that stops early: decode it again on the
    full window)."""
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import Segment, Word, get_compression_ratio, get_suppressed_tokens

    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language)
    audios = [c.audio[: FULL_FRAMES * SAMPLE_RATE // 100].astype(np.float32, copy=False) for c in clips]
    feats = [model.feature_extractor(a)[..., :-1] if len(a) else np.zeros((model.model.n_mels, 0), np.float32)
             for a in audios]  # fmt: skip
    width = window_frames(max(f.shape[-1] for f in feats), min_window_s)
    batch = np.zeros((len(clips), model.model.n_mels, width), np.float32)
    for k, f in enumerate(feats):
        batch[k, :, : min(width, f.shape[-1])] = f[:, :width]
    hotwords = ", ".join(options.hotwords) if options.hotwords else None
    previous = tokenizer.encode(prompt) if prompt else []
    start = model.get_prompt(tokenizer, previous, without_timestamps=False, hotwords=hotwords)
    encoded = model.encode(batch)
    longest = max(c.duration for c in clips)
    cap = min(model.max_length - len(start), TOKENS_MIN + math.ceil(TOKENS_PER_S * longest))
    answers = model.model.generate(
        encoded, [list(start) for _ in clips], beam_size=options.beam_size, patience=1, length_penalty=1,
        max_length=len(start) + cap, suppress_blank=True, suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
        return_scores=True, return_no_speech_prob=True, sampling_temperature=0.0, repetition_penalty=1,
        no_repeat_ngram_size=0,
    )  # fmt: skip
    pieces: list[list[dict[str, Any]]] = []
    sizes: list[int] = []
    capped: set[int] = set()
    for k, (clip, answer) in enumerate(zip(clips, answers, strict=True)):
        tokens = answer.sequences_ids[0]
        text_tokens = [t for t in tokens if t < tokenizer.eot]
        if len(tokens) >= min(cap, TOKENS_MIN + math.ceil(TOKENS_PER_S * clip.duration)) - 1 or _repeats(text_tokens):
            capped.add(k)
        logprob = answer.scores[0] * len(tokens) / (len(tokens) + 1)  # as faster-whisper: length penalty 1
        duration = max(clip.duration, 0.01)
        size = int(math.ceil(duration) * model.frames_per_second)
        sizes.append(size)
        subs, _seek, _single = model._split_segments_by_timestamps(
            tokenizer=tokenizer, tokens=tokens, time_offset=0.0, segment_size=size, segment_duration=duration, seek=0
        )
        pieces.append([{**s, "seek": 0, "avg_logprob": logprob, "no_speech_prob": answer.no_speech_prob} for s in subs])
    if options.timestamps == "word":
        aligned = [k for k, p in enumerate(pieces) if p]
        if aligned:
            sub = encoded if len(aligned) == len(pieces) else model.encode(batch[aligned])
            model.add_word_timestamps([pieces[k] for k in aligned], tokenizer, sub, [sizes[k] for k in aligned],
                                      PREPEND, APPEND, 0.0)  # fmt: skip
    out: list[list[Segment] | None] = []
    for k, per_clip in enumerate(pieces):
        if k in capped or _stops_early(per_clip, clips[k].duration):
            out.append(None)
            continue
        segs = []
        for i, s in enumerate(per_clip):
            text = tokenizer.decode(s["tokens"])
            words = [Word(**w) for w in s["words"]] if s.get("words") is not None else None
            segs.append(Segment(id=i, seek=0, start=s["start"], end=s["end"], text=text, tokens=s["tokens"],
                                avg_logprob=s["avg_logprob"], compression_ratio=get_compression_ratio(text),
                                no_speech_prob=s["no_speech_prob"], words=words, temperature=0.0))  # fmt: skip
        out.append(segs)
    return out


def _repeats(tokens: Sequence[int]) -> bool:
    """The same ``REPEAT_MIN_TOKENS`` or more tokens twice in a row ("in 1813 in 1813")."""
    n = len(tokens)
    for size in range(REPEAT_MIN_TOKENS, n // 2 + 1):
        for i in range(n - 2 * size + 1):
            if tokens[i : i + size] == tokens[i + size : i + 2 * size]:
                return True
    return False


def _stops_early(pieces: Sequence[dict[str, Any]], duration: float) -> bool:
    """The text (its last word, else its last segment) ends ``TAIL_GAP_S`` before the clip's audio."""
    if not pieces:
        return False
    words = pieces[-1].get("words") or []
    end = float(words[-1]["end"]) if words else float(pieces[-1]["end"])
    return end < duration - TAIL_GAP_S
