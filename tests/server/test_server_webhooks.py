"""The webhook outbox against a real receiver on loopback: retries with backoff, bounded tries, refusals, one
delivery per job and URL, and delivery by the next process from what a stopped one left on disk."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from server_fixtures import WebhookReceiver, free_port

from callscribe.server.webhook_keys import KeyWebhooks
from callscribe.server.webhooks import Webhooks, check_url, delivery_id, signature

SECRET = "s3cret"


class Jobs:
    """The runner's side: which jobs have ended (the real runner asks the store)."""

    def __init__(self) -> None:
        self.ended: dict[str, str] = {}

    def event(self, job_id: str) -> dict[str, Any] | None:
        state = self.ended.get(job_id)
        return None if state is None else {"type": f"job.{state}", "job": {"id": job_id, "state": state}}

    def end(self, hooks: Webhooks, job_id: str, urls: list[str], state: str = "done") -> list[str]:
        ids = hooks.enqueue(job_id, urls)  # recorded first, as JobRunner does
        self.ended[job_id] = state
        hooks.release(job_id)
        return ids


def _wait(check: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError("timed out")


def _records(folder: Path, name: str) -> list[dict]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted((folder / name).glob("*.json"))]


def test_retried_with_backoff_until_accepted_same_bytes_each_try(tmp_path: Path) -> None:
    receiver = WebhookReceiver(fail_first=2)
    jobs = Jobs()
    hooks = Webhooks(tmp_path, SECRET, attempts=5, backoff=0.2)
    hooks.start(jobs.event)
    try:
        t0 = time.monotonic()
        (did,) = jobs.end(hooks, "job1", [receiver.url, receiver.url])  # the same URL twice: one delivery
        _wait(lambda: receiver.accepted)
        elapsed = time.monotonic() - t0
    finally:
        hooks.close()
        receiver.close()
    assert len(receiver.received) == 3 and len(receiver.accepted) == 1
    bodies = {body for _, body in receiver.received}
    assert len(bodies) == 1  # every try sends the same bytes
    for headers, body in receiver.received:
        assert headers["X-Callscribe-Signature"] == signature(SECRET, body)
        assert headers["X-Callscribe-Delivery"] == did == delivery_id("job1", receiver.url)
        assert headers["X-Callscribe-Event"] == "job.done"
    assert json.loads(bodies.pop()) == {"type": "job.done", "job": {"id": "job1", "state": "done"}}
    assert elapsed >= 0.2 + 0.4  # paused 0.2 s, then 0.4 s
    (sent,) = _records(tmp_path, "sent")
    assert sent["attempts"] == 3 and sent["status"] == 204 and not _records(tmp_path, "pending")
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_bounded_tries_refusals_and_jobs_that_have_not_ended(tmp_path: Path) -> None:
    never = WebhookReceiver(fail_first=100)
    jobs = Jobs()
    hooks = Webhooks(tmp_path, attempts=3, backoff=0.05)
    hooks.start(jobs.event)
    refused = f"http://127.0.0.1:{free_port()}/nobody-listens"
    try:
        jobs.end(hooks, "a", [never.url, refused], state="failed")
        hooks.enqueue("b", [never.url])  # recorded, but job b has not ended: nothing is sent for it
        hooks.release("b")
        _wait(lambda: len(_records(tmp_path, "failed")) == 2)
    finally:
        hooks.close()
        never.close()
    failed = {r["url"]: r for r in _records(tmp_path, "failed")}
    assert failed[never.url]["attempts"] == 3 and failed[never.url]["last_error"] == "HTTP 503"
    assert failed[refused]["attempts"] == 3 and "Connect" in failed[refused]["last_error"]
    assert len(never.received) == 3
    assert all(json.loads(b)["job"]["id"] == "a" for _, b in never.received)
    (waiting,) = _records(tmp_path, "pending")
    assert waiting["job_id"] == "b" and waiting["attempts"] == 0 and waiting["body"] is None


def test_a_4xx_is_not_tried_again(tmp_path: Path) -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    hits: list[int] = []

    class Gone(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hits.append(1)
            self.send_response(410)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Gone)
    Thread(target=server.serve_forever, daemon=True).start()
    jobs = Jobs()
    hooks = Webhooks(tmp_path, attempts=5, backoff=0.05)
    hooks.start(jobs.event)
    try:
        jobs.end(hooks, "c", [f"http://127.0.0.1:{server.server_address[1]}/x"])
        _wait(lambda: _records(tmp_path, "failed"))
    finally:
        hooks.close()
        server.shutdown()
        server.server_close()
    assert len(hits) == 1 and _records(tmp_path, "failed")[0]["last_error"] == "HTTP 410"


def test_the_next_process_delivers_what_a_stopped_one_left_and_never_twice(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    jobs = Jobs()
    first = Webhooks(tmp_path, SECRET, attempts=10, backoff=0.1)
    first.start(jobs.event)
    jobs.end(first, "d", [url])  # nobody listens yet: it waits in pending/
    _wait(lambda: (_records(tmp_path, "pending") or [{}])[0].get("attempts", 0) >= 1)
    first.close()
    left = _records(tmp_path, "pending")
    assert len(left) == 1 and left[0]["body"] is not None

    receiver = WebhookReceiver(port=port)  # the receiver comes back
    second = Webhooks(tmp_path, SECRET, attempts=10, backoff=0.1)
    assert second.start(jobs.event) == 1
    try:
        _wait(lambda: receiver.accepted)
        assert second.enqueue("d", [receiver.url]) == []  # sent already: never queued again
        second.release("d")
        time.sleep(0.3)
    finally:
        second.close()
        receiver.close()
    assert len(receiver.accepted) == 1 and receiver.accepted[0][1].decode() == left[0]["body"]
    assert receiver.accepted[0][0]["X-Callscribe-Signature"] == signature(SECRET, left[0]["body"].encode())
    assert _records(tmp_path, "sent")[0]["attempts"] >= 2


def test_check_url() -> None:
    allowed = ["http://127.0.0.1:9000/hooks", "https://hooks.example.com/"]
    assert check_url("http://127.0.0.1:9000/hooks/a?x=1", allowed) == "http://127.0.0.1:9000/hooks/a?x=1"
    assert check_url("https://hooks.example.com:443/any", allowed)
    for bad in (
        "http://127.0.0.1:9000/hooksx",
        "http://127.0.0.1:9001/hooks",
        "https://127.0.0.1:9000/hooks",
        "http://127.0.0.1:9000/hooks/../admin",
        "http://user:pw@hooks.example.com/",
        "https://hooks.example.com.evil.net/",
        "ftp://hooks.example.com/",
        "http://[::1",
    ):
        with pytest.raises(ValueError):
            check_url(bad, allowed)
    with pytest.raises(ValueError, match="no per-job webhook"):
        check_url("http://127.0.0.1:9000/hooks", [])
    assert check_url("http://10.0.0.1/x", ["*"]) == "http://10.0.0.1/x"


def test_key_webhooks_file(tmp_path: Path) -> None:
    keys = KeyWebhooks.in_data_dir(tmp_path)
    assert keys.url("bot") is None
    keys.set("bot", "https://crm.example.com/hook")
    keys.set("desk", "http://127.0.0.1:8080/x")
    reader = KeyWebhooks.in_data_dir(tmp_path)  # another process's view
    assert reader.url("bot") == "https://crm.example.com/hook"
    keys.set("bot", None)
    time.sleep(0.01)
    assert reader.urls() == {"desk": "http://127.0.0.1:8080/x"}
    with pytest.raises(ValueError):
        keys.set("bad", "not a url")
