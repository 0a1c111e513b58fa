"""``openai``: OpenAI-compatible servers (``vllm serve Qwen/Qwen3-ASR-1.7B``, or any ``/v1/audio/transcriptions``).

Each clip goes up as a 16 kHz mono WAV built in memory. At most ``concurrency`` requests are in flight, spread
round-robin over one or more servers (``base_url`` may list several, comma-separated).

Which endpoint: a server whose ``/v1/models`` entry (id or root) names Qwen3-ASR is spoken to through
``/v1/chat/completions`` (:mod:`callscribe.engines.openai_qwen`): context as the system message, a forced language
as the start of the answer, an output budget from the clip's length. Other servers get
``/v1/audio/transcriptions`` with ``language`` and ``to_language``, the context as ``prompt``, and ``verbose_json``
first (then ``json``, then ``text``; the engine remembers what worked). ``EngineOptions.extra["openai_api"]`` or
the ``api`` argument (``chat`` / ``transcriptions``) overrides the choice.

Runaway output (a phrase looping to the end, or a cut-off answer) and a read timeout are not retried as they were
sent: the clip is split once at its quietest point and both halves are heard with their own smaller budgets;
what is still bad is cut to one pass of its loop (or left empty after a timeout) and flagged, never failing the
call. Connection errors, 429 and 5xx are retried with backoff; any other 4xx is an :class:`EngineError` carrying
the server's message.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from callscribe.engines.base import (
    SAMPLE_RATE,
    Clip,
    EngineError,
    EngineOptions,
    EngineResult,
    EngineSegment,
    register,
)
from callscribe.engines.openai_http import (
    BACKOFF_S,
    ENV_BASE_URL,
    RETRIES,
    TIMEOUT_S,
    Stalled,
    Transport,
    base_urls,
    wav_bytes,
)
from callscribe.engines.openai_qwen import (
    budget,
    chat_request,
    choose_api,
    context_dropped_note,
    cut_loop,
    parse_chat,
    serves_qwen_asr,
    word_times_note,
)
from callscribe.engines.openai_reply import parse_reply, strip_language_tag
from callscribe.engines.qwen3_lang import language_code, language_name
from callscribe.engines.qwen3_recover import quietest_split
from callscribe.model import Word

log = logging.getLogger("callscribe")

FALLBACK_MODEL = "Qwen/Qwen3-ASR-1.7B"
RESPONSE_FORMATS = ("verbose_json", "json", "text")
# Words that show a 400 is about the response format rather than the request itself.
_FORMAT_WORDS = ("response_format", "verbose_json")
# Clips at least this long are split in two when their output runs away or times out (as the qwen3 engine does).
MIN_SPLIT_S = 2.0


@dataclass(frozen=True)
class _Heard:
    """What one request made of a stretch of audio (times relative to that stretch)."""

    segments: tuple[EngineSegment, ...]
    language: str | None
    truncated: bool = False  # the answer hit the output budget
    looped: bool = False  # the answer ended in a loop (already cut to one pass)
    timed_out: bool = False  # no answer within the read timeout (no text)

    @property
    def bad(self) -> bool:
        return self.truncated or self.looped or self.timed_out

    def flags(self) -> list[str]:
        pairs = (("truncated", self.truncated), ("repetition", self.looped), ("timeout", self.timed_out))
        return [name for name, on in pairs if on]


Hear = Callable[[Clip, np.ndarray], _Heard]


class OpenAIEngine:
    name = "openai"

    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        concurrency: int = 4,
        timeout_s: float = TIMEOUT_S,
        retries: int = RETRIES,
        backoff_s: float = BACKOFF_S,
        api: str | None = None,
    ) -> None:
        self.urls = base_urls(base_url)
        if not self.urls:
            raise EngineError(f"openai: no server configured (pass --base-url or set {ENV_BASE_URL})")
        self.api = choose_api(api, "engine argument")
        self.concurrency = max(1, concurrency)
        self.http = Transport(self.urls, self.concurrency, timeout_s, retries, backoff_s)
        self._lock = threading.Lock()
        self._format = 0  # index into RESPONSE_FORMATS: the richest format the servers accepted
        self.model, self.qwen_asr = self._discover(model)

    def describe(self) -> str:
        return f"openai {self.model} @ {', '.join(self.urls)} (concurrency {self.concurrency})"

    def close(self) -> None:
        self.http.close()

    def _discover(self, model: str | None) -> tuple[str, bool]:
        """The served model (the first one listed, vLLM serves one) and whether it is Qwen3-ASR."""
        if model and self.api != "auto":
            return model, serves_qwen_asr(None, model)
        entries = self.http.models()
        if not model:
            model = str(entries[0]["id"]) if entries else FALLBACK_MODEL
            if not entries:
                log.warning("openai: using model name %s", model)
        entry = next((e for e in entries if e.get("id") == model), None)
        qwen = serves_qwen_asr(entry, model)
        if qwen:
            log.info("openai: %s serves Qwen3-ASR (%s): using /v1/chat/completions", self.urls[0], model)
        return model, qwen

    def api_for(self, options: EngineOptions) -> str:
        """``chat`` or ``transcriptions`` for this call."""
        api = choose_api(options.extra.get("openai_api", self.api), "EngineOptions.extra")
        if api == "auto":
            return "chat" if self.qwen_asr else "transcriptions"
        return api

    # -- one call -------------------------------------------------------------------------------------------------
    def transcribe(self, clips: Sequence[Clip], options: EngineOptions) -> list[EngineResult]:
        api = self.api_for(options)
        hear = self._chat_hearing(options) if api == "chat" else self._transcription_hearing(options)
        results: list[EngineResult] = [EngineResult(segments=()) for _ in clips]
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="callscribe-openai") as pool:
            futures: dict[int, Future[EngineResult]] = {
                i: pool.submit(self._one, clip, hear) for i, clip in enumerate(clips) if len(clip.audio)
            }
            try:
                for i, future in futures.items():
                    results[i] = future.result()
            except BaseException:
                for future in futures.values():
                    future.cancel()
                raise
        notes = self._notes(api, options, results)
        if notes:
            results = [replace(r, notes=notes) for r in results]
        return results

    def _one(self, clip: Clip, hear: Hear) -> EngineResult:
        """One clip, with one split retry when its answer runs away or never comes."""
        audio = np.asarray(clip.audio, dtype=np.float32).reshape(-1)
        first = hear(clip, audio)
        flags = first.flags()
        pieces = [(0, first)]
        if first.bad and len(audio) >= MIN_SPLIT_S * SAMPLE_RATE:
            cut = quietest_split(audio)
            log.info("openai: clip %s@%.2fs came back %s; hearing it in two halves", clip.call_id, clip.start, flags)
            pieces = [(0, hear(clip, audio[:cut])), (cut, hear(clip, audio[cut:]))]
            flags.append("split-retry")
            flags += [f for _, h in pieces for f in h.flags() if f not in flags]
        if any(h.bad for _, h in pieces):
            flags.append("unresolved")
        segments = []
        for offset, heard in pieces:
            base = offset / SAMPLE_RATE
            for s in heard.segments:
                words = tuple(Word(w.text, round(base + w.start, 3), round(base + w.end, 3)) for w in s.words)
                start, end = round(base + s.start, 3), round(base + s.end, 3)
                segments.append(EngineSegment(start, end, s.text, words, s.confidence))
        language = next((h.language for _, h in pieces if h.language), first.language)
        return EngineResult(segments=tuple(segments), language=language, flags=tuple(flags))

    def _notes(self, api: str, options: EngineOptions, results: list[EngineResult]) -> tuple[str, ...]:
        """Say so when word times were asked for and the server cannot give them, and when a context (glossary)
        cannot reach a Qwen3-ASR model through ``/v1/audio/transcriptions`` (vLLM drops ``prompt`` there)."""
        urls = ", ".join(self.urls)
        notes: list[str] = []
        if api == "transcriptions" and self.qwen_asr and _context(options):
            notes.append(context_dropped_note(urls))
        if options.timestamps != "word":
            return tuple(notes)
        if api == "chat":
            notes.append(word_times_note(urls))
        elif self._format > 0:
            hint = "; use --engine qwen3 for word times" if self.qwen_asr else ""
            notes.append(f"word times unavailable: {urls} refused response_format=verbose_json (text only){hint}")
        elif any(s.text and not s.words for r in results for s in r.segments):
            notes.append(f"word times unavailable: {urls} returned segments without word times")
        return tuple(notes)

    # -- Qwen3-ASR through /v1/chat/completions ------------------------------------------------------------------------
    def _chat_hearing(self, options: EngineOptions) -> Hear:
        try:
            forced = language_name(options.language)
        except EngineError as exc:
            why = str(exc).removeprefix("qwen3: ")
            raise EngineError(f"openai: {', '.join(self.urls)} serves Qwen3-ASR: {why}") from None
        forced_code = language_code(forced)
        context = _context(options)
        extra = options.extra
        timeout = _timeout(extra)

        def hear(clip: Clip, audio: np.ndarray) -> _Heard:
            seconds = len(audio) / SAMPLE_RATE
            body = chat_request(self.model, wav_bytes(audio), context, forced, budget(seconds, extra))
            try:
                answer = self.http.post("/chat/completions", json=body, timeout_s=timeout)
            except Stalled as exc:
                log.warning("openai: clip %s@%.2fs: %s", clip.call_id, clip.start, exc)
                return _Heard((), forced_code, timed_out=True)
            if answer.status != 200:
                raise _refused(answer.url, clip, answer.status, answer.message)
            reply = parse_chat(answer.body, answer.url, forced is not None)
            text, looped = cut_loop(reply.text)
            segments = (EngineSegment(0.0, round(seconds, 3), text),) if text else ()
            truncated = reply.finish_reason == "length"
            return _Heard(segments, forced_code or reply.language, truncated=truncated, looped=looped)

        return hear

    # -- /v1/audio/transcriptions -------------------------------------------------------------------------------------
    def _transcription_hearing(self, options: EngineOptions) -> Hear:
        fields: dict[str, Any] = {"model": self.model, "temperature": "0"}
        if options.language:
            # vLLM reads ``to_language`` (it builds Qwen3-ASR's language prefix from it); OpenAI and others read
            # ``language``.
            fields["language"] = options.language
            fields["to_language"] = options.language
        context = _context(options)
        if context:
            fields["prompt"] = context
        word_times = options.timestamps == "word"
        extra = options.extra
        timeout = _timeout(extra)

        def hear(clip: Clip, audio: np.ndarray) -> _Heard:
            seconds = len(audio) / SAMPLE_RATE
            payload = wav_bytes(audio)
            data = dict(fields)
            if self.qwen_asr:  # vLLM's transcription endpoint takes an output limit too
                data["max_completion_tokens"] = str(budget(seconds, extra))
            while True:
                level = self._format
                data["response_format"] = RESPONSE_FORMATS[level]
                data.pop("timestamp_granularities[]", None)
                if word_times and level == 0:
                    data["timestamp_granularities[]"] = ["word", "segment"]
                files = {"file": (f"{clip.call_id}-{clip.index}.wav", payload, "audio/wav")}
                try:
                    answer = self.http.post(
                        "/audio/transcriptions", data=data, files=files, as_text=level == 2, timeout_s=timeout
                    )
                except Stalled as exc:
                    log.warning("openai: clip %s@%.2fs: %s", clip.call_id, clip.start, exc)
                    return _Heard((), options.language, timed_out=True)
                if answer.status == 200:
                    return _transcribed(answer.body, seconds, options.language)
                if level + 1 < len(RESPONSE_FORMATS) and any(w in answer.message.lower() for w in _FORMAT_WORDS):
                    with self._lock:
                        if self._format == level:
                            refused = data["response_format"]
                            log.info("openai: %s rejects response_format=%s (%s)", answer.url, refused, answer.message)
                            self._format = level + 1
                    continue
                raise _refused(answer.url, clip, answer.status, answer.message)

        return hear


def _transcribed(body: Any, seconds: float, forced: str | None) -> _Heard:
    reply = parse_reply(body, seconds)
    segments = reply.segments
    text, looped = cut_loop(reply.text)
    if looped:  # one segment with the loop cut; the server's times and words inside the loop mean nothing
        segments = (EngineSegment(0.0, round(seconds, 3), text),) if text else ()
    return _Heard(segments, reply.language or forced, looped=looped)


def _context(options: EngineOptions) -> str:
    """What the model is told before it listens: ``extra["context"]`` and the hotwords."""
    extra_context = str(options.extra.get("context", "")).strip()
    return "\n".join(p for p in (extra_context, ", ".join(options.hotwords)) if p)


def _timeout(extra: dict[str, Any]) -> float | None:
    value = extra.get("timeout_s")
    return float(value) if value else None


def _refused(url: str, clip: Clip, status: int, message: str) -> EngineError:
    return EngineError(f"openai: {url} refused clip {clip.call_id}@{clip.start:.2f}s: HTTP {status}: {message}")


def _available(model: str | None = None, base_url: str | None = None, **_: Any) -> tuple[bool, str]:
    urls = base_urls(base_url)
    if not urls:
        return False, f"no server configured (pass --base-url or set {ENV_BASE_URL})"
    return True, f"server(s) {', '.join(urls)}"


@register("openai", availability=_available)
def create_openai(
    model: str | None = None,
    device: str = "auto",
    compute_type: str = "auto",
    threads: int = 0,
    hub: str = "huggingface",
    base_url: str | None = None,
    concurrency: int = 4,
    batch_size: int = 8,
    timeout_s: float = TIMEOUT_S,
    retries: int = RETRIES,
    backoff_s: float = BACKOFF_S,
    api: str | None = None,
    **_ignored: Any,
) -> OpenAIEngine:
    return OpenAIEngine(
        base_url=base_url,
        model=model,
        concurrency=concurrency,
        timeout_s=timeout_s,
        retries=retries,
        backoff_s=backoff_s,
        api=api,
    )


__all__ = [
    "ENV_BASE_URL",
    "OpenAIEngine",
    "base_urls",
    "create_openai",
    "parse_reply",
    "strip_language_tag",
    "wav_bytes",
]
