"""Twenty call jobs, the server killed with SIGKILL mid-way, restarted on the same data folder and database: every
job done, none twice (store rows, job rows, kept recordings, webhook deliveries), deliveries due at the kill made by
the next process."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from server_fixtures import WebhookReceiver, create_key, files_under, start_server, stop_server, wait_job
from server_short_calls import build_short_calls

from callscribe.server.webhooks import signature
from callscribe.store import Store

pytestmark = [pytest.mark.evalset, pytest.mark.slow]

JOBS = 20
KILL_AFTER_DONE = 6
SECRET = "kill-9-secret"


def _send(url: str, path: Path, key: str) -> dict:
    with path.open("rb") as fh:
        r = httpx.post(f"{url}/v1/calls", files={"file": (path.name, fh)}, headers={"Authorization": f"Bearer {key}"},
                       timeout=60)  # fmt: skip
    assert r.status_code == 202, r.text
    return dict(r.json())


def _done_lines(log: Path) -> Counter[str]:
    seen: Counter[str] = Counter()
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if str(record.get("msg", "")).startswith("call job ") and str(record["msg"]).endswith(" done"):
            seen[str(record["msg"]).split()[2]] += 1
    return seen


def test_twenty_jobs_survive_kill_9_exactly_once(tmp_path, evalset):
    calls = build_short_calls(evalset, tmp_path / "built", JOBS)
    db = f"sqlite:///{tmp_path / 'calls.db'}"
    key = create_key(db, "ingest", "ingest")
    hooks = WebhookReceiver(fail_first=1)  # each delivery: 503 first, accepted at the next try (1 s later)
    args = ("--db", db, "--webhook-url", hooks.url, "--webhook-secret", SECRET, "--webhook-backoff", "1")
    store = Store(db)
    first = start_server(tmp_path, *args, name="first")
    try:
        sent = {_send(first.url, c.path, key)["id"]: c for c in calls}
        assert len(sent) == JOBS
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and len(store.jobs(state="done")) < KILL_AFTER_DONE:
            time.sleep(0.05)
        assert first.proc is not None
        os.kill(first.proc.pid, signal.SIGKILL)
        killed_at = time.time()
        first.proc.wait(30)
    finally:
        stop_server(first)
    at_kill = {j.id: j.state for j in store.jobs(limit=1000)}
    done_before = {i for i, state in at_kill.items() if state == "done"}
    cut = {i for i, state in at_kill.items() if state == "running"}
    assert KILL_AFTER_DONE <= len(done_before) < JOBS and cut, at_kill  # killed mid-way, jobs in the engine
    pending = list((tmp_path / "data" / "webhooks" / "pending").glob("*.json"))

    second = start_server(tmp_path, *args, name="second")
    try:
        jobs = {job_id: wait_job(second, job_id, key, timeout=600) for job_id in sent}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len({e["job"]["id"] for e in hooks.events()}) < JOBS:
            time.sleep(0.1)
        time.sleep(1.5)  # room for a second delivery, were there one
    finally:
        stop_server(second)
        hooks.close()

    # Jobs: 20 rows, all done; the ones in the engine at the kill ran twice, no other job did.
    rows = store.jobs(limit=1000)
    assert len(rows) == JOBS and {r.state for r in rows} == {"done"}
    assert {r.id for r in rows if r.attempts == 2} <= cut and all(r.attempts in (1, 2) for r in rows)
    assert all(jobs[i]["attempts"] == 1 for i in done_before)
    done_logged = _done_lines(first.log_path) + _done_lines(second.log_path)
    assert max(done_logged.values()) == 1 and set(done_logged) <= set(sent)
    assert "queued again" in second.log_path.read_text(encoding="utf-8")

    # The store: one call per recording; each job points at its own call.
    stored = store.calls(limit=None)
    assert len(stored) == JOBS == store.counts()["calls"]
    assert {c.sha256 for c in stored} == {c.sha256 for c in calls}
    by_sha = {c.sha256: c.id for c in stored}
    assert all(jobs[i]["call_id"] == by_sha[sent[i].sha256] for i in sent)
    assert all(store.call(c.id).transcript["utterances"] for c in stored)  # type: ignore[union-attr]

    # Recordings kept once each; nothing half-written left.
    kept = files_under(tmp_path / "data" / "audio")
    assert sorted(p.stem for p in kept) == sorted(c.sha256 for c in calls)
    assert not [p for p in files_under(tmp_path / "data") if p.name.endswith((".part", ".tmp"))]

    # Webhooks: each job's end accepted exactly once, signed, as the job ended; what was due at the kill was
    # delivered by the second server.
    accepted = Counter(e["job"]["id"] for e in hooks.events())
    assert set(accepted) == set(sent) and set(accepted.values()) == {1}, accepted
    for headers, body in hooks.accepted:
        event = json.loads(body)
        assert headers["X-Callscribe-Signature"] == signature(SECRET, body)
        assert event["type"] == "job.done" and event["job"]["call_id"] == jobs[event["job"]["id"]]["call_id"]
    late = [
        json.loads(body)["job"]["id"]
        for (_, body), when in zip(hooks.accepted, hooks.accepted_at, strict=True)
        if when > killed_at
    ]
    assert pending and done_before & set(late), (len(pending), late)
    webhooks = tmp_path / "data" / "webhooks"
    assert len(list((webhooks / "sent").glob("*.json"))) == JOBS
    assert not list((webhooks / "pending").glob("*.json")) and not list((webhooks / "failed").glob("*.json"))
    store.close()
