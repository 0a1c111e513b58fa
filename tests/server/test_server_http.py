"""The service's HTTP edges over loopback: keys, size limit, not-audio, hostile filenames, errors, operations."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_fixtures import ZH_ITEM, RunningServer, files_under, start_server, stop_server

pytestmark = [pytest.mark.evalset, pytest.mark.slow]

LIMIT = 300_000
ORIGIN = "http://app.example"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("http-server")


@pytest.fixture(scope="module")
def server(root: Path, evalset: Path) -> Iterator[RunningServer]:
    running = start_server(root, "--max-upload", "300KB", "--cors-origin", ORIGIN, "--qa")
    yield running
    stop_server(running)


def _post(server: RunningServer, files: dict, data: dict | None = None, key: str | None = "default",
          headers: dict | None = None) -> httpx.Response:  # fmt: skip
    return httpx.post(
        f"{server.api}/audio/transcriptions",
        files=files,
        data=data or {},
        headers={**server.headers(key), **(headers or {})},
        timeout=300,
    )


def _error(r: httpx.Response, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()["error"]
    assert set(body) >= {"message", "type", "code"}
    assert body["code"] == code
    assert "\n" not in body["message"]
    return str(body["message"])


def _uploads_empty(server: RunningServer) -> None:
    assert files_under(server.data_dir / "uploads") == []


def test_missing_and_wrong_key_are_401(server, evalset):
    audio = (evalset / ZH_ITEM).read_bytes()
    _error(_post(server, {"file": ("a.wav", audio)}, key=None), 401, "missing_api_key")
    _error(_post(server, {"file": ("a.wav", audio)}, key="wrong"), 401, "invalid_api_key")
    r = httpx.get(f"{server.api}/models", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    _error(r, 401, "missing_api_key")
    _uploads_empty(server)


def test_over_the_size_limit_is_413(server):
    blob = os.urandom(LIMIT + 50_000)  # passes the Content-Length check, stopped while streaming
    message = _error(_post(server, {"file": ("big.wav", blob)}), 413, "file_too_large")
    assert str(LIMIT) in message
    huge = os.urandom(LIMIT + 2 * (1 << 20))  # refused from Content-Length alone
    _error(_post(server, {"file": ("huge.wav", huge)}), 413, "file_too_large")
    _uploads_empty(server)


def test_not_audio_is_415_with_the_decoders_reason(server, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("this is a text file, not a recording\n" * 20, encoding="utf-8")
    message = _error(_post(server, {"file": ("notes.wav", text.read_bytes())}), 415, "unsupported_audio")
    assert message.startswith("notes.wav: ")
    assert str(server.data_dir) not in message  # the server's own paths stay private
    empty = _error(_post(server, {"file": ("empty.mp3", b"")}), 415, "unsupported_audio")
    assert empty == "empty.mp3: empty file (0 bytes)"
    _uploads_empty(server)


def test_traversal_filename_is_harmless(server, root, evalset):
    before = files_under(root)
    audio = (evalset / ZH_ITEM).read_bytes()
    for name in ("../../../escape.wav", "/etc/passwd", "..\\..\\evil.wav", "a/../../b.wav\x00.txt"):
        r = _post(server, {"file": (name, audio)}, data={"response_format": "text"})
        assert r.status_code == 200, r.text
        assert r.text.strip()
    assert files_under(root) == before  # only the server log grew; nothing was written anywhere else
    assert not (root.parent / "escape.wav").exists()
    _uploads_empty(server)


def test_bad_fields_are_400(server, evalset):
    audio = (evalset / ZH_ITEM).read_bytes()
    _error(_post(server, {"file": ("a.wav", audio)}, {"response_format": "docx"}), 400, "invalid_value")
    _error(_post(server, {"file": ("a.wav", audio)}, {"language": "klingon"}), 400, "invalid_value")
    _error(_post(server, {"file": ("a.wav", audio)}, {"timestamp_granularities[]": "char"}), 400, "invalid_value")
    _error(_post(server, {"model": (None, "whisper-1")}), 400, "missing_file")
    r = httpx.post(f"{server.api}/audio/transcriptions", json={"file": "x"}, headers=server.headers())
    _error(r, 400, "invalid_content_type")
    _error(httpx.get(f"{server.url}/v1/nothing", headers=server.headers()), 404, "not_found")
    _error(httpx.get(f"{server.api}/calls", headers=server.headers()), 501, "store_not_configured")
    _uploads_empty(server)


def test_health_ready_and_request_ids(server):
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server.url}/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready" and ready.json()["engine"] == "whisper"
    given = httpx.get(f"{server.url}/healthz", headers={"X-Request-ID": "trace-42.a"})
    assert given.headers["x-request-id"] == "trace-42.a"
    made = httpx.get(f"{server.url}/healthz", headers={"X-Request-ID": "bad id\twith junk"})
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    lines = server.log_lines()
    assert any(e.get("request_id") == "trace-42.a" and e.get("route") == "/healthz" for e in lines)
    assert any(e.get("level") == "info" and "engine whisper loaded" in e.get("msg", "") for e in lines)


def test_metrics_after_work(server, evalset):
    r = _post(server, {"file": ("m.wav", (evalset / ZH_ITEM).read_bytes())})
    assert r.status_code == 200
    text = httpx.get(f"{server.url}/metrics").text

    def value(pattern: str) -> float:
        match = re.search(rf"^{pattern} ([0-9.e+-]+)$", text, re.MULTILINE)
        assert match, pattern
        return float(match.group(1))

    assert value(r"callscribe_audio_seconds_total") >= 4.0
    assert value(r"callscribe_engine_seconds_total") > 0.0
    assert value(r'callscribe_jobs_finished_total\{state="done"\}') >= 1
    assert value(r"callscribe_engine_rtf_count") >= 1
    assert value(r"callscribe_queue_depth") == 0
    assert value(r'callscribe_jobs\{state="running"\}') == 0
    assert value(r"callscribe_engine_ready") == 1
    route = r'callscribe_http_requests_total\{method="POST",route="/v1/audio/transcriptions",status="200"\}'
    assert value(route) >= 1


def test_cors_only_for_the_allowed_origin(server):
    preflight = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization"}  # fmt: skip
    r = httpx.options(f"{server.api}/audio/transcriptions", headers=preflight)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == ORIGIN
    other = httpx.options(f"{server.api}/audio/transcriptions", headers={**preflight, "Origin": "http://evil.example"})
    assert other.headers.get("access-control-allow-origin") != "http://evil.example"


def test_verbose_json_carries_the_quality_checks(server, evalset):
    pytest.importorskip("jieba")
    r = _post(server, {"file": ("qa.wav", (evalset / ZH_ITEM).read_bytes())}, {"response_format": "verbose_json"})
    assert r.status_code == 200, r.text
    qa = r.json()["qa"]
    assert {"metrics", "rules", "score", "max_score", "needs_review"} <= set(qa)
    assert 0.0 <= qa["score"] <= qa["max_score"]
    plain = _post(server, {"file": ("qa.wav", (evalset / ZH_ITEM).read_bytes())})
    assert set(plain.json()) == {"text", "usage"}
