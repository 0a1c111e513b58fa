"""Calls in the store over HTTP: durable jobs, scoped keys from the store, search, audio ranges, delete, webhooks."""

from __future__ import annotations

import array
import io
import json
import os
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_fixtures import (
    EN_ITEM,
    HOTLINE_ITEM,
    ZH_ITEM,
    RunningServer,
    WebhookReceiver,
    create_key,
    files_under,
    start_server,
    stop_server,
    wait_job,
)

from callscribe.server.webhooks import signature

pytestmark = [pytest.mark.evalset, pytest.mark.slow]

ADMIN = "admin-key-for-calls"
SECRET = "webhook-secret"
DUP_ITEM = "audio/zh_aishell2_IT0011W0001.wav"  # 2 s
STEREO_ITEM = "audio/en_fasterwhisper_stereo_2spk_channels.wav"  # 5 s, a speaker on each channel
PII_ITEM = "audio/zh_wenetspeech_TEST_NET_Y0000000000_-KTKHdZ2fb8_S00000.wav"  # 1.8 s, 16 kHz mono


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory, evalset: Path
) -> Iterator[tuple[RunningServer, dict, dict[str, WebhookReceiver]]]:
    """A server with a SQLite call store, keys made with ``callscribe keys create``, webhooks to receivers: the
    server's, one key's (``hooked``: it answers 503 to the first two tries of each delivery), per-job ones."""
    root = tmp_path_factory.mktemp("calls-server")
    db = f"sqlite:///{root / 'calls.db'}"
    keys = {scope: create_key(db, f"{scope}-app", scope) for scope in ("ingest", "review", "pii")}
    keys["revoked"] = create_key(db, "old-app", "ingest,review")
    keys["db"] = db
    hooks = {"server": WebhookReceiver(), "key": WebhookReceiver(fail_first=2), "job": WebhookReceiver(path="/jobs/in")}
    data = str(root / "data")
    keys["hooked"] = create_key(db, "hooked-app", "ingest", "--webhook", hooks["key"].url, "--data-dir", data)
    args = ["--db", db, "--webhook-url", hooks["server"].url, "--webhook-secret", SECRET, "--qa"]
    args += ["--webhook-allow", hooks["job"].prefix + "/jobs", "--webhook-backoff", "0.2"]
    server = start_server(root, *args, key=ADMIN)
    yield server, keys, hooks
    stop_server(server)
    for receiver in hooks.values():
        receiver.close()


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _send(server: RunningServer, path: Path, key: str, **fields: str) -> httpx.Response:
    with path.open("rb") as fh:
        return httpx.post(f"{server.api}/calls", files={"file": (path.name, fh)}, data=fields, headers=_auth(key),
                          timeout=60)  # fmt: skip


def test_a_call_goes_through_the_queue_into_the_store(setup, evalset):
    server, keys, hooks = setup
    sent = _send(
        server, evalset / EN_ITEM, keys["ingest"], agent_id="A17", queue="sales", call_time="2026-01-05T10:00Z"
    )
    assert sent.status_code == 202, sent.text
    job = sent.json()
    assert job["state"] == "queued" and sent.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["file"]["name"] == EN_ITEM.split("/")[-1] and "path" not in json.dumps(job)
    done = wait_job(server, job["id"], keys["ingest"])
    assert done["state"] == "done" and done["attempts"] == 1 and isinstance(done["call_id"], int)

    call = httpx.get(f"{server.api}/calls/{done['call_id']}", headers=_auth(keys["review"])).json()
    assert call["agent_id"] == "A17" and call["queue"] == "sales" and call["call_time"].startswith("2026-01-05T10:00")
    assert call["name"] == Path(EN_ITEM).stem and "source" not in call and "path" not in call["transcript"]["call"]
    assert call["qa"] is not None and "score" in call["qa"]
    with (evalset / EN_ITEM).open("rb") as fh:  # the same engine through the OpenAI endpoint says the same
        direct = httpx.post(f"{server.api}/audio/transcriptions", files={"file": fh}, headers=_auth(ADMIN), timeout=300)
    text = " ".join(u["text"] for u in call["transcript"]["utterances"])
    assert text.split() == direct.json()["text"].split()

    word = max(text.split(), key=len).strip(".,?!").lower()
    found = httpx.get(f"{server.api}/calls", params={"q": word}, headers=_auth(keys["review"])).json()["data"]
    assert done["call_id"] in [c["id"] for c in found]
    none = httpx.get(f"{server.api}/calls", params={"q": "滨海新区"}, headers=_auth(keys["review"])).json()["data"]
    assert done["call_id"] not in [c["id"] for c in none]

    events = [json.loads(body) for _, body in hooks["server"].received]
    assert any(e["type"] == "job.done" and e["job"]["id"] == job["id"] for e in events)
    for headers, body in hooks["server"].received:
        assert headers["X-Callscribe-Signature"] == signature(SECRET, body)


def test_audio_with_ranges_then_delete(setup, evalset):
    server, keys, _ = setup
    original = (evalset / ZH_ITEM).read_bytes()
    job = wait_job(server, _send(server, evalset / ZH_ITEM, keys["ingest"]).json()["id"], keys["ingest"])
    url = f"{server.api}/calls/{job['call_id']}/audio"
    whole = httpx.get(url, headers=_auth(keys["pii"]))
    assert whole.status_code == 200 and whole.content == original
    assert whole.headers["accept-ranges"] == "bytes"
    part = httpx.get(url, headers={**_auth(keys["pii"]), "Range": "bytes=100-1099"})
    assert part.status_code == 206
    assert part.content == original[100:1100]
    assert part.headers["content-range"] == f"bytes 100-1099/{len(original)}"
    tail = httpx.get(url, headers={**_auth(keys["pii"]), "Range": "bytes=-16"})
    assert tail.status_code == 206 and tail.content == original[-16:]
    beyond = httpx.get(url, headers={**_auth(keys["pii"]), "Range": f"bytes={len(original)}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(original)}"
    assert httpx.get(url, headers=_auth(keys["ingest"])).status_code == 403  # ingest keys hear no recordings

    assert httpx.delete(f"{server.api}/calls/{job['call_id']}", headers=_auth(keys["review"])).status_code == 403
    gone = httpx.delete(f"{server.api}/calls/{job['call_id']}", headers=_auth(ADMIN))
    assert gone.status_code == 204
    assert httpx.get(f"{server.api}/calls/{job['call_id']}", headers=_auth(keys["review"])).status_code == 404
    assert httpx.get(url, headers=_auth(keys["pii"])).status_code == 404
    assert not any(p.name.startswith(job["file"]["sha256"]) for p in files_under(server.data_dir / "audio"))


def test_scopes_and_revoked_keys(setup, evalset):
    server, keys, _ = setup
    assert _send(server, evalset / ZH_ITEM, keys["review"]).status_code == 403
    assert httpx.get(f"{server.api}/calls", headers=_auth(keys["ingest"])).status_code == 403
    assert httpx.get(f"{server.api}/calls", headers=_auth(keys["revoked"])).status_code == 200
    r = httpx.get(f"{server.api}/calls", headers=_auth("cs_not-a-key"))
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    listed = _keys_list(keys["db"])
    scopes, prefix = listed["old-app"][:2]
    assert scopes == "ingest,review" and prefix.endswith("…") and keys["revoked"].startswith(prefix[:-1])
    assert len(listed["old-app"]) == 3  # scopes, prefix, created: not revoked
    assert not any(keys[s] in line for s in ("ingest", "review", "pii", "revoked") for line in listed["raw"])
    subprocess.run([sys.executable, "-m", "callscribe", "keys", "revoke", "old-app", "--db", keys["db"]], check=True,
                   capture_output=True, timeout=120)  # fmt: skip
    assert httpx.get(f"{server.api}/calls", headers=_auth(keys["revoked"])).status_code == 401
    assert len(_keys_list(keys["db"])["old-app"]) == 4  # now with when it was revoked
    again = subprocess.run([sys.executable, "-m", "callscribe", "keys", "revoke", "old-app", "--db", keys["db"]],
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert again.returncode == 2 and "no active key named 'old-app'" in again.stderr


def _keys_list(db: str) -> dict[str, list[str]]:
    """``callscribe keys list``: each key's row (by name) split on blanks, and the raw lines under ``raw``."""
    r = subprocess.run([sys.executable, "-m", "callscribe", "keys", "list", "--db", db], capture_output=True,
                       text=True, timeout=120, env={"COLUMNS": "250", **os.environ})  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    rows: dict[str, list[str]] = {"raw": lines}
    for line in lines[1:]:
        name, *rest = line.split()
        rows[name] = rest
    return rows


def test_bad_calls_leave_nothing(setup, evalset, tmp_path):
    server, keys, _ = setup
    before = files_under(server.data_dir / "audio")
    text = tmp_path / "notes.wav"
    text.write_text("not a recording\n" * 50, encoding="utf-8")
    r = _send(server, text, keys["ingest"])
    assert r.status_code == 415 and r.json()["error"]["message"].startswith("notes.wav: ")
    r = _send(server, evalset / HOTLINE_ITEM, keys["ingest"], call_time="last tuesday")
    assert r.status_code == 400 and r.json()["error"]["param"] == "call_time"
    assert files_under(server.data_dir / "audio") == before
    jobs = httpx.get(f"{server.api}/jobs", headers=_auth(keys["ingest"])).json()["data"]
    assert all(j["file"]["name"] != "notes.wav" for j in jobs)
    assert httpx.get(f"{server.api}/jobs/nope", headers=_auth(keys["ingest"])).status_code == 404


def test_webhooks_per_server_per_key_and_per_job(setup, evalset):
    server, keys, hooks = setup
    key_hooks, job_hooks = hooks["key"], hooks["job"]
    refused = _send(server, evalset / ZH_ITEM, keys["hooked"], webhook_url="http://169.254.169.254/latest/meta-data")
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "webhook_url"
    assert refused.json()["error"]["message"].startswith("webhook_url: ")
    sent = _send(server, evalset / HOTLINE_ITEM, keys["hooked"], webhook_url=job_hooks.url + "?ref=42")
    assert sent.status_code == 202, sent.text
    job = sent.json()
    assert job["webhook_url"] == job_hooks.url + "?ref=42"
    done = wait_job(server, job["id"], keys["hooked"])
    deadline = time.monotonic() + 60
    receivers = tuple(hooks.values())
    while time.monotonic() < deadline and not all(_accepted(r, job["id"]) for r in receivers):
        time.sleep(0.1)
    for receiver in receivers:  # each URL got the job's end exactly once, signed, as GET /v1/jobs/{id} shows it
        (event,) = _accepted(receiver, job["id"])
        assert event == {"type": "job.done", "job": done}
    for headers, body in key_hooks.received + job_hooks.received:
        assert headers["X-Callscribe-Signature"] == signature(SECRET, body)
    tries = [h["X-Callscribe-Delivery"] for h, b in key_hooks.received if json.loads(b)["job"]["id"] == job["id"]]
    assert len(tries) == 3 and len(set(tries)) == 1  # two 503s, then accepted
    sent_dir = server.data_dir / "webhooks" / "sent"
    # the outbox moves a delivery to sent/ after its 2xx answer arrives, so a receiver can be ahead of it
    while time.monotonic() < deadline and len(list(sent_dir.glob(f"{job['id']}-*.json"))) < 3:
        time.sleep(0.1)
    assert len(list(sent_dir.glob(f"{job['id']}-*.json"))) == 3
    assert not list((server.data_dir / "webhooks" / "pending").glob(f"{job['id']}-*.json"))


def _accepted(receiver: WebhookReceiver, job_id: str) -> list[dict]:
    return [e for e in receiver.events() if e["job"]["id"] == job_id]


def test_a_duplicate_upload_answers_with_the_existing_job_or_call(setup, evalset):
    server, keys, _ = setup
    path = evalset / DUP_ITEM
    first = _send(server, path, keys["ingest"])
    again = _send(server, path, keys["ingest"])  # while the first is queued or running: the same job
    assert (first.status_code, again.status_code) == (202, 200), again.text
    done = wait_job(server, first.json()["id"], keys["ingest"])
    if again.json()["id"] != first.json()["id"]:  # the first was stored already: a job done with its call
        assert again.json()["state"] == "done" and again.json()["call_id"] == done["call_id"]
    later = _send(server, path, keys["ingest"])  # once stored: a job that is done at once, with the stored call
    assert later.status_code == 200 and later.json()["state"] == "done"
    assert later.json()["call_id"] == done["call_id"] and later.json()["attempts"] == 0
    found = httpx.get(f"{server.api}/calls", params={"limit": 500}, headers=_auth(keys["review"])).json()["data"]
    assert [c["id"] for c in found if c["sha256"] == done["file"]["sha256"]] == [done["call_id"]]
    other = _send(server, path, keys["ingest"], language="en")  # other options: another transcript, a new job
    assert other.status_code == 202 and other.json()["id"] != first.json()["id"]
    assert wait_job(server, other.json()["id"], keys["ingest"])["call_id"] != done["call_id"]


def test_channel_roles_sent_with_a_call(setup, evalset):
    server, keys, _ = setup
    roles = {}
    for spec in ("customer,agent", "agent,customer"):
        job = wait_job(server, _send(server, evalset / STEREO_ITEM, keys["ingest"], channel_roles=spec).json()["id"],
                       keys["ingest"])  # fmt: skip
        call = httpx.get(f"{server.api}/calls/{job['call_id']}", headers=_auth(keys["review"])).json()
        roles[spec] = {(u["channel"], u["role"]) for u in call["transcript"]["utterances"]}
    assert roles["customer,agent"] == {(0, "customer"), (1, "agent")}
    assert roles["agent,customer"] == {(0, "agent"), (1, "customer")}
    bad = _send(server, evalset / STEREO_ITEM, keys["ingest"], channel_roles="agent,../x")
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "channel_roles"


def _samples(data: bytes) -> list[int]:
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        return list(array.array("h", w.readframes(w.getnframes())))


def test_a_review_key_hears_the_recording_with_a_tone_over_pii(setup, evalset):
    """A call a reviewer corrected to hold a phone number (evalset-dev speech has none): the pii key gets the
    upload, a review key a WAV with a tone over that utterance (as the desk masks it) and the rest untouched."""
    from callscribe.store import Store
    from callscribe.text.pii import SPAN_PAD_S

    server, keys, _ = setup
    original = (evalset / PII_ITEM).read_bytes()
    job = wait_job(server, _send(server, evalset / PII_ITEM, keys["ingest"]).json()["id"], keys["ingest"])
    url = f"{server.api}/calls/{job['call_id']}/audio"
    assert httpx.get(url, headers=_auth(keys["ingest"])).status_code == 403
    plain = httpx.get(url, headers=_auth(keys["review"]))  # nothing to mask yet: a WAV of the same samples
    assert plain.status_code == 200 and plain.headers["x-callscribe-audio"] == "redacted"
    assert _samples(plain.content) == _samples(original)

    store = Store(keys["db"])
    try:
        first = store.call(job["call_id"]).transcript["utterances"][0]
        said = first["text"] + "我的电话是13800138000"
        store.add_correction(job["call_id"], first["text"], said, author="desk-reviewer", utterance=0)
    finally:
        store.close()
    pii = httpx.get(url, headers=_auth(keys["pii"]))
    assert pii.status_code == 200 and pii.content == original and pii.headers["x-callscribe-audio"] == "original"
    masked = httpx.get(url, headers=_auth(keys["review"]))
    assert masked.status_code == 200 and masked.headers["content-type"] == "audio/x-wav"
    heard, toned = _samples(original), _samples(masked.content)
    assert len(toned) == len(heard)
    start, end = round(max(0.0, first["start"] - SPAN_PAD_S) * 16000), round((first["end"] + SPAN_PAD_S) * 16000)
    inside = sum(a != b for a, b in zip(heard[start:end], toned[start:end], strict=True))
    assert inside > 0.9 * (end - start) and heard[:start] == toned[:start] and heard[end:] == toned[end:]
    part = httpx.get(url, headers={**_auth(keys["review"]), "Range": "bytes=0-43"})
    assert part.status_code == 206 and part.content == masked.content[:44]
    bad = httpx.get(url, headers={**_auth(keys["review"]), "Range": f"bytes={len(masked.content) + 10}-"})
    assert bad.status_code == 416 and bad.headers["content-range"] == f"bytes */{len(masked.content)}"
    assert httpx.delete(f"{server.api}/calls/{job['call_id']}", headers=_auth(ADMIN)).status_code == 204
    assert not list((server.data_dir / "audio-redacted").glob(f"{job['file']['sha256']}-*"))
