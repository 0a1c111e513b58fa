"""Live calls against the real service: ``callscribe serve`` on loopback, the real client, real speech."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from stream_fixtures import (
    API_KEY,
    RunningServer,
    built_call,
    of_type,
    phone_call,
    start_server,
    stop_server,
    stream_file,
    strings,
    ws_url,
)

from callscribe.text.digit_runs import digit_runs
from callscribe.text.pii import find_pii

pytestmark = [pytest.mark.evalset, pytest.mark.slow]

ROLES = ["agent", "customer"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp("live")
    running = start_server(tmp, "--db", f"sqlite:///{tmp / 'calls.db'}", "--max-streams", "2")
    try:
        yield running
    finally:
        stop_server(running)


@pytest.fixture(scope="module")
def call_file(evalset: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    return built_call(evalset, tmp_path_factory.mktemp("calls"))


def _check_turn_order(events: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Every turn: partials, then turn_end, then exactly one final, nothing of it after; returns the finals."""
    finals: dict[int, dict[str, Any]] = {}
    ended: set[int] = set()
    for e in events:
        kind, turn = e["type"], e.get("turn")
        if kind == "partial":
            assert turn not in ended and turn not in finals, f"partial after the turn ended: {e}"
        elif kind == "turn_end":
            assert turn not in ended
            ended.add(turn)
        elif kind == "final":
            assert turn in ended and turn not in finals, f"a second final, or one without turn_end: {e}"
            finals[turn] = e
    assert ended == set(finals), "every ended turn gets its final"
    return finals


def test_a_stereo_call_streams_partials_then_finals_and_is_stored_as_streamed(
    server: RunningServer, call_file: tuple[Path, Any], evalset: Path
) -> None:
    path, ref = call_file
    start = {"language": "zh", "roles": ROLES, "metadata": {"call_id": "live-zh-1", "queue": "billing"}}
    result = stream_file(ws_url(server), path, speed=1.5, api_key=API_KEY, start=start)
    events = result.events
    assert events[0]["type"] == "started" and events[-1]["type"] == "call_done", events[-3:]
    assert not result.errors and result.close_code == 1000
    assert all(e["t_recv"] >= 0 for e in events)
    finals = _check_turn_order(events)
    spoken = [f for f in finals.values() if f["text"]]
    assert len(spoken) >= len(ref.turns) - 1, [f["text"] for f in finals.values()]
    assert of_type(events, "partial"), "a 10 s turn gets partials"
    for f in finals.values():
        assert f["role"] == ROLES[f["channel"]] and 0 <= f["start"] < f["end"] <= ref.duration + 0.1
        assert f["language"] == "zh" and isinstance(f["words"], list)

    done = result.call_done
    assert done is not None and isinstance(done["call_id"], int) and abs(done["duration"] - result.sent_s) < 1e-3
    call = httpx.get(f"{server.api}/calls/{done['call_id']}", headers=server.headers(), timeout=30).json()
    assert call["name"] == "live-zh-1" and call["queue"] == "billing"
    stored = [(u["channel"], u["role"], u["start"], u["end"], u["text"]) for u in call["transcript"]["utterances"]]
    streamed = sorted((f["channel"], f["role"], f["start"], f["end"], f["text"]) for f in spoken)
    assert sorted(stored) == streamed
    assert call["qa"] is not None and call["transcript"]["call"]["metadata"]["source"] == "stream"
    audio = httpx.get(f"{server.api}/calls/{done['call_id']}/audio", headers=server.headers(), timeout=30)
    assert audio.status_code == 200 and len(audio.content) == 44 + result.sent_frames * 2 * 2


def test_the_cli_prints_one_json_event_a_line_and_can_have_the_call_heard_again(
    server: RunningServer, evalset: Path
) -> None:
    audio = evalset / "audio/en_timit_LDC93S1_8k.wav"
    cmd = [sys.executable, "-m", "callscribe", "stream", str(audio), "--url", ws_url(server), "--api-key", API_KEY,
           "--speed", "4", "--jsonl", "--language", "en", "--reprocess", "--call-id", "live-cli"]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert lines[0]["type"] == "started" and lines[-1]["type"] == "call_done"
    assert all("t_recv" in e for e in lines) and of_type(lines, "final")
    call = httpx.get(f"{server.api}/calls/{lines[-1]['call_id']}", headers=server.headers(), timeout=30).json()
    t = call["transcript"]
    assert call["name"] == "live-cli" and any("transcribed again" in n for n in t["notes"])
    assert t["call"]["metadata"]["source"] == "stream" and " ".join(u["text"] for u in t["utterances"]).strip()
    bad = subprocess.run([*cmd[:4], str(evalset / "README.md"), *cmd[5:]], capture_output=True, text=True)
    assert bad.returncode == 2 and "README.md" in bad.stderr and "Traceback" not in bad.stderr


def test_redaction_masks_personal_data_in_every_event(server: RunningServer, tmp_path: Path, evalset: Path) -> None:
    try:
        path = phone_call(tmp_path)
    except Exception as exc:  # espeak-ng missing
        pytest.skip(f"cannot synthesize the call: {exc}")
    answers: list[httpx.Response] = []

    def batch_request() -> None:  # the batch worker shares the one engine with the live hub meanwhile
        with open(evalset / "audio/zh_aishell1_BAC009S0764W0121.wav", "rb") as fh:
            answers.append(httpx.post(f"{server.api}/audio/transcriptions", headers=server.headers(),
                                      files={"file": ("a.wav", fh)}, data={"language": "zh"}, timeout=300))  # fmt: skip

    side = threading.Timer(2.0, batch_request)
    side.start()
    start = {"language": "en", "roles": ROLES, "redact": True, "metadata": {"call_id": "live-pii"}}
    result = stream_file(ws_url(server), path, speed=2.0, api_key=API_KEY, start=start)
    side.join(300)
    assert answers and answers[0].status_code == 200 and answers[0].json()["text"].strip()
    assert result.call_done is not None and not result.errors
    texts = [s for e in result.events for s in strings(e)]
    assert any("[" in s for s in texts), f"the number was heard and masked: {texts}"
    for s in texts:
        digits = "".join(ch for ch in s if ch.isdigit())
        assert not find_pii(s, "en") and "8675309" not in digits and "5558675" not in digits, s
        assert not any(len(r.digits) >= 7 for r in digit_runs(s)), s
    call = httpx.get(f"{server.api}/calls/{result.call_done['call_id']}", headers=server.headers(), timeout=30).json()
    stored = " ".join(u["text"] for u in call["transcript"]["utterances"])
    assert not find_pii(stored, "en") and any("redacted" in n for n in call["transcript"]["notes"]), stored


def test_a_dropped_connection_keeps_everything_received(server: RunningServer, call_file: tuple[Path, Any]) -> None:
    path, ref = call_file
    turn = ref.turns[1]
    cut = (turn.start + turn.end) / 2  # mid-turn
    start = {"language": "zh", "roles": ROLES, "metadata": {"call_id": "live-drop"}}
    result = stream_file(ws_url(server), path, speed=3.0, api_key=API_KEY, start=start, stop_after_s=cut)
    assert result.call_done is None and abs(result.sent_s - cut) < 0.2
    deadline, found = time.monotonic() + 300, None
    while found is None and time.monotonic() < deadline:
        listed = httpx.get(f"{server.api}/calls", headers=server.headers(), params={"limit": 100}, timeout=30).json()
        found = next((c for c in listed["data"] if c["name"] == "live-drop"), None) if "data" in listed else None
        time.sleep(0.5)
    assert found is not None, "the call is stored although the client vanished"
    call = httpx.get(f"{server.api}/calls/{found['id']}", headers=server.headers(), timeout=30).json()
    assert abs(call["transcript"]["call"]["duration"] - result.sent_s) < 0.02
    assert any("connection dropped" in n for n in call["transcript"]["notes"])
    assert any(u["channel"] == turn.channel and u["end"] > turn.start for u in call["transcript"]["utterances"])
    audio = httpx.get(f"{server.api}/calls/{found['id']}/audio", headers=server.headers(), timeout=30)
    assert len(audio.content) == 44 + result.sent_frames * 2 * 2


def _raw(url: str, *messages: str | bytes, key: str | None = API_KEY) -> tuple[list[dict[str, Any]], int | None, str]:
    """Send messages on a fresh connection; every event until the server closes, its close code and reason."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    headers = {"Authorization": f"Bearer {key}"} if key else None
    events: list[dict[str, Any]] = []
    with connect(url, additional_headers=headers, open_timeout=30) as ws:
        try:
            for m in messages:
                ws.send(m)
        except ConnectionClosed:
            pass  # refused before all was sent: its answer is still in the buffer
        try:
            while True:
                events.append(json.loads(ws.recv(timeout=120)))
        except ConnectionClosed as exc:
            return events, exc.rcvd.code if exc.rcvd else None, exc.rcvd.reason if exc.rcvd else ""
    return events, None, ""


def test_bad_input_gets_an_error_event_and_a_close_never_a_crash(server: RunningServer) -> None:
    url = ws_url(server)
    good = json.dumps({"type": "start", "sample_rate": 16000, "channels": 1})
    cases = [
        (("{not json",), API_KEY, "invalid_json", 1007),
        ((json.dumps({"type": "start", "sample_rate": 44100}),), API_KEY, "unsupported_audio", 1003),
        ((b"\x00\x01" * 100,), API_KEY, "expected_start", 1007),
        ((good, b"\x00\x01\x02"), API_KEY, "bad_frame", 1007),
        ((good, b"\x00\x00" * 40000), API_KEY, "frame_too_large", 1009),
        ((good, json.dumps({"type": "pause"})), API_KEY, "unexpected_message", 1007),
        ((good,), None, "missing_api_key", 1008),
        ((good,), "wrong-key", "invalid_api_key", 1008),
    ]
    for messages, key, code, close in cases:
        events, got_close, reason = _raw(url, *messages, key=key)
        errors = of_type(events, "error")
        assert [e["code"] for e in errors] == [code], (code, events)
        assert got_close == close and reason, (code, got_close, reason)
        if len(messages) > 1 and key == API_KEY:  # after a good start the call is still finished
            assert events[-1]["type"] == "call_done"
    events, close, _ = _raw(ws_url(server, API_KEY), good, b"\x00\x00" * 1600, json.dumps({"type": "stop"}), key=None)
    assert events[0]["type"] == "started" and events[-1]["type"] == "call_done" and close == 1000  # ?api_key= works
    assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200 and server.proc.poll() is None


def test_streams_over_the_limit_are_refused_with_a_clear_reason(server: RunningServer) -> None:
    from websockets.sync.client import connect

    headers = {"Authorization": f"Bearer {API_KEY}"}
    start = json.dumps({"type": "start", "sample_rate": 16000, "channels": 1})
    with contextlib.ExitStack() as stack:
        held = [stack.enter_context(connect(ws_url(server), additional_headers=headers, open_timeout=30))
                for _ in range(2)]  # fmt: skip
        _hold_two_and_try_a_third(server, held, start)
    events, close, _ = _raw(ws_url(server), start, json.dumps({"type": "stop"}))
    assert events[0]["type"] == "started" and close == 1000  # room again once they ended


def _hold_two_and_try_a_third(server: RunningServer, held: list[Any], start: str) -> None:
    try:
        for ws in held:
            ws.send(start)
            assert json.loads(ws.recv(timeout=60))["type"] == "started"
        events, close, reason = _raw(ws_url(server), start)
        assert [e["code"] for e in of_type(events, "error")] == ["too_many_streams"]
        assert close == 1013 and "--max-streams 2" in reason
    finally:
        for ws in held:
            ws.send(json.dumps({"type": "stop"}))
            while json.loads(ws.recv(timeout=120))["type"] != "call_done":
                pass


def test_the_review_desk_live_page_shows_a_call_while_it_streams(
    server: RunningServer, call_file: tuple[Path, Any]
) -> None:
    path, _ref = call_file
    start = {"language": "zh", "roles": ROLES, "metadata": {"call_id": "live-board", "agent_id": "L1"}}
    played: dict[str, Any] = {}
    player = threading.Thread(
        target=lambda: played.update(result=stream_file(ws_url(server), path, speed=1.5, api_key=API_KEY, start=start))
    )
    player.start()
    seen: list[dict[str, Any]] = []
    while player.is_alive():
        board = httpx.get(f"{server.url}/ui/api/live", headers=server.headers(), timeout=30).json()
        seen += [c for c in board["calls"] if c.get("agent_id") == "L1" and c["lines"]]
        time.sleep(0.5)
    player.join()
    assert played["result"].call_done is not None
    assert seen, "the streaming call was on the live page with its lines while it played"
    assert all(line["role"] in ROLES for c in seen for line in c["lines"])
    after = httpx.get(f"{server.url}/ui/api/live", headers=server.headers(), timeout=30).json()
    assert not [c for c in after["calls"] if c.get("agent_id") == "L1"], "a finished call leaves the live page"
