"""Webhooks: a JSON POST to the configured URL when a call job finishes, signed when a secret is set.

Body: ``{"type": "job.done" | "job.failed", "job": {...}}``. Headers: ``X-Callscribe-Event`` (the type) and, with a
secret, ``X-Callscribe-Signature: sha256=<hex HMAC-SHA256 of the body>``. Delivery is best effort, off the request
path: up to :data:`ATTEMPTS` tries with a growing pause on a network error or a 5xx answer; what still fails is
logged. The URL comes from the server's settings, never from a request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx

log = logging.getLogger("callscribe.server")

ATTEMPTS = 3
PAUSE_S = 1.0
TIMEOUT_S = 10.0


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Webhooks:
    def __init__(self, url: str, secret: str | None = None) -> None:
        self.url = url
        self.secret = secret
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="callscribe-webhook")
        self._client = httpx.Client(timeout=TIMEOUT_S, follow_redirects=False)

    def send(self, event: str, data: dict[str, Any]) -> Future[bool]:
        body = json.dumps({"type": event, **data}, ensure_ascii=False, default=str).encode()
        return self._pool.submit(self._deliver, event, body)

    def _deliver(self, event: str, body: bytes) -> bool:
        headers = {"Content-Type": "application/json", "X-Callscribe-Event": event}
        if self.secret:
            headers["X-Callscribe-Signature"] = signature(self.secret, body)
        why = ""
        for attempt in range(ATTEMPTS):
            if attempt:
                time.sleep(PAUSE_S * 2 ** (attempt - 1))
            try:
                r = self._client.post(self.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                why = f"{type(exc).__name__}: {exc}"
                continue
            if r.status_code < 500:
                if r.status_code >= 400:
                    log.warning("webhook %s refused with %d", event, r.status_code)
                return r.status_code < 400
            why = f"HTTP {r.status_code}"
        log.warning("webhook %s not delivered after %d tries: %s", event, ATTEMPTS, why)
        return False

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
        self._client.close()
