"""``qwen3``: Qwen3-ASR in this process, batched over our clips, for both checkpoint layouts.

The model comes from a Hugging Face id (default ``Qwen/Qwen3-ASR-1.7B``), a ModelScope id (``hub="modelscope"``) or
a local folder. Its layout picks the library (:mod:`callscribe.engines.qwen3_load`): the original checkpoints run
through qwen-asr, the transformers-native ``-hf`` ones (``Qwen/Qwen3-ASR-1.7B-hf``) through transformers >= 5.13;
the library-specific parts sit behind :class:`callscribe.engines.qwen3_backend.Backend`. Clips are bucketed by
length and generated in batches of ``batch_size`` (0 / None: chosen for the device) with an output budget sized from
the audio length; a cut-off or looping output is retried (split at the quietest point, then a repetition penalty on
the generated tokens only, never on the prompt's hotwords) and flagged; a row whose logits turned NaN in a batch is
decoded again alone (``nan-batch``). Hotwords become the model's context (system prompt). ``timestamps="word"`` adds
word / character times from Qwen3-ForcedAligner (the aligner of the same layout by default).

``EngineOptions.extra`` keys: ``context`` (free text put before the hotwords), ``aligner`` (aligner id or folder),
``tokens_per_second`` / ``token_margin`` / ``max_new_tokens`` (the output budget), ``force_length`` (generate exactly
the budget: for benchmarks), ``recover`` (``False`` turns retries off), ``cache_implementation`` (e.g. ``static``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from callscribe.engines.base import (
    SAMPLE_RATE,
    Clip,
    EngineOptions,
    EngineResult,
    EngineSegment,
    register,
)
from callscribe.engines.qwen3_aligner import DEFAULT_ALIGNERS, load_aligner
from callscribe.engines.qwen3_backend import MAX_NEW_TOKENS, AlignerLike, Backend, load_backend, pad_to_min
from callscribe.engines.qwen3_lang import language_code, language_name
from callscribe.engines.qwen3_load import (
    DEFAULT_MODEL,
    available,
    folder_layout,
    model_layout,
    require_library,
    resolve_model,
    torch_setup,
)
from callscribe.engines.qwen3_logits import confidence_recorder, generated_only_penalty
from callscribe.engines.qwen3_recover import find_loop, quietest_split
from callscribe.model import Word

log = logging.getLogger("callscribe")

# Output budget: speech runs at about 3-5 tokens a second; twice that plus a margin only cuts off runaway output.
TOKENS_PER_SECOND = 10.0
TOKEN_MARGIN = 24
# Shorter audio is zero-padded to this (the model's own minimum input).
MIN_INPUT_S = 0.5
# Clips at least this long are split in two when their output runs away; shorter ones get a repetition penalty.
MIN_SPLIT_S = 2.0
REPETITION_PENALTY = 1.2
# batch_size 0 / None: qwen3_batch.auto_batch_size sizes batches of clips this long (fallbacks where it fails).
AUTO_BATCH_CLIP_S = 30.0
AUTO_BATCH_CUDA = 8
AUTO_BATCH_CPU = 4


@dataclass
class Qwen3Stats:
    """Counters the engine keeps across calls (benchmarks and the pipeline's timings read them)."""

    batches: int = 0
    items: int = 0  # audio pieces generated, retries included
    audio_s: float = 0.0
    new_tokens: int = 0
    prepare_s: float = 0.0  # features + tokenising
    generate_s: float = 0.0  # audio encoder + decoder
    align_s: float = 0.0
    retries: int = 0


@dataclass
class _Decoded:
    text: str
    language: str | None
    truncated: bool
    looped: bool
    confidence: float | None
    nan_batch: bool = False  # its logits turned NaN in a batch: decoded again alone

    @property
    def bad(self) -> bool:
        return self.truncated or self.looped


@dataclass
class _Piece:
    """A stretch of a clip (all of it unless a split retry cut it) and what the model made of it."""

    offset: int  # samples from the clip start
    audio: np.ndarray
    decoded: _Decoded
    words: tuple[Word, ...] = ()


@dataclass
class _ClipWork:
    pieces: list[_Piece]
    flags: list[str] = field(default_factory=list)

    def flag(self, name: str) -> None:
        if name not in self.flags:
            self.flags.append(name)


class Qwen3Engine:
    name = "qwen3"

    def __init__(
        self,
        model: str | None = None,
        device: str = "auto",
        compute_type: str = "auto",
        threads: int = 0,
        hub: str = "huggingface",
        batch_size: int | None = 8,
        aligner: str | None = None,
        attn_implementation: str = "sdpa",
    ) -> None:
        self.model_name = model or DEFAULT_MODEL
        self.hub = hub
        path = resolve_model(model, hub)
        folder = Path(path)
        self.layout = folder_layout(folder) if folder.is_dir() else model_layout(path, hub)
        require_library(self.layout, f"{path} ({self.layout} layout)")
        self.device, self.dtype = torch_setup(device, compute_type, threads)
        self.aligner_name = aligner
        self._aligner: AlignerLike | None = None
        self.stats = Qwen3Stats()
        self.backend: Backend = load_backend(
            self.layout, path, self.device, self.dtype, max(1, batch_size or AUTO_BATCH_CUDA), attn_implementation
        )
        self.batch_size = batch_size if batch_size and batch_size > 0 else self._auto_batch_size()
        log.info(
            "qwen3: loaded %s (%s layout) on %s (%s), batch %d",
            path,
            self.layout,
            self.device,
            str(self.dtype).replace("torch.", ""),
            self.batch_size,
        )

    @property
    def asr(self) -> Any:
        """qwen-asr's ``Qwen3ASRModel`` (qwen-asr layout only; :attr:`backend` covers both layouts)."""
        found = getattr(self.backend, "asr", None)
        if found is None:
            raise AttributeError(f"qwen3: a {self.layout}-layout model has no qwen-asr wrapper; use .backend")
        return found

    def batch_config(self) -> dict[str, Any]:
        """The loaded model's config as config.json holds it (either layout): what batch sizing reads."""
        return dict(self.backend.model.config.to_dict())

    def _auto_batch_size(self) -> int:
        fallback = AUTO_BATCH_CUDA if self.device.startswith("cuda") else AUTO_BATCH_CPU
        try:
            from callscribe.engines.qwen3_batch import auto_batch_size
        except ImportError:
            log.info("qwen3: no automatic batch sizing here; batch %d", fallback)
            return fallback
        try:
            rows = auto_batch_size(
                self.batch_config(),
                self.device,
                self.budget(AUTO_BATCH_CLIP_S, {}),
                AUTO_BATCH_CLIP_S,
                dtype_bytes=int(getattr(self.dtype, "itemsize", 2)),
            )
        except ValueError as exc:
            log.warning("qwen3: cannot size batches from the model config (%s); batch %d", exc, fallback)
            return fallback
        return max(1, int(rows))

    def describe(self) -> str:
        return f"qwen3 {self.model_name} ({self.device}, {str(self.dtype).replace('torch.', '')})"

    def prompt(self, context: str, language: str | None) -> str:
        """The text prompt for one clip, built with the model's chat template (system = context)."""
        return self.backend.prompt(context, language)

    def transcribe(self, clips: Sequence[Clip], options: EngineOptions) -> list[EngineResult]:
        forced = language_name(options.language)
        extra = options.extra
        context = "\n".join(p for p in (str(extra.get("context", "")).strip(), ", ".join(options.hotwords)) if p)
        prompt = self.prompt(context, forced)
        batch = max(1, options.batch_size or self.batch_size)
        all_audio = [np.asarray(c.audio, dtype=np.float32).reshape(-1) for c in clips]
        audios = [a for a in all_audio if len(a)]  # empty clips get an empty result without a model call
        first = self._generate(audios, prompt, forced, extra, batch, penalty=None)
        work = [_ClipWork(pieces=[_Piece(0, a, d)]) for a, d in zip(audios, first, strict=True)]
        for w in work:
            d = w.pieces[0].decoded
            if d.truncated:
                w.flag("truncated")
            if d.looped:
                w.flag("repetition")
            if d.nan_batch:
                w.flag("nan-batch")
        if extra.get("recover", True):
            self._recover(work, prompt, forced, extra, batch)
        if options.timestamps == "word":
            self._align(work, forced, extra, batch)
        done = iter(self._result(w, forced) for w in work)
        return [next(done) if len(a) else EngineResult(segments=()) for a in all_audio]

    def _recover(
        self, work: list[_ClipWork], prompt: str, forced: str | None, extra: dict[str, Any], batch: int
    ) -> None:
        # 1) Split long clips at their quietest point and transcribe both halves.
        to_split = [w for w in work if w.pieces[0].decoded.bad and len(w.pieces[0].audio) >= MIN_SPLIT_S * SAMPLE_RATE]
        halves: list[np.ndarray] = []
        for w in to_split:
            cut = quietest_split(w.pieces[0].audio)
            halves += [w.pieces[0].audio[:cut], w.pieces[0].audio[cut:]]
        if to_split:
            self.stats.retries += len(halves)
            decoded = self._generate(halves, prompt, forced, extra, batch, penalty=None)
            for k, w in enumerate(to_split):
                left, right = halves[2 * k], halves[2 * k + 1]
                w.pieces = [_Piece(0, left, decoded[2 * k]), _Piece(len(left), right, decoded[2 * k + 1])]
                w.flag("split-retry")
        # 2) Whatever is still cut off or looping gets one retry with a repetition penalty.
        bad = [(w, i) for w in work for i, p in enumerate(w.pieces) if p.decoded.bad]
        if bad:
            self.stats.retries += len(bad)
            audios = [w.pieces[i].audio for w, i in bad]
            again = self._generate(audios, prompt, forced, extra, batch, REPETITION_PENALTY)
            for (w, i), d in zip(bad, again, strict=True):
                w.flag("penalty-retry")
                old = w.pieces[i].decoded
                if not d.bad or (old.looped and not d.looped):
                    w.pieces[i].decoded = d
        for w in work:
            if any(p.decoded.bad for p in w.pieces):
                w.flag("unresolved")

    def _align(self, work: list[_ClipWork], forced: str | None, extra: dict[str, Any], batch: int) -> None:
        started = time.perf_counter()
        pieces = [p for w in work for p in w.pieces]
        aligner = self._get_aligner(extra)
        languages = [forced or _lang_name(p.decoded.language) for p in pieces]
        words = aligner.align([p.audio for p in pieces], [p.decoded.text for p in pieces], languages, batch)
        for p, ws in zip(pieces, words, strict=True):
            p.words = ws
        self.stats.align_s += time.perf_counter() - started

    def _get_aligner(self, extra: dict[str, Any]) -> AlignerLike:
        name = str(extra.get("aligner") or self.aligner_name or DEFAULT_ALIGNERS[self.layout])
        if self._aligner is None or self._aligner.path != name:
            self._aligner = load_aligner(resolve_model(name, self.hub), name, self.device, self.dtype)
        return self._aligner

    def _result(self, w: _ClipWork, forced: str | None) -> EngineResult:
        segments = []
        for p in w.pieces:
            text = p.decoded.text.strip()
            if not text:
                continue
            base = p.offset / SAMPLE_RATE
            words = tuple(Word(x.text, round(base + x.start, 3), round(base + x.end, 3)) for x in p.words)
            start, end = base, base + len(p.audio) / SAMPLE_RATE
            if words and words[-1].end > words[0].start:  # the aligned words give a tighter span
                start, end = words[0].start, words[-1].end
            segments.append(EngineSegment(round(start, 3), round(end, 3), text, words, p.decoded.confidence))
        detected = next((p.decoded.language for p in w.pieces if p.decoded.language), None)
        language = language_code(forced) if forced else detected
        return EngineResult(segments=tuple(segments), language=language, flags=tuple(w.flags))

    def budget(self, seconds: float, extra: dict[str, Any]) -> int:
        """``max_new_tokens`` for a clip of ``seconds``."""
        rate = float(extra.get("tokens_per_second", TOKENS_PER_SECOND))
        margin = int(extra.get("token_margin", TOKEN_MARGIN))
        cap = int(extra.get("max_new_tokens", MAX_NEW_TOKENS))
        return max(1, min(cap, math.ceil(seconds * rate) + margin))

    def _generate(
        self,
        audios: Sequence[np.ndarray],
        prompt: str,
        forced: str | None,
        extra: dict[str, Any],
        batch: int,
        penalty: float | None,
    ) -> list[_Decoded]:
        """Generate for every audio: bucketed by length (longest first), ``batch`` at a time."""
        out: list[_Decoded | None] = [None] * len(audios)
        order = sorted(range(len(audios)), key=lambda i: -len(audios[i]))
        for k in range(0, len(order), batch):
            idx = order[k : k + batch]
            decoded = self._generate_batch([audios[i] for i in idx], prompt, forced, extra, penalty)
            for i, d in zip(idx, decoded, strict=True):
                out[i] = d
        return [d for d in out if d is not None]

    def _generate_batch(
        self, audios: list[np.ndarray], prompt: str, forced: str | None, extra: dict[str, Any], penalty: float | None
    ) -> list[_Decoded]:
        import torch

        started = time.perf_counter()
        padded = pad_to_min(audios, MIN_INPUT_S)
        seconds = max(len(a) for a in padded) / SAMPLE_RATE
        budget = self.budget(seconds, extra)
        inputs = self.backend.inputs([prompt] * len(padded), padded)
        prompt_length = int(inputs["input_ids"].shape[1])
        prepared = time.perf_counter()
        recorder = confidence_recorder()
        # The penalty (retries only) sees the generated tokens alone; the recorder reads the final scores.
        processors = [generated_only_penalty(penalty, prompt_length)] if penalty else []
        kwargs: dict[str, Any] = {
            "max_new_tokens": budget,
            "eos_token_id": self.backend.eos_ids,
            "pad_token_id": self.backend.pad_id,
            "do_sample": False,
            "logits_processor": [*processors, recorder],
        }
        if extra.get("force_length"):
            kwargs["min_new_tokens"] = budget
        if extra.get("cache_implementation"):
            kwargs["cache_implementation"] = extra["cache_implementation"]
        with torch.inference_mode():
            sequences = self.backend.generate(inputs, **kwargs)
        new = sequences[:, prompt_length:].tolist()
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        finished = time.perf_counter()
        results = [self._decode(row, r, budget, forced, recorder) for r, row in enumerate(new)]
        for r in recorder.nan_rows() if len(audios) > 1 else []:
            log.warning("qwen3: NaN logits in row %d of a batch of %d; decoding it alone", r, len(audios))
            (results[r],) = self._generate_batch([audios[r]], prompt, forced, extra, penalty)
            results[r].nan_batch = True
        self.stats.batches += 1
        self.stats.items += len(audios)
        self.stats.audio_s += sum(len(a) for a in audios) / SAMPLE_RATE
        self.stats.prepare_s += prepared - started
        self.stats.generate_s += finished - prepared
        return results

    def _decode(self, row: list[int], r: int, budget: int, forced: str | None, recorder: Any) -> _Decoded:
        eos = self.backend.eos_ids
        ends = [row.index(e) for e in eos if e in row]
        tokens = row[: min(ends)] if ends else row
        self.stats.new_tokens += len(tokens)
        truncated = not ends and len(row) >= budget
        loop = find_loop(tokens)
        if loop is not None:
            tokens = tokens[: loop.keep()]
        name, text = self.backend.parse(tokens, forced)
        return _Decoded(
            text=text.strip(),
            language=language_code(name),
            truncated=truncated,
            looped=loop is not None,
            confidence=recorder.confidence(r, len(tokens)),
        )


def _lang_name(code: str | None) -> str | None:
    return language_name(code) if code else None


@register("qwen3", availability=available)
def create_qwen3(
    model: str | None = None,
    device: str = "auto",
    compute_type: str = "auto",
    threads: int = 0,
    hub: str = "huggingface",
    base_url: str | None = None,
    concurrency: int = 4,
    batch_size: int | None = 8,
    aligner: str | None = None,
    **_ignored: Any,
) -> Qwen3Engine:
    return Qwen3Engine(
        model=model,
        device=device,
        compute_type=compute_type,
        threads=threads,
        hub=hub,
        batch_size=batch_size,
        aligner=aligner,
        attn_implementation=str(_ignored.get("attn_implementation", "sdpa")),
    )


__all__ = ["DEFAULT_MODEL", "Qwen3Engine", "Qwen3Stats", "create_qwen3", "resolve_model"]
