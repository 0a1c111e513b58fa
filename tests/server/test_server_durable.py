"""The durable call queue: a server killed with SIGKILL mid-job; the next one finishes every job exactly once."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest
from server_fixtures import EN_ITEM, ZH_ITEM, create_key, files_under, start_server, stop_server, wait_job

from callscribe.pipeline import Pipeline
from callscribe.store import Store

pytestmark = [pytest.mark.evalset, pytest.mark.slow]

ITEMS = ("audio/zh_soulx_podcast_female.wav", "audio/en_whisper_jfk.flac", ZH_ITEM, EN_ITEM)


def _send(url: str, path: Path, key: str) -> str:
    with path.open("rb") as fh:
        r = httpx.post(f"{url}/v1/calls", files={"file": (path.name, fh)}, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def test_kill_9_then_resume_exactly_once(tmp_path, evalset):
    db = f"sqlite:///{tmp_path / 'calls.db'}"
    key = create_key(db, "ingest", "ingest,review")
    args = ("--db", db, "--job-concurrency", "1")  # one job in the engine at a time: the rest wait in the store
    first = start_server(tmp_path, *args, name="first")
    store = Store(db)
    try:
        ids = [_send(first.url, evalset / item, key) for item in ITEMS]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not store.jobs(state="running"):
            time.sleep(0.05)
        assert first.proc is not None
        os.kill(first.proc.pid, signal.SIGKILL)
        first.proc.wait(30)
    finally:
        stop_server(first)
    jobs = {j.id: j for j in store.jobs()}
    cut = [j for j in jobs.values() if j.state == "running"]
    assert len(cut) == 1, jobs  # killed in the middle of one job
    waiting = [j for j in jobs.values() if j.state == "queued"]
    assert waiting

    # A job whose call got stored but which was never marked done (the server died in between): claim one of the
    # queued jobs and store its call here, as that server would have.
    claimed = store.claim_job()
    assert claimed is not None and claimed.state == "running"
    stored = store.add(Pipeline({"engine": "whisper"}).transcribe(claimed.payload["path"]))
    stored_at = store.call(stored).summary.updated_at  # type: ignore[union-attr]

    second = start_server(tmp_path, *args, name="second")
    try:
        done = {job_id: wait_job(second, job_id, key) for job_id in ids}
    finally:
        stop_server(second)
    assert all(j["state"] == "done" for j in done.values()), done
    assert done[cut[0].id]["attempts"] == 2  # started again after the kill
    assert done[claimed.id]["call_id"] == stored and done[claimed.id]["attempts"] == 2
    assert store.call(stored).summary.updated_at == stored_at  # type: ignore[union-attr]  # not transcribed again
    calls = store.calls(limit=None)
    assert len(calls) == len(ITEMS)  # every recording stored once
    assert sorted(j["call_id"] for j in done.values()) == sorted(c.id for c in calls)
    assert {c.sha256 for c in calls} == {j["file"]["sha256"] for j in done.values()}
    assert "queued again" in second.log_path.read_text(encoding="utf-8")
    assert not [p for p in files_under(tmp_path / "data") if p.name.endswith(".part")]
    store.close()
