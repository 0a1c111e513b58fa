"""Webhooks: when a call job ends, a signed JSON POST to each of its URLs, delivered from a durable outbox.

A job's URLs: the server's ``--webhook-url``, the webhook of the API key that sent it (``callscribe keys create
--webhook``, see :mod:`callscribe.server.webhook_keys`) and the job's own ``webhook_url`` form field (accepted only
under a ``--webhook-allow`` prefix: :func:`check_url`). Each (job, URL) pair is one delivery, id
``<job id>-<12 hex of sha256(URL)>``, sent once.

Body ``{"type": "job.done" | "job.failed", "job": {...}}`` (the job as ``GET /v1/jobs/{id}`` shows it once it has
ended). Headers: ``X-Callscribe-Event`` (the type), ``X-Callscribe-Delivery`` (the delivery id) and, with a secret,
``X-Callscribe-Signature: sha256=<hex HMAC-SHA256 of the body>``.

Durable: the job runner writes the delivery records into ``<data>/webhooks/pending/`` (fsync, rename) *before* it
marks the job finished, and releases them after, so a server killed at any moment delivers at its next start. The
body is made at the first try from the finished job and kept in the record: every retry sends the same bytes. A
delivery answered 2xx moves to ``sent/`` (kept :data:`KEEP_SENT_S`; a delivery found there is never queued again);
one refused (3xx, or 4xx other than 408/429) or out of tries moves to ``failed/``. Network errors, 5xx, 408 and 429
are tried again, up to ``attempts`` tries, pausing ``backoff`` seconds, doubled after each try (at most
:data:`MAX_PAUSE_S`); each try is counted in the record before it is made, so the bound holds across restarts.

At least once: a server killed after the receiver answered and before the record moved sends it again at its
next start, with the same ``X-Callscribe-Delivery``; receivers drop ids they have seen.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from callscribe.outputs.writers import atomic_write_text

if TYPE_CHECKING:
    from callscribe.server.settings import Settings
    from callscribe.server.webhook_keys import KeyWebhooks

log = logging.getLogger("callscribe.server")

ATTEMPTS = 8
BACKOFF_S = 2.0
MAX_PAUSE_S = 600.0
TIMEOUT_S = 10.0
WORKERS = 4
KEEP_SENT_S = 30 * 86400.0
RETRY_STATUS = frozenset({408, 429})
MAX_URL = 2048
FOLDERS = ("pending", "sent", "failed")

# A finished job's event body ({"type", "job"}), None while the job has not ended; KeyError when it is gone.
Compose = Callable[[str], "dict[str, Any] | None"]


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def delivery_id(job_id: str, url: str) -> str:
    return f"{job_id}-{hashlib.sha256(url.encode()).hexdigest()[:12]}"


def _parts(url: str) -> tuple[str, str, int, str]:
    """``(scheme, host, port, path)`` of an http(s) URL; ValueError (one line) for anything else."""
    if len(url) > MAX_URL or any(c.isspace() or ord(c) < 32 for c in url):
        raise ValueError(f"not a usable URL: {url[:80]!r}")
    try:
        split = urlsplit(url)
        port = split.port
    except ValueError:
        raise ValueError(f"not a usable URL: {url[:80]!r}") from None
    if split.scheme not in ("http", "https") or not split.hostname:
        raise ValueError(f"not an http(s) URL: {url[:80]!r}")
    if "@" in split.netloc:
        raise ValueError(f"a webhook URL may not carry a user name or password: {url[:80]!r}")
    path = split.path or "/"
    if any(seg in ("..", ".") for seg in path.split("/")):
        raise ValueError(f"a webhook URL may not hold . or .. path segments: {url[:80]!r}")
    return split.scheme, split.hostname.lower(), port or (443 if split.scheme == "https" else 80), path


def check_url(url: str, allowed: Sequence[str] = ("*",)) -> str:
    """``url`` when it is an http(s) URL under one of ``allowed`` (``*``: any http(s) URL); one-line ValueError
    otherwise. A prefix matches on scheme, host and port exactly and on whole path segments
    (``http://h/hooks`` allows ``http://h/hooks`` and ``http://h/hooks/a``, not ``http://h/hooksx``)."""
    scheme, host, port, path = _parts(url.strip())
    if "*" in allowed:
        return url.strip()
    for prefix in allowed:
        p_scheme, p_host, p_port, p_path = _parts(prefix)
        base = p_path.rstrip("/")
        if (scheme, host, port) == (p_scheme, p_host, p_port) and (
            not base or path == base or path.startswith(base + "/")
        ):
            return url.strip()
    if not allowed:
        raise ValueError("this server takes no per-job webhook URLs (its operator can allow some with --webhook-allow)")
    raise ValueError(f"{url[:80]!r} is not under a webhook prefix this server allows")


@dataclass
class Delivery:
    id: str
    job_id: str
    url: str
    created_at: float
    attempts: int = 0
    next_at: float = 0.0
    event: str | None = None
    body: str | None = None
    last_error: str | None = None
    status: int | None = None
    finished_at: float | None = None


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class Webhooks:
    """The outbox and its delivery thread (see the module docstring)."""

    def __init__(
        self,
        folder: Path,
        secret: str | None = None,
        *,
        url: str | None = None,
        keys: KeyWebhooks | None = None,
        attempts: int = ATTEMPTS,
        backoff: float = BACKOFF_S,
        timeout: float = TIMEOUT_S,
    ) -> None:
        self.folder = Path(folder)
        self.secret = secret
        self.url = url
        self.keys = keys
        self.attempts = max(1, attempts)
        self.backoff = backoff
        for name in FOLDERS:
            (self.folder / name).mkdir(parents=True, exist_ok=True)
        self._cond = threading.Condition()
        self._heap: list[tuple[float, str]] = []
        self._records: dict[str, Delivery] = {}  # in pending/: scheduled, being tried, or waiting for their job
        self._busy: set[str] = set()
        self._compose: Compose | None = None
        self._closing = False
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="callscribe-webhook")
        self._client = httpx.Client(timeout=timeout, follow_redirects=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Webhooks:
        from callscribe.server.webhook_keys import KeyWebhooks

        return cls(
            settings.data_dir / "webhooks",
            settings.webhook_secret_value(),
            url=settings.webhook_url,
            keys=KeyWebhooks.in_data_dir(settings.data_dir),
            attempts=settings.webhook_attempts,
            backoff=settings.webhook_backoff,
        )

    # -- the job runner's side ----------------------------------------------------------------------------------
    def targets(self, payload: dict[str, Any]) -> list[str]:
        """A job's URLs: the server's, its key's, its own (each once)."""
        key_url = self.keys.url(str(payload["by"])) if self.keys is not None and payload.get("by") else None
        urls = (self.url, key_url, payload.get("webhook_url"))
        return list(dict.fromkeys(u for u in urls if u))

    def enqueue(self, job_id: str, urls: Iterable[str]) -> list[str]:
        """Record a delivery of ``job_id``'s end to each URL (durably, once per job and URL); they wait for
        :meth:`release`. Returns the ids recorded now."""
        added = []
        for url in dict.fromkeys(urls):
            did = delivery_id(job_id, url)
            with self._cond:
                if did in self._records or self._path("sent", did).exists() or self._path("failed", did).exists():
                    continue
            delivery = Delivery(did, job_id, url, created_at=time.time())
            self._save("pending", delivery)
            with self._cond:
                self._records[did] = delivery
            added.append(did)
        return added

    def release(self, job_id: str) -> None:
        """The job has ended: try its deliveries now."""
        with self._cond:
            for did, d in self._records.items():
                if d.job_id == job_id and did not in self._busy:
                    heapq.heappush(self._heap, (max(d.next_at, 0.0), did))
            self._cond.notify()

    def pending(self) -> int:
        with self._cond:
            return len(self._records)

    # -- life ---------------------------------------------------------------------------------------------------
    def start(self, compose: Compose) -> int:
        """Load what an earlier run left in ``pending/`` and start delivering. Returns how many were left."""
        self._compose = compose
        self._prune_sent()
        for name in FOLDERS:  # writes cut short by a killed process (the records they replaced are whole)
            for tmp in (self.folder / name).glob(".*.tmp"):
                tmp.unlink(missing_ok=True)
        left = 0
        for path in sorted((self.folder / "pending").glob("*.json")):
            try:
                delivery = Delivery(**json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, TypeError) as exc:
                log.error("webhook record %s unreadable (%s); moved to failed/", path.name, exc)
                os.replace(path, self.folder / "failed" / path.name)
                continue
            with self._cond:
                self._records[delivery.id] = delivery
                heapq.heappush(self._heap, (delivery.next_at, delivery.id))
            left += 1
        if left:
            log.info("%d webhook deliveries left by an earlier run; delivering", left)
        self._thread = threading.Thread(target=self._main, name="callscribe-webhooks", daemon=True)
        self._thread.start()
        return left

    def close(self) -> None:
        """Stop; deliveries not made stay in ``pending/`` for the next start."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(TIMEOUT_S)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._client.close()

    # -- the delivery thread -------------------------------------------------------------------------------------
    def _main(self) -> None:
        while True:
            with self._cond:
                while not self._closing and (not self._heap or self._heap[0][0] > time.time()):
                    self._cond.wait(max(0.0, self._heap[0][0] - time.time()) if self._heap else None)
                if self._closing:
                    return
                _, did = heapq.heappop(self._heap)
                delivery = self._records.get(did)
                if delivery is None or did in self._busy:
                    continue
                self._busy.add(did)
            try:
                self._pool.submit(self._try, delivery)
            except RuntimeError:  # closing
                return

    def _try(self, d: Delivery) -> None:
        again = False
        try:
            again = self._attempt(d)
        except Exception as exc:  # the disk or the store failed: keep the record, try later without counting it
            log.error("webhook %s to %s: %s; trying later", d.id, d.url, " ".join(str(exc).split()))
            d.next_at, again = time.time() + self.backoff, True
        finally:
            with self._cond:
                self._busy.discard(d.id)
        if again:
            self._schedule(d)

    def _attempt(self, d: Delivery) -> bool:
        """One try; True when the delivery is to be tried again (at ``d.next_at``)."""
        if d.body is None and not self._make_body(d):
            return False
        assert d.body is not None and d.event is not None
        d.attempts += 1
        self._save("pending", d)  # the try counts before it is made
        body = d.body.encode()
        headers = {"Content-Type": "application/json", "X-Callscribe-Event": d.event, "X-Callscribe-Delivery": d.id}
        if self.secret:
            headers["X-Callscribe-Signature"] = signature(self.secret, body)
        status: int | None = None
        try:
            status = self._client.post(d.url, content=body, headers=headers).status_code
            why = f"HTTP {status}"
        except httpx.HTTPError as exc:
            why = f"{type(exc).__name__}: {' '.join(str(exc).split()) or 'no answer'}"
        d.status = status
        if status is not None and 200 <= status < 300:
            d.last_error = None
            self._finish(d, "sent")
            log.info("webhook %s delivered to %s (try %d)", d.event, d.url, d.attempts, extra={"job": d.job_id})
            return False
        d.last_error = why
        if status is not None and status < 500 and status not in RETRY_STATUS:
            self._finish(d, "failed")
            log.warning("webhook %s refused by %s: %s", d.event, d.url, why, extra={"job": d.job_id})
            return False
        if d.attempts >= self.attempts:
            self._finish(d, "failed")
            log.warning("webhook %s to %s not delivered after %d tries: %s", d.event, d.url, d.attempts, why,
                        extra={"job": d.job_id})  # fmt: skip
            return False
        d.next_at = time.time() + min(MAX_PAUSE_S, self.backoff * 2 ** (d.attempts - 1))
        self._save("pending", d)
        return True

    def _make_body(self, d: Delivery) -> bool:
        """Build the body from the finished job; False when the job has not ended (it waits for release)."""
        assert self._compose is not None
        try:
            event = self._compose(d.job_id)
        except KeyError:
            d.last_error = "the job no longer exists"
            self._finish(d, "failed")
            log.warning("webhook %s dropped: job %s no longer exists", d.id, d.job_id)
            return False
        if event is None:
            return False  # run again after a crash: its runner enqueues and releases it when it ends
        d.event = str(event["type"])
        d.body = json.dumps(event, ensure_ascii=False, default=str)
        return True

    def _schedule(self, d: Delivery) -> None:
        with self._cond:
            if not self._closing:
                heapq.heappush(self._heap, (d.next_at, d.id))
                self._cond.notify()

    def _finish(self, d: Delivery, folder: str) -> None:
        d.finished_at = time.time()
        self._save(folder, d)
        self._path("pending", d.id).unlink(missing_ok=True)
        with self._cond:
            self._records.pop(d.id, None)

    # -- files --------------------------------------------------------------------------------------------------
    def _path(self, folder: str, did: str) -> Path:
        return self.folder / folder / f"{did}.json"

    def _save(self, folder: str, d: Delivery) -> None:
        atomic_write_text(self._path(folder, d.id), json.dumps(asdict(d), ensure_ascii=False))
        _fsync_dir(self.folder / folder)

    def _prune_sent(self) -> None:
        cutoff = time.time() - KEEP_SENT_S
        for path in (self.folder / "sent").glob("*.json"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
            except OSError:
                continue
