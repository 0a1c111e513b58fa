"""``openai``: any OpenAI-compatible ``/v1/audio/transcriptions`` server (``vllm serve Qwen/Qwen3-ASR-1.7B``...).

Each clip goes up as a 16 kHz mono WAV built in memory. At most ``concurrency`` requests are in flight, spread
round-robin over one or more servers (``base_url`` may list several, comma-separated). Connection errors, timeouts,
429 and 5xx are retried with exponential backoff and jitter; any other 4xx is an :class:`EngineError` carrying the
server's message. ``verbose_json`` (segments, words, language) is asked for first; a server that rejects that
format gets ``json``, then ``text``, and the engine remembers what worked.
"""

from __future__ import annotations

import io
import itertools
import logging
import math
import os
import random
import re
import threading
import time
import wave
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
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
from callscribe.engines.qwen3_lang import NAME_TO_CODE
from callscribe.model import Word

log = logging.getLogger("callscribe")

ENV_BASE_URL = "CALLSCRIBE_OPENAI_BASE_URL"
ENV_API_KEYS = ("CALLSCRIBE_OPENAI_API_KEY", "OPENAI_API_KEY")
FALLBACK_MODEL = "Qwen/Qwen3-ASR-1.7B"
TIMEOUT_S = 120.0
CONNECT_TIMEOUT_S = 10.0
RETRIES = 5
BACKOFF_S = 0.5
BACKOFF_MAX_S = 30.0
RESPONSE_FORMATS = ("verbose_json", "json", "text")
# Words that show a 400 is about the response format rather than the request itself.
_FORMAT_WORDS = ("response_format", "verbose_json")
_MESSAGE_CHARS = 300
# Qwen3-ASR served raw (e.g. by vLLM) starts its text with "language English<asr_text>".
_QWEN_TAG = re.compile(r"^\s*language\s+([A-Za-z,]+)\s*<asr_text>", re.IGNORECASE)


@dataclass(frozen=True)
class _Reply:
    """One parsed transcription response."""

    text: str
    language: str | None
    segments: tuple[EngineSegment, ...]


def base_urls(base_url: str | None) -> list[str]:
    """``"http://a:8000, http://b:8000/v1"`` -> ``["http://a:8000/v1", "http://b:8000/v1"]``."""
    raw = base_url if base_url is not None else os.environ.get(ENV_BASE_URL, "")
    urls = []
    for part in raw.split(","):
        url = part.strip().rstrip("/")
        if url:
            urls.append(url if url.endswith("/v1") else url + "/v1")
    return urls


def _available(model: str | None = None, base_url: str | None = None, **_: Any) -> tuple[bool, str]:
    urls = base_urls(base_url)
    if not urls:
        return False, f"no server configured (pass --base-url or set {ENV_BASE_URL})"
    return True, f"server(s) {', '.join(urls)}"


def wav_bytes(audio: np.ndarray) -> bytes:
    """16-bit PCM mono WAV at 16 kHz, in memory."""
    pcm = (np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0) * 32767.0).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def _server_message(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:_MESSAGE_CHARS] or response.reason_phrase
    if isinstance(body, dict):
        err = body.get("error", body.get("detail", body.get("message", body)))
        if isinstance(err, dict):
            err = err.get("message", err)
        return str(err)[:_MESSAGE_CHARS]
    return str(body)[:_MESSAGE_CHARS]


def _language(value: Any) -> str | None:
    if not value or not isinstance(value, str):
        return None
    v = value.strip().lower()
    return v if len(v) <= 3 else NAME_TO_CODE.get(v)


def _clamp(t: float, duration: float) -> float:
    """Server times kept inside the clip (some servers pad the audio and report times past its end)."""
    return round(min(max(t, 0.0), duration), 3)


def strip_language_tag(text: str) -> tuple[str | None, str]:
    """``"language English<asr_text>Hello"`` -> ``("en", "Hello")``; text without the tag is returned as it is."""
    match = _QWEN_TAG.match(text)
    if match is None:
        return None, text.strip()
    return _language(match.group(1).split(",")[0]), text[match.end() :].strip()


def parse_reply(body: Any, duration: float) -> _Reply:
    """A ``verbose_json`` / ``json`` body (dict) or ``text`` body (str) -> segments relative to the clip."""
    if isinstance(body, str):
        tagged, text = strip_language_tag(body)
        return _Reply(text, tagged, (EngineSegment(0.0, round(duration, 3), text),) if text else ())
    tagged, text = strip_language_tag(str(body.get("text", "")))
    words = []
    for w in body.get("words") or ():
        start = _clamp(float(w.get("start", 0.0)), duration)
        end = max(start, _clamp(float(w.get("end", 0.0)), duration))
        words.append(Word(str(w.get("word", "")).strip(), start, end))
    taken = 0  # words go to the first segment whose span holds their midpoint, in order
    segments: list[EngineSegment] = []
    raw_segments = body.get("segments") or ()
    for s in raw_segments:
        start = _clamp(float(s.get("start", 0.0)), duration)
        end = max(start, _clamp(float(s.get("end", duration)), duration))
        inside = tuple(w for w in words[taken:] if (w.start + w.end) / 2 <= end)
        taken += len(inside)
        logprob = s.get("avg_logprob")
        confidence = round(math.exp(float(logprob)), 4) if logprob is not None else None
        seg_text = strip_language_tag(str(s.get("text", "")))[1]
        if seg_text:
            segments.append(EngineSegment(start, end, seg_text, inside, confidence))
    if not raw_segments and text:
        start, end = (words[0].start, words[-1].end) if words else (0.0, round(duration, 3))
        segments.append(EngineSegment(start, end, text, tuple(words)))
    return _Reply(text, _language(body.get("language")) or tagged, tuple(segments))


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
    ) -> None:
        import httpx

        self.urls = base_urls(base_url)
        if not self.urls:
            raise EngineError(f"openai: no server configured (pass --base-url or set {ENV_BASE_URL})")
        self.concurrency = max(1, concurrency)
        self.retries = max(0, retries)
        self.backoff_s = backoff_s
        key = next((os.environ[k] for k in ENV_API_KEYS if os.environ.get(k)), None)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=CONNECT_TIMEOUT_S),
            limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency),
        )
        self._next = itertools.count()
        self._lock = threading.Lock()
        self._format = 0  # index into RESPONSE_FORMATS: the richest format the servers accepted
        self.model = model or self._served_model()

    def describe(self) -> str:
        return f"openai {self.model} @ {', '.join(self.urls)} (concurrency {self.concurrency})"

    def close(self) -> None:
        self.client.close()

    def _served_model(self) -> str:
        """The first model the server lists (vLLM serves one), else Qwen3-ASR's id."""
        import httpx

        try:
            response = self.client.get(self.urls[0] + "/models", timeout=CONNECT_TIMEOUT_S)
            if response.status_code == 200:
                data = response.json().get("data") or []
                if data:
                    return str(data[0]["id"])
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            log.warning("openai: cannot list models at %s (%s); using %s", self.urls[0], exc, FALLBACK_MODEL)
        return FALLBACK_MODEL

    def transcribe(self, clips: Sequence[Clip], options: EngineOptions) -> list[EngineResult]:
        extra_context = str(options.extra.get("context", "")).strip()
        context = "\n".join(p for p in (extra_context, ", ".join(options.hotwords)) if p)
        fields: dict[str, Any] = {"model": self.model, "temperature": "0"}
        if options.language:
            fields["language"] = options.language
        if context:
            fields["prompt"] = context
        word_times = options.timestamps == "word"
        results: list[EngineResult] = [EngineResult(segments=()) for _ in clips]
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="callscribe-openai") as pool:
            futures: dict[int, Future[EngineResult]] = {
                i: pool.submit(self._one, clip, fields, word_times) for i, clip in enumerate(clips) if len(clip.audio)
            }
            try:
                for i, future in futures.items():
                    results[i] = future.result()
            except BaseException:
                for future in futures.values():
                    future.cancel()
                raise
        return results

    def _one(self, clip: Clip, fields: dict[str, Any], word_times: bool) -> EngineResult:
        payload = wav_bytes(clip.audio)
        while True:
            level = self._format
            data = dict(fields, response_format=RESPONSE_FORMATS[level])
            if word_times and level == 0:
                data["timestamp_granularities[]"] = ["word", "segment"]
            status, body, message, url = self._post(data, payload, clip)
            if status == 200:
                reply = parse_reply(body, clip.duration)
                return EngineResult(segments=reply.segments, language=reply.language or fields.get("language"))
            if level + 1 < len(RESPONSE_FORMATS) and any(w in message.lower() for w in _FORMAT_WORDS):
                with self._lock:
                    if self._format == level:
                        log.info("openai: %s rejects response_format=%s (%s)", url, RESPONSE_FORMATS[level], message)
                        self._format = level + 1
                continue
            raise EngineError(f"openai: {url} refused clip {clip.call_id}@{clip.start:.2f}s: HTTP {status}: {message}")

    def _post(self, data: dict[str, Any], payload: bytes, clip: Clip) -> tuple[int, Any, str, str]:
        """POST with retries; returns (status, body, message, url) for 200 or a non-retryable status."""
        import httpx

        last = ""
        url = self.urls[0]
        for attempt in range(self.retries + 1):
            url = self.urls[next(self._next) % len(self.urls)]
            delay = min(BACKOFF_MAX_S, self.backoff_s * 2**attempt)
            try:
                response = self.client.post(
                    url + "/audio/transcriptions",
                    data=data,
                    files={"file": (f"{clip.call_id}-{clip.index}.wav", payload, "audio/wav")},
                )
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                status = response.status_code
                if status == 200:
                    is_text = data["response_format"] == "text"
                    try:
                        return 200, (response.text if is_text else response.json()), "", url
                    except ValueError:
                        return 200, response.text, "", url
                message = _server_message(response)
                if status != 429 and status < 500:
                    return status, None, message, url
                last = f"HTTP {status}: {message}"
                retry_after = response.headers.get("retry-after", "")
                if retry_after.replace(".", "", 1).isdigit():
                    delay = min(BACKOFF_MAX_S, float(retry_after))
            if attempt < self.retries:
                pause = delay / 2 + random.uniform(0, delay / 2)
                log.warning("openai: %s failed (%s); retry %d/%d in %.1fs", url, last, attempt + 1, self.retries, pause)
                time.sleep(pause)
        raise EngineError(f"openai: {url} failed after {self.retries + 1} attempts: {last}")


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
    **_ignored: Any,
) -> OpenAIEngine:
    return OpenAIEngine(
        base_url=base_url,
        model=model,
        concurrency=concurrency,
        timeout_s=timeout_s,
        retries=retries,
        backoff_s=backoff_s,
    )


__all__ = ["OpenAIEngine", "base_urls", "create_openai", "parse_reply", "strip_language_tag", "wav_bytes"]
