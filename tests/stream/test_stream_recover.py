"""Recordings a killed server left in DATA/streams: finished into the store when the server starts, once."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import wave
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from stream_fixtures import API_KEY, RunningServer, built_call, start_server, stop_server, stream_file, ws_url

from callscribe.streaming import recover
from callscribe.streaming.protocol import parse_start
from callscribe.streaming.recorder import WavRecorder, repair

ROLES = ["agent", "customer"]


def _pcm(seconds: float, rate: int = 8000, channels: int = 2) -> bytes:
    rng = np.random.default_rng(7)
    return (rng.standard_normal(int(seconds * rate) * channels) * 1000).astype("<i2").tobytes()


def test_repair_sets_the_header_to_the_whole_frames_received(tmp_path: Path) -> None:
    rec = WavRecorder(tmp_path / "a.wav", 8000, 2)
    rec.append(_pcm(0.5))  # under a second: the header still says 0 bytes
    rec._fh.write(b"\x01\x02\x03")  # a frame cut off mid-write
    rec._fh.flush()
    with wave.open(str(rec.path)) as w:
        assert w.getnframes() == 0
    assert repair(rec.path) == (8000, 2)
    with wave.open(str(rec.path)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getnframes()) == (8000, 2, 4000)
    assert rec.path.stat().st_size == 44 + 4000 * 4
    (tmp_path / "b.wav").write_bytes(b"not a wav file at all, longer than a header........")
    with pytest.raises(ValueError, match="not a recording"):
        repair(tmp_path / "b.wav")


def test_left_behind_lists_recordings_no_call_accounts_for(tmp_path: Path) -> None:
    for name in ("old", "done", "open"):
        WavRecorder(tmp_path / f"{name}.wav", 16000, 1).close()
    (tmp_path / "done.json").write_text("{}")
    assert [p.stem for p in recover.left_behind(tmp_path, skip=("open",))] == ["old"]
    assert recover.left_behind(tmp_path / "missing") == []


def test_the_start_message_is_kept_and_read_back(tmp_path: Path) -> None:
    message = {"type": "start", "sample_rate": 8000, "channels": 2, "language": "en", "roles": ROLES,
               "metadata": {"call_id": "c-1", "queue": "billing"}, "end_silence_s": 0.8}  # fmt: skip
    path = tmp_path / "s.wav"
    recover.write_start(path, parse_start(message))
    back = recover.start_config(path, 8000, 2)
    assert (back.language, back.roles, back.name, back.queue, back.end_silence_s) == ("en", tuple(ROLES), "c-1",
                                                                                        "billing", 0.8)  # fmt: skip
    plain = recover.start_config(path, 16000, 1)  # does not match the recording: defaults
    assert (plain.sample_rate, plain.channels, plain.name, plain.roles) == (16000, 1, None, ())


def _calls(server: RunningServer, name: str) -> list[dict[str, Any]]:
    listed = httpx.get(f"{server.api}/calls", headers=server.headers(), params={"limit": 200}, timeout=30).json()
    return [c for c in listed.get("data", []) if c["name"] == name]


@pytest.mark.evalset
@pytest.mark.slow
def test_a_killed_servers_stream_is_stored_at_the_next_start_once(evalset: Path, tmp_path: Path) -> None:
    path, ref = built_call(evalset, tmp_path / "calls")
    args = ("--db", f"sqlite:///{tmp_path / 'calls.db'}")
    server = start_server(tmp_path, *args, name="first")
    streams = server.data_dir / "streams"
    start = {"language": "zh", "roles": ROLES, "metadata": {"call_id": "live-killed"}}
    client = threading.Thread(
        target=lambda: stream_file(ws_url(server), path, speed=2.0, api_key=API_KEY, start=start), daemon=True
    )
    try:
        client.start()
        cut = ref.turns[2].end + 0.5  # three turns in
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            wavs = list(streams.glob("*.wav"))
            if wavs and wavs[0].stat().st_size > 44 + cut * 8000 * 4:
                break
            time.sleep(0.1)
        assert server.proc is not None
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait(30)
    finally:
        stop_server(server)
    client.join(60)
    (left,) = streams.glob("*.wav")
    assert json.loads(recover.start_file(left).read_text())["metadata"]["call_id"] == "live-killed"
    size = left.stat().st_size

    again = start_server(tmp_path, *args, name="second")
    try:
        deadline, found = time.monotonic() + 300, []
        while not found and time.monotonic() < deadline:
            found = _calls(again, "live-killed")
            time.sleep(0.5)
        assert len(found) == 1, f"the left-behind stream is stored at restart:\n{again.log_tail()}"
        call = httpx.get(f"{again.api}/calls/{found[0]['id']}", headers=again.headers(), timeout=30).json()
        t = call["transcript"]
        assert any(recover.NOTE in n for n in t["notes"])
        assert abs(t["call"]["duration"] - (size - 44) / (8000 * 4)) < 0.01
        heard = [u for u in t["utterances"] if u["start"] < cut]
        assert {u["channel"] for u in heard} == {0, 1} and all(u["text"] for u in heard)
        assert {s["role"] for s in t["speakers"]} == set(ROLES)
        assert not list(streams.iterdir()), "the recording and its start message left the streams folder"
        audio = httpx.get(f"{again.api}/calls/{found[0]['id']}/audio", headers=again.headers(), timeout=30)
        assert len(audio.content) == size
    finally:
        stop_server(again)

    third = start_server(tmp_path, *args, name="third")  # nothing is left to finish: still one call
    try:
        time.sleep(2.0)
        assert len(_calls(third, "live-killed")) == 1
    finally:
        stop_server(third)
