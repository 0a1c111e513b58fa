"""The transformers-native Qwen3-ASR layout (``Qwen/Qwen3-ASR-1.7B-hf``, transformers >= 5.13) for the qwen3 engine.

:class:`HfBackend` loads ``Qwen3ASRForConditionalGeneration`` and its processor; the prompt is the same chat layout
as qwen-asr's (system = context, user = the audio, a forced language written into the answer as
``language X<asr_text>``), rendered with the checkpoint's own chat template. :class:`HfAligner` gives word times
with the ``-hf`` forced aligner (``Qwen3ASRForTokenClassification``) through the processor's forced-alignment helpers.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from callscribe.engines.base import SAMPLE_RATE, EngineError
from callscribe.engines.qwen3_backend import forced_suffix, token_ids
from callscribe.engines.qwen3_load import HF, require_library
from callscribe.model import Word

log = logging.getLogger("callscribe")

# Languages whose word splitting needs an extra package in the processor (without it, the default split is used).
_SPLITTER_PACKAGES = {"Japanese": "nagisa", "Korean": "soynlp"}


def _load_errors() -> tuple[type[BaseException], ...]:
    return (OSError, ValueError, KeyError, TypeError, AttributeError)


class HfBackend:
    """A ``-hf`` checkpoint through transformers' built-in Qwen3-ASR classes."""

    layout = HF

    def __init__(self, path: str, device: str, dtype: Any, attn_implementation: str) -> None:
        require_library(HF, f"{path} (transformers -hf layout)")
        from transformers import AutoProcessor, Qwen3ASRForConditionalGeneration

        try:
            self.processor = AutoProcessor.from_pretrained(path)
            self.model = Qwen3ASRForConditionalGeneration.from_pretrained(
                path, dtype=dtype, device_map=device, attn_implementation=attn_implementation
            ).eval()
        except _load_errors() as exc:
            raise EngineError(f"qwen3: cannot load {path}: {exc}") from exc
        self.audio_tower = self.model.model.audio_tower
        self.eos_ids, self.pad_id = token_ids(self.processor.tokenizer)

    def prompt(self, context: str, language: str | None) -> str:
        messages = [
            {"role": "system", "content": [{"type": "text", "text": context}]},
            {"role": "user", "content": [{"type": "audio"}]},
        ]
        text = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return text + forced_suffix(language)

    def inputs(self, prompts: list[str], audios: list[np.ndarray]) -> Any:
        batch = self.processor(text=prompts, audio=audios, sampling_rate=SAMPLE_RATE, return_tensors="pt")
        batch.pop("num_audio_tokens", None)
        batch = batch.to(self.model.device)
        batch["input_features"] = batch["input_features"].to(self.model.dtype)
        return batch

    def generate(self, inputs: Any, **kwargs: Any) -> Any:
        return self.model.generate(**inputs, **kwargs, return_dict_in_generate=True).sequences

    def parse(self, tokens: list[int], forced: str | None) -> tuple[str | None, str]:
        parsed = self.processor.decode(tokens, return_format="parsed")
        language = forced or parsed.get("language")
        return language, str(parsed.get("transcription") or "")


def _aligner_languages() -> set[str]:
    from transformers.models.qwen3_asr import processing_qwen3_asr

    return set(getattr(processing_qwen3_asr, "FORCED_ALIGNER_LANGUAGES", ()))


class HfAligner:
    """A ``-hf`` Qwen3-ForcedAligner: (clip audio, text) -> :class:`Word` s relative to the clip."""

    def __init__(self, path: str, device: str, dtype: Any) -> None:
        require_library(HF, f"the forced aligner {path} (transformers -hf layout)")
        from transformers import AutoProcessor, Qwen3ASRForTokenClassification

        try:
            self.processor = AutoProcessor.from_pretrained(path)
            self.model = Qwen3ASRForTokenClassification.from_pretrained(path, dtype=dtype, device_map=device).eval()
        except _load_errors() as exc:
            raise EngineError(f"qwen3: cannot load the forced aligner {path}: {exc}") from exc
        self.path = path
        self._languages = _aligner_languages()

    def _language(self, name: str | None) -> str | None:
        """The aligner's word splitter for ``name``; None (split at spaces and CJK characters) when it has none."""
        if name not in self._languages:
            return None
        package = _SPLITTER_PACKAGES.get(str(name))
        if package and importlib.util.find_spec(package) is None:
            return None
        return name

    def align(
        self,
        audios: Sequence[np.ndarray],
        texts: Sequence[str],
        languages: Sequence[str | None],
        batch_size: int,
    ) -> list[tuple[Word, ...]]:
        """One tuple of words per input; empty texts and over-long clips get no words."""
        import torch

        from callscribe.engines.qwen3_aligner import ALIGNER_MAX_S, to_words

        out: list[tuple[Word, ...]] = [() for _ in audios]
        limit = int(ALIGNER_MAX_S * SAMPLE_RATE)
        todo = [i for i, (a, t) in enumerate(zip(audios, texts, strict=True)) if t.strip() and len(a) <= limit]
        step = max(1, batch_size)
        for k in range(0, len(todo), step):
            part = todo[k : k + step]
            inputs, words = self.processor.prepare_forced_aligner_inputs(
                audio=[np.asarray(audios[i], dtype=np.float32) for i in part],
                transcript=[texts[i] for i in part],
                language=[self._language(languages[i]) for i in part],
            )
            inputs.pop("num_audio_tokens", None)
            inputs = inputs.to(self.model.device)
            inputs["input_features"] = inputs["input_features"].to(self.model.dtype)
            with torch.inference_mode():
                logits = self.model(**inputs).logits
            items = self.processor.decode_forced_alignment(
                logits, inputs["input_ids"], words, timestamp_token_id=self.model.config.timestamp_token_id
            )
            for i, found in zip(part, items, strict=True):
                out[i] = to_words(found, len(audios[i]) / SAMPLE_RATE)
        return out
