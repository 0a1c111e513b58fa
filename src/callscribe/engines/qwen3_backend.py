"""What the qwen3 engine needs from a Qwen3-ASR library, behind one small interface.

:class:`Backend` covers the library-specific parts: loading, the prompt text, turning prompts + audio into model
inputs, ``generate()``, parsing the output, the end/pad token ids and the forced aligner. The engine
(:mod:`callscribe.engines.qwen3`) keeps everything else (batching, budgets, recovery, confidence) and works the same
on both checkpoint layouts: :class:`QwenAsrBackend` (qwen-asr, original layout, here) and ``HfBackend``
(transformers-native ``-hf`` layout, :mod:`callscribe.engines.qwen3_hf`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from callscribe.engines.base import SAMPLE_RATE, EngineError
from callscribe.engines.qwen3_load import HF, QWEN_ASR, require_library
from callscribe.model import Word

ASR_TEXT_TAG = "<asr_text>"
END_TOKENS = ("<|im_end|>", "<|endoftext|>")
PAD_TOKEN = "<|endoftext|>"
# Longest output a model is loaded for (the engine's budgets stay below it).
MAX_NEW_TOKENS = 512


class AlignerLike(Protocol):
    path: str

    def align(
        self, audios: Sequence[np.ndarray], texts: Sequence[str], languages: Sequence[str | None], batch_size: int
    ) -> list[tuple[Word, ...]]: ...


class Backend(Protocol):
    """One loaded Qwen3-ASR model of one layout."""

    layout: str
    model: Any  # the torch module generate() runs on
    processor: Any
    audio_tower: Any  # the audio encoder module (hooks and benchmarks time it)
    eos_ids: list[int]
    pad_id: int

    def prompt(self, context: str, language: str | None) -> str:
        """The text prompt for one clip: system = ``context``; a forced language is written into the answer."""
        ...

    def inputs(self, prompts: list[str], audios: list[np.ndarray]) -> Any:
        """Model inputs (left-padded ids, audio features) on the model's device and dtype."""
        ...

    def generate(self, inputs: Any, **kwargs: Any) -> Any:
        """``generate()`` -> the sequences tensor (prompt + new tokens)."""
        ...

    def parse(self, tokens: list[int], forced: str | None) -> tuple[str | None, str]:
        """New tokens (ends removed) -> (the model's language name or None, text)."""
        ...


def forced_suffix(language: str | None) -> str:
    return f"language {language}{ASR_TEXT_TAG}" if language else ""


def token_ids(tokenizer: Any) -> tuple[list[int], int]:
    """The end-of-output ids and the pad id from the tokenizer's Qwen special tokens."""
    unk = getattr(tokenizer, "unk_token_id", None)
    ids = [tokenizer.convert_tokens_to_ids(t) for t in END_TOKENS]
    eos = [i for i in ids if isinstance(i, int) and i != unk]
    pad = tokenizer.convert_tokens_to_ids(PAD_TOKEN)
    if not eos or not isinstance(pad, int):
        raise EngineError("qwen3: the model's tokenizer lacks the Qwen end tokens <|im_end|> / <|endoftext|>")
    return eos, pad


class QwenAsrBackend:
    """The original layout through qwen-asr's ``Qwen3ASRModel`` (transformers 4.57)."""

    layout = QWEN_ASR

    def __init__(self, path: str, device: str, dtype: Any, batch_size: int, attn_implementation: str) -> None:
        require_library(QWEN_ASR, f"{path} (qwen-asr layout)")
        from qwen_asr import Qwen3ASRModel

        try:
            self.asr = Qwen3ASRModel.from_pretrained(
                path,
                max_inference_batch_size=batch_size,
                max_new_tokens=MAX_NEW_TOKENS,
                dtype=dtype,
                device_map=device,
                attn_implementation=attn_implementation,
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise EngineError(f"qwen3: cannot load {path}: {exc}") from exc
        self.model = self.asr.model
        self.processor = self.asr.processor
        self.audio_tower = self.model.thinker.audio_tower
        self.eos_ids, self.pad_id = token_ids(self.processor.tokenizer)

    def prompt(self, context: str, language: str | None) -> str:
        messages = [
            {"role": "system", "content": context},
            {"role": "user", "content": [{"type": "audio", "audio": ""}]},
        ]
        text = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return text + forced_suffix(language)

    def inputs(self, prompts: list[str], audios: list[np.ndarray]) -> Any:
        batch = self.processor(text=prompts, audio=audios, return_tensors="pt", padding=True)
        return batch.to(self.model.device).to(self.model.dtype)

    def generate(self, inputs: Any, **kwargs: Any) -> Any:
        return self.model.generate(**inputs, **kwargs).sequences  # qwen-asr asks for a dict result itself

    def parse(self, tokens: list[int], forced: str | None) -> tuple[str | None, str]:
        from qwen_asr import parse_asr_output

        raw = self.processor.tokenizer.decode(tokens, skip_special_tokens=True)
        name, text = parse_asr_output(raw, user_language=forced)
        return name, text


def load_backend(layout: str, path: str, device: str, dtype: Any, batch_size: int, attn_implementation: str) -> Backend:
    if layout == HF:
        from callscribe.engines.qwen3_hf import HfBackend

        return HfBackend(path, device, dtype, attn_implementation)
    return QwenAsrBackend(path, device, dtype, batch_size, attn_implementation)


def pad_to_min(audios: Sequence[np.ndarray], min_s: float) -> list[np.ndarray]:
    """Zero-pad audio shorter than ``min_s`` seconds (the model's shortest input)."""
    n = int(min_s * SAMPLE_RATE)
    return [a if len(a) >= n else np.pad(a, (0, n - len(a))) for a in audios]
