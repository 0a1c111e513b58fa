"""The vLLM-like Qwen3-ASR test server (:mod:`vllm_qwen_server`) as a process of its own, driven over loopback."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx

SCRIPT = Path(__file__).with_name("vllm_qwen_server.py")
START_TIMEOUT_S = 180.0


class _Record:
    """What the server process has seen, read afresh on every access of :attr:`requests`."""

    def __init__(self, url: str) -> None:
        self._url = url

    @property
    def requests(self) -> list[dict[str, Any]]:
        response = httpx.get(self._url + "/_test/requests", timeout=30)
        response.raise_for_status()
        return list(response.json())


class QwenASRProcess:
    """``python vllm_qwen_server.py MODEL_DIR`` in a child process: ``url``, ``reset(**changes)``, ``state.requests``
    and ``stop()``, as :class:`vllm_qwen_server.QwenASRServer` offers them in-process."""

    def __init__(self, model_dir: str | Path, log_path: str | Path) -> None:
        self._log = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [sys.executable, str(SCRIPT), str(model_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        first: list[str] = []
        reader = threading.Thread(target=lambda: first.append(self.process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(START_TIMEOUT_S)
        line = first[0].strip() if first else ""
        if not line.startswith("listening "):
            self.stop()
            raise RuntimeError(f"the Qwen3-ASR test server did not start (see {log_path})")
        self.url = line.removeprefix("listening ")
        self.state = _Record(self.url)

    def reset(self, **changes: Any) -> None:
        """A fresh server state (no requests, well-behaved) with ``changes`` applied."""
        httpx.post(self.url + "/_test/reset", json=changes, timeout=30).raise_for_status()

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()  # the server stops when its stdin closes
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


__all__ = ["QwenASRProcess"]
