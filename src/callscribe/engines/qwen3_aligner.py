"""Word / character timestamps for Qwen3-ASR text with Qwen3-ForcedAligner.

The aligner has the same two checkpoint layouts as the ASR model: the original one runs through qwen-asr
(:class:`Aligner`, here), the ``-hf`` one through transformers (:class:`callscribe.engines.qwen3_hf.HfAligner`).
:func:`load_aligner` picks by the aligner checkpoint's own layout.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from callscribe.engines.base import SAMPLE_RATE, EngineError
from callscribe.engines.qwen3_load import HF, QWEN_ASR, folder_layout, model_layout, require_library
from callscribe.model import Word

log = logging.getLogger("callscribe")

DEFAULT_ALIGNER = "Qwen/Qwen3-ForcedAligner-0.6B"
DEFAULT_ALIGNER_HF = "Qwen/Qwen3-ForcedAligner-0.6B-hf"
DEFAULT_ALIGNERS = {QWEN_ASR: DEFAULT_ALIGNER, HF: DEFAULT_ALIGNER_HF}
# The aligner's longest input (qwen_asr.inference.utils.MAX_FORCE_ALIGN_INPUT_SECONDS).
ALIGNER_MAX_S = 180.0
# The aligner splits words itself and needs a language; English covers space-separated text and CJK characters.
FALLBACK_LANGUAGE = "English"


class Aligner:
    """A loaded Qwen3-ForcedAligner (qwen-asr layout) that turns (clip audio, text) into :class:`Word` s."""

    def __init__(self, path: str, device: str, dtype: Any) -> None:
        require_library(QWEN_ASR, f"the forced aligner {path} (qwen-asr layout)")
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


def load_aligner(path: str, name: str, device: str, dtype: Any) -> Any:
    """The aligner at ``path`` (a folder or hub id; ``name`` is what the user gave), by its own layout."""
    folder = Path(path).expanduser()
    layout = folder_layout(folder) if folder.is_dir() else model_layout(path)
    if layout == HF:
        from callscribe.engines.qwen3_hf import HfAligner

        aligner: Any = HfAligner(path, device, dtype)
    else:
        aligner = Aligner(path, device, dtype)
    aligner.path = name
    return aligner


def _field(item: Any, key: str) -> Any:
    return item[key] if isinstance(item, Mapping) else getattr(item, key)


def to_words(items: Sequence[Any], duration: float) -> tuple[Word, ...]:
    """Aligner items (objects or dicts with ``text``, ``start_time``, ``end_time`` in seconds) -> words inside
    ``[0, duration]`` with non-decreasing times."""
    words: list[Word] = []
    last = 0.0
    for item in items:
        start = min(max(float(_field(item, "start_time")), last), duration)
        end = min(max(float(_field(item, "end_time")), start), duration)
        words.append(Word(text=str(_field(item, "text")), start=round(start, 3), end=round(end, 3)))
        last = start
    return tuple(words)
