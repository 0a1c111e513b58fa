"""A big upload goes to disk as it arrives: the server's memory does not grow with it (read from /proc)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_fixtures import RunningServer, start_server, stop_server

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")]

TOTAL = 256 * 2**20
CHUNK = 2**20
BOUNDARY = "callscribe-big-upload"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("big-upload-server"))
    yield running
    stop_server(running)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _body() -> Iterator[bytes]:
    """A multipart body with a 256 MiB file part, made as it is sent (chunked: no Content-Length to go by)."""
    yield (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.wav\"\r\n"
           "Content-Type: application/octet-stream\r\n\r\n").encode()  # fmt: skip
    block = os.urandom(CHUNK)
    for n in range(TOTAL // CHUNK):
        yield block[n:] + block[:n]
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def test_a_256_mib_upload_never_sits_in_memory(server):
    assert server.proc is not None
    pid = server.proc.pid
    httpx.get(f"{server.url}/healthz")
    before = _rss_kib(pid)
    peak = [before]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak.append(_rss_kib(pid))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        r = httpx.post(f"{server.api}/audio/transcriptions", content=_body(), headers={
            **server.headers(), "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}, timeout=600)  # fmt: skip
    finally:
        done.set()
        watcher.join(5)
    assert r.status_code == 415, r.text  # all of it arrived and was read, then the decoder refused it
    assert r.json()["error"]["message"].startswith("big.wav: ")
    grew_mib = (max(peak) - before) / 1024
    assert grew_mib < 64, f"server RSS grew {grew_mib:.0f} MiB during a {TOTAL >> 20} MiB upload"
    assert list((server.data_dir / "uploads").iterdir()) == []
