"""Keys and scopes, an open service, an engine that does not load, settings from the environment and the CLI."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from server_fixtures import ZH_ITEM, served_in_thread

from callscribe.server import Principal, Settings, create_app, parse_size

ADMIN = "admin-key-abc"
KEYS = {
    "review-key": Principal("reviewer", frozenset({"review"})),
    "ingest-key": Principal("ingester", frozenset({"ingest"})),
}


class Keys:
    """A key resolver as the call store will give one: presented token -> principal with scopes."""

    def resolve(self, token: str) -> Principal | None:
        return KEYS.get(token)


def _broken_engine_settings(tmp_path: Path, **kw: object) -> Settings:
    model = tmp_path / "not-a-model"
    model.mkdir(exist_ok=True)
    return Settings(engine="whisper", model=str(model), data_dir=tmp_path / "data", db=None, **kw)


def _post(url: str, audio: bytes, key: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(f"{url}/v1/audio/transcriptions", files={"file": ("a.wav", audio)}, headers=headers, timeout=60)


def test_scopes_and_an_engine_that_did_not_load(tmp_path, evalset):
    app = create_app(_broken_engine_settings(tmp_path, api_key=ADMIN))
    app.state.access.resolvers.append(Keys())
    audio = (evalset / ZH_ITEM).read_bytes()
    with served_in_thread(app) as url:
        assert httpx.get(f"{url}/healthz").status_code == 200
        for _ in range(100):  # the load fails at once; wait for the worker thread to say so
            ready = httpx.get(f"{url}/readyz")
            if ready.json()["status"] != "loading":
                break
            time.sleep(0.05)
        assert ready.status_code == 503
        assert ready.json()["status"] == "failed" and "model.bin" in ready.json()["reason"]
        assert _post(url, audio, None).status_code == 401
        refused = _post(url, audio, "review-key")
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "insufficient_scope"
        assert httpx.get(f"{url}/v1/models", headers={"Authorization": "Bearer review-key"}).status_code == 200
        for key in ("ingest-key", ADMIN):  # allowed in, then told the engine is not there
            r = _post(url, audio, key)
            assert r.status_code == 503
            assert r.json()["error"]["code"] == "engine_unavailable"
            assert "model.bin" in r.json()["error"]["message"]
    assert list((tmp_path / "data" / "uploads").iterdir()) == []


def test_open_service_warns(tmp_path, caplog):
    app = create_app(_broken_engine_settings(tmp_path))
    with caplog.at_level(logging.WARNING, logger="callscribe.server"), served_in_thread(app) as url:
        assert httpx.get(f"{url}/v1/models").status_code == 200
    assert any("no API key configured" in r.getMessage() for r in caplog.records)


def test_settings_from_environment_and_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("CALLSCRIBE_MAX_UPLOAD", "2MB")
    monkeypatch.setenv("CALLSCRIBE_CORS_ORIGINS", "http://a.example, http://b.example")
    monkeypatch.setenv("CALLSCRIBE_API_KEY", "from-env")
    monkeypatch.setenv("CALLSCRIBE_LANGUAGE", "auto")
    s = Settings()
    assert s.max_upload == 2_000_000
    assert s.cors_origins == ["http://a.example", "http://b.example"]
    assert s.api_key_value() == "from-env" and "from-env" not in repr(s)
    assert s.language is None
    assert Settings(max_upload="512MiB").max_upload == 512 * 2**20
    assert parse_size("1GB") == 10**9 and parse_size(1000) == 1000
    for bad in ("lots", "-1MB", "0", "1XB"):
        with pytest.raises(ValueError):
            parse_size(bad)
    hotwords = tmp_path / "terms.txt"
    hotwords.write_text("滨海新区\n冰台新区 => 滨海新区\n", encoding="utf-8")
    options = Settings(engine="whisper", hotwords=hotwords, redact="pii", language="zh").options()
    assert options.hotwords == ("滨海新区",) and options.corrections == (("冰台新区", "滨海新区"),)
    assert options.redact == ("pii",) and options.language == "zh"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--max-upload", "lots"], "--max-upload: not a size: 'lots'"),
        (["--hotwords", "/nonexistent/terms.txt"], "hotwords file not found"),
        (["--language", "klingon"], "--language klingon: unknown language code"),
        (["--zh-script", "cyrillic"], "--zh-script must be one of"),
        (["--roles-config", "/nonexistent/roles.yaml"], "roles config not found"),
        (["--channels", "both"], "--channels: channels must be auto, split or mix"),
        (["--max-clip", "45"], "--max-clip: "),
    ],
)
def test_serve_refuses_bad_flags_in_one_line(tmp_path, args, says):
    r = subprocess.run(
        [sys.executable, "-m", "callscribe", "serve", "--data-dir", str(tmp_path / "d"), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2
    lines = [line for line in r.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], r.stderr
