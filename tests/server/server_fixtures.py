"""Start the real service (``python -m callscribe serve``) on a free loopback port and wait until it is ready."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

for _module in ("fastapi", "uvicorn", "pydantic_settings", "prometheus_client", "python_multipart"):
    pytest.importorskip(_module, reason="needs the [server] extra")

READY_TIMEOUT_S = 180.0
API_KEY = "test-key-0123456789"
ZH_ITEM = "audio/zh_aishell1_BAC009S0764W0121.wav"  # 4.2 s, AISHELL-1
EN_ITEM = "audio/en_pocketsphinx_cards_005_numbers.wav"  # 3.5 s
HOTLINE_ITEM = "audio/zh_funasr_llamacpp_sample_hotline.wav"  # 6 s, says 滨海新区


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    url: str
    key: str | None
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def api(self) -> str:
        return f"{self.url}/v1"

    def headers(self, key: str | None = "default") -> dict[str, str]:
        key = self.key if key == "default" else key
        return {"Authorization": f"Bearer {key}"} if key else {}

    def log_lines(self) -> list[dict]:
        out = []
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-n:])


def wait_ready(server: RunningServer, timeout: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc is not None and server.proc.poll() is not None:
            raise RuntimeError(f"server exited with {server.proc.returncode}:\n{server.log_tail()}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"server not ready after {timeout:.0f} s:\n{server.log_tail()}")


def start_server(
    tmp: Path,
    *args: str,
    key: str | None = API_KEY,
    wait: bool = True,
    name: str = "server",
    env: dict[str, str] | None = None,
) -> RunningServer:
    """``callscribe serve`` with the bundled engine in a subprocess (data in ``tmp/data``, log in
    ``tmp/<name>.log``; ``env``: ``CALLSCRIBE_*`` variables it gets, none of this process's); stop it with
    :func:`stop_server`."""
    port = free_port()
    data = tmp / "data"
    log_path = tmp / f"{name}.log"
    cmd = [sys.executable, "-m", "callscribe", "serve", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--data-dir", str(data), "--engine", "whisper", *args]
    if key:
        cmd += ["--api-key", key]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CALLSCRIBE_")} | (env or {})
    log_file = log_path.open("wb")
    proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=environ)
    log_file.close()
    server = RunningServer(f"http://127.0.0.1:{port}", key, data, log_path, proc)
    if wait:
        try:
            wait_ready(server)
        except BaseException:
            stop_server(server)
            raise
    return server


def stop_server(server: RunningServer) -> None:
    if server.proc is None or server.proc.poll() is not None:
        return
    server.proc.terminate()
    try:
        server.proc.wait(30)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait(10)


@contextmanager
def served_in_thread(app: object) -> Iterator[str]:
    """An app (from ``create_app``) on uvicorn in this process, on a free loopback port; yields its URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.05)
    if not server.started:
        raise RuntimeError("in-process server did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def pipeline_text(path: Path, **options: object) -> str:
    """What ``callscribe transcribe`` (the Pipeline) makes of ``path`` with the same engine."""
    from callscribe.pipeline import Pipeline

    return Pipeline({"engine": "whisper", **options}).transcribe(path).text


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def create_key(db: str, name: str, scope: str, *args: str) -> str:
    """``callscribe keys create`` in a subprocess; the key it prints."""
    r = subprocess.run(
        [sys.executable, "-m", "callscribe", "keys", "create", name, "--scope", scope, "--db", db, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def wait_job(server: RunningServer, job_id: str, key: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = httpx.get(f"{server.api}/jobs/{job_id}", headers={"Authorization": f"Bearer {key}"}).json()
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.2)
    raise RuntimeError(f"job {job_id} not finished after {timeout:.0f} s:\n{server.log_tail()}")


class WebhookReceiver:
    """A loopback HTTP server that keeps every POST it gets: ``received`` holds ``(headers, body)`` of each try,
    ``accepted`` those it answered 204. With ``fail_first=N`` it answers 503 to the first N tries of each
    delivery (told apart by ``X-Callscribe-Delivery``)."""

    def __init__(self, fail_first: int = 0, path: str = "/hook", port: int = 0) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.received: list[tuple[dict[str, str], bytes]] = []
        self.accepted: list[tuple[dict[str, str], bytes]] = []
        self.accepted_at: list[float] = []
        tries: dict[str, int] = {}
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = dict(self.headers)
                with lock:
                    receiver.received.append((headers, body))
                    delivery = headers.get("X-Callscribe-Delivery", "")
                    tries[delivery] = tries.get(delivery, 0) + 1
                    ok = tries[delivery] > fail_first
                    if ok:
                        receiver.accepted.append((headers, body))
                        receiver.accepted_at.append(time.time())
                self.send_response(204 if ok else 503)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.prefix = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.url = self.prefix + path
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def events(self) -> list[dict]:
        """The bodies it accepted, parsed."""
        return [json.loads(body) for _, body in self.accepted]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
