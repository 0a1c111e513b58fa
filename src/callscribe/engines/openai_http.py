"""HTTP for the ``openai`` engine: server URLs, in-memory WAV uploads, and POSTs with retries.

Connection errors, connect timeouts, 429 and 5xx are retried with exponential backoff and jitter (a numeric
``Retry-After`` is honoured). A *read* timeout is not retried: the server took the request and is still generating,
so sending the same request again only repeats the wait; the caller gets :class:`Stalled` and decides what to do.
"""

from __future__ import annotations

import io
import itertools
import logging
import os
import random
import time
import wave
from dataclasses import dataclass
from typing import Any

import numpy as np

from callscribe.engines.base import SAMPLE_RATE, EngineError

log = logging.getLogger("callscribe")

ENV_BASE_URL = "CALLSCRIBE_OPENAI_BASE_URL"
ENV_API_KEYS = ("CALLSCRIBE_OPENAI_API_KEY", "OPENAI_API_KEY")
TIMEOUT_S = 120.0
CONNECT_TIMEOUT_S = 10.0
RETRIES = 5
BACKOFF_S = 0.5
BACKOFF_MAX_S = 30.0
_MESSAGE_CHARS = 300


class Stalled(Exception):
    """A server took a request but sent no answer within the read timeout."""

    def __init__(self, url: str, seconds: float) -> None:
        super().__init__(f"{url} sent no answer within {seconds:g} s")
        self.url = url
        self.seconds = seconds


@dataclass(frozen=True)
class Answer:
    """A 200 (``body`` parsed: JSON, or the text when asked for or not JSON) or a status that is not retried."""

    status: int
    body: Any
    message: str
    url: str


def base_urls(base_url: str | None) -> list[str]:
    """``"http://a:8000, http://b:8000/v1"`` -> ``["http://a:8000/v1", "http://b:8000/v1"]``."""
    raw = base_url if base_url is not None else os.environ.get(ENV_BASE_URL, "")
    urls = []
    for part in raw.split(","):
        url = part.strip().rstrip("/")
        if url:
            urls.append(url if url.endswith("/v1") else url + "/v1")
    return urls


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


def server_message(response: Any) -> str:
    """The error text a server put in its response (OpenAI's ``{"error": {"message": ...}}`` and the like)."""
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


class Transport:
    """One pooled HTTP client for all servers; requests go round-robin over ``urls``."""

    def __init__(
        self,
        urls: list[str],
        concurrency: int,
        timeout_s: float = TIMEOUT_S,
        retries: int = RETRIES,
        backoff_s: float = BACKOFF_S,
    ) -> None:
        import httpx

        self.urls = urls
        self.timeout_s = timeout_s
        self.retries = max(0, retries)
        self.backoff_s = backoff_s
        key = next((os.environ[k] for k in ENV_API_KEYS if os.environ.get(k)), None)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=CONNECT_TIMEOUT_S),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )
        self._next = itertools.count()

    def close(self) -> None:
        self.client.close()

    def models(self) -> list[dict[str, Any]]:
        """The first server's ``/v1/models`` entries; ``[]`` (with a warning) when it cannot say."""
        import httpx

        url = self.urls[0] + "/models"
        try:
            response = self.client.get(url, timeout=CONNECT_TIMEOUT_S)
            if response.status_code != 200:
                log.warning("openai: %s answered HTTP %d: %s", url, response.status_code, server_message(response))
                return []
            data = response.json().get("data") or []
            return [d for d in data if isinstance(d, dict) and d.get("id")]
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            log.warning("openai: cannot list models at %s (%s)", url, exc)
            return []

    def post(
        self,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        files: dict[str, Any] | None = None,
        as_text: bool = False,
        timeout_s: float | None = None,
    ) -> Answer:
        """POST to the next server with retries; :class:`Stalled` on a read timeout, :class:`EngineError` when the
        retries run out."""
        import httpx

        read = timeout_s or self.timeout_s
        timeout = httpx.Timeout(read, connect=CONNECT_TIMEOUT_S)
        last = ""
        url = self.urls[0]
        for attempt in range(self.retries + 1):
            url = self.urls[next(self._next) % len(self.urls)]
            delay = min(BACKOFF_MAX_S, self.backoff_s * 2**attempt)
            try:
                response = self.client.post(url + path, json=json, data=data, files=files, timeout=timeout)
            except httpx.ReadTimeout:
                raise Stalled(url, read) from None
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                status = response.status_code
                if status == 200:
                    if as_text:
                        return Answer(200, response.text, "", url)
                    try:
                        return Answer(200, response.json(), "", url)
                    except ValueError:
                        return Answer(200, response.text, "", url)
                message = server_message(response)
                if status != 429 and status < 500:
                    return Answer(status, None, message, url)
                last = f"HTTP {status}: {message}"
                retry_after = response.headers.get("retry-after", "")
                if retry_after.replace(".", "", 1).isdigit():
                    delay = min(BACKOFF_MAX_S, float(retry_after))
            if attempt < self.retries:
                pause = delay / 2 + random.uniform(0, delay / 2)
                log.warning("openai: %s failed (%s); retry %d/%d in %.1fs", url, last, attempt + 1, self.retries, pause)
                time.sleep(pause)
        raise EngineError(f"openai: {url} failed after {self.retries + 1} attempts: {last}")


__all__ = ["Answer", "Stalled", "Transport", "base_urls", "server_message", "wav_bytes"]
