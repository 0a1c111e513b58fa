"""A served call store over loopback: the desk's glossary entries reach the next calls without a restart (a recording
sent again stays its one call), /metrics counts the store's jobs by state, and ``GET /v1/calls`` filters by the
customer's mood."""

from __future__ import annotations

import re
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_fixtures import EN_ITEM, ZH_ITEM, RunningServer, start_server, stop_server, wait_job

from callscribe.server.glossary import REFRESH_S
from callscribe.store import Store
from callscribe.store.moods import MOODS

pytestmark = [pytest.mark.evalset, pytest.mark.slow]

ADMIN = "admin-key-for-live-store"
STEREO_ITEM = "audio/en_fasterwhisper_stereo_2spk_channels.wav"  # 5 s, a speaker on each channel
WORD = re.compile(r"[A-Za-z]{3,}")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, str]]:
    """``serve --db`` alone: no ``--glossary-db``, so the glossary store is the call store."""
    root = tmp_path_factory.mktemp("live-store")
    db = f"sqlite:///{root / 'calls.db'}"
    server = start_server(root, "--db", db, "--qa", key=ADMIN)
    yield server, db
    stop_server(server)


def _send(server: RunningServer, path: Path, **fields: str) -> httpx.Response:
    with path.open("rb") as fh:
        return httpx.post(f"{server.api}/calls", files={"file": (path.name, fh)}, data=fields,
                          headers=server.headers(), timeout=60)  # fmt: skip


def _stored_text(server: RunningServer, call_id: int) -> str:
    r = httpx.get(f"{server.api}/calls/{call_id}", headers=server.headers(), timeout=30)
    assert r.status_code == 200, r.text
    return " ".join(u["text"] for u in r.json()["transcript"]["utterances"])


def test_a_desk_glossary_entry_applies_to_the_next_upload(served, evalset, tmp_path: Path):
    server, _ = served
    path = evalset / EN_ITEM
    first = wait_job(server, _send(server, path).json()["id"], ADMIN)
    assert first["state"] == "done", first
    heard = _stored_text(server, first["call_id"])
    words = set(WORD.findall(heard))
    wrong = next((w for w in sorted(words) if w.upper() != w and w.upper() not in words), None)
    assert wrong is not None, f"no word to correct in {heard!r}"
    right = wrong.upper()  # the correction matches any case: every form of the word heard becomes this one

    r = httpx.post(f"{server.url}/ui/api/calls/{first['call_id']}/glossary", json={"wrong": wrong, "right": right},
                   headers=server.headers(), timeout=30)  # fmt: skip
    assert r.status_code == 200 and r.json() == {"entry": f"{wrong} => {right}", "added": True}, r.text
    time.sleep(REFRESH_S + 0.5)

    resent = _send(server, path)  # the same recording again: still its one call, the glossary change aside
    assert resent.status_code == 200 and resent.json()["call_id"] == first["call_id"], resent.text

    padded = tmp_path / f"padded-{path.name}"  # the same speech in another recording: heard with the new entry
    _with_silence(path, padded, 0.5)
    again = _send(server, padded)
    assert again.status_code == 202, again.text
    second = wait_job(server, again.json()["id"], ADMIN)
    assert second["state"] == "done" and second["call_id"] != first["call_id"], second
    corrected = WORD.findall(_stored_text(server, second["call_id"]))
    assert right in corrected and wrong not in corrected, (heard, corrected)
    assert _stored_text(server, first["call_id"]) == heard  # a stored call is not changed by a later entry


def _with_silence(src: Path, dst: Path, seconds: float) -> None:
    with wave.open(str(src), "rb") as r:
        params, frames = r.getparams(), r.readframes(r.getnframes())
    with wave.open(str(dst), "wb") as w:
        w.setparams(params)
        w.writeframes(frames + b"\x00" * (round(seconds * params.framerate) * params.nchannels * params.sampwidth))


def _metric(text: str, name: str, state: str) -> float | None:
    found = re.search(rf'^{name}\{{state="{state}"\}} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else None


def test_metrics_count_the_stores_jobs_by_state(served, evalset):
    server, db = served
    sent = [_send(server, evalset / item) for item in (ZH_ITEM, STEREO_ITEM)]
    assert all(r.status_code in (200, 202) for r in sent), [r.text for r in sent]
    for r in sent:
        wait_job(server, r.json()["id"], ADMIN)
    text = httpx.get(f"{server.url}/metrics", timeout=30).text
    with Store(db) as store:
        counts = store.job_counts()
    listed = httpx.get(f"{server.api}/jobs", params={"state": "done", "limit": 500}, headers=server.headers()).json()
    assert counts["done"] >= 2 and counts["done"] == len(listed["data"])
    for state in ("queued", "running", "done", "failed", "cancelled"):
        assert _metric(text, "callscribe_store_jobs", state) == counts[state], (state, counts)


def test_calls_filtered_by_the_customers_mood(served, evalset):
    server, db = served
    job = wait_job(server, _send(server, evalset / STEREO_ITEM, channel_roles="agent,customer").json()["id"], ADMIN)
    assert job["state"] == "done", job

    def ids(**params: str) -> set[int]:
        r = httpx.get(f"{server.api}/calls", params={"limit": 500, **params}, headers=server.headers(), timeout=30)
        assert r.status_code == 200, r.text
        return {c["id"] for c in r.json()["data"]}

    every = ids()
    by_mood = {mood: ids(sentiment=mood) for mood in MOODS}
    with Store(db) as store:
        for mood in MOODS:  # the store's own answer, mood by mood
            assert by_mood[mood] == {c.id for c in store.calls(sentiment=mood, limit=500)}, mood
    assert sum(len(found) for found in by_mood.values()) == len(every) >= 2  # each call in exactly one mood
    assert set().union(*by_mood.values()) == every
    mood = next(m for m in MOODS if job["call_id"] in by_mood[m])
    word = WORD.findall(_stored_text(server, job["call_id"]))[0]
    assert job["call_id"] in ids(sentiment=mood, q=word) <= by_mood[mood]  # with a search too

    bad = httpx.get(f"{server.api}/calls", params={"sentiment": "furious"}, headers=server.headers(), timeout=30)
    assert bad.status_code == 400 and "furious" in bad.json()["error"]["message"], bad.text
    assert bad.json()["error"]["param"] == "sentiment"
