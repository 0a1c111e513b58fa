"""Word / character timestamps for Qwen3-ASR text with Qwen3-ForcedAligner (through qwen-asr)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from callscribe.engines.base import SAMPLE_RATE, EngineError
from callscribe.model import Word

log = logging.getLogger("callscribe")

DEFAULT_ALIGNER = "Qwen/Qwen3-ForcedAligner-0.6B"
# The aligner's longest input (qwen_asr.inference.utils.MAX_FORCE_ALIGN_INPUT_SECONDS).
ALIGNER_MAX_S = 180.0
# The aligner splits words itself and needs a language; English covers space-separated text and CJK characters.
FALLBACK_LANGUAGE = "English"


class Aligner:
    """A loaded Qwen3-ForcedAligner that turns (clip audio, text) into :class:`Word` s relative to the clip."""

    def __init__(self, path: str, device: str, dtype: Any) -> None:
        from qwen_asr import Qwen3ForcedAligner

        try:
            self.model = Qwen3ForcedAligner.from_pretrained(path, dtype=dtype, device_map=device)
        except (OSError, ValueError, TypeError) as exc:
            raise EngineError(f"qwen3: cannot load the forced aligner {path}: {exc}") from exc
        self.path = path

    def align(
        self,
        audios: Sequence[np.ndarray],
        texts: Sequence[str],
        languages: Sequence[str | None],
        batch_size: int,
    ) -> list[tuple[Word, ...]]:
        """One tuple of words per input; empty texts and over-long clips get no words."""
        out: list[tuple[Word, ...]] = [() for _ in audios]
        limit = int(ALIGNER_MAX_S * SAMPLE_RATE)
        todo = [i for i, (a, t) in enumerate(zip(audios, texts, strict=True)) if t.strip() and len(a) <= limit]
        for k in range(0, len(todo), max(1, batch_size)):
            part = todo[k : k + max(1, batch_size)]
            results = self.model.align(
                audio=[(np.asarray(audios[i], dtype=np.float32), SAMPLE_RATE) for i in part],
                text=[texts[i] for i in part],
                language=[languages[i] or FALLBACK_LANGUAGE for i in part],
            )
            for i, result in zip(part, results, strict=True):
                out[i] = to_words(result.items, len(audios[i]) / SAMPLE_RATE)
        return out


def to_words(items: Sequence[Any], duration: float) -> tuple[Word, ...]:
    """Aligner items -> words inside ``[0, duration]`` with non-decreasing times."""
    words: list[Word] = []
    last = 0.0
    for item in items:
        start = min(max(float(item.start_time), last), duration)
        end = min(max(float(item.end_time), start), duration)
        words.append(Word(text=str(item.text), start=round(start, 3), end=round(end, 3)))
        last = start
    return tuple(words)
