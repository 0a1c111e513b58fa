"""The OpenAI-compatible endpoint, driven by the official ``openai`` client against a real ``callscribe serve``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from server_fixtures import (
    EN_ITEM,
    HOTLINE_ITEM,
    ZH_ITEM,
    RunningServer,
    pipeline_text,
    start_server,
    stop_server,
)

openai = pytest.importorskip("openai")
pytestmark = [pytest.mark.evalset, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, evalset: Path) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("openai-server"))
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def client(server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.api, api_key=server.key, max_retries=0, timeout=300)


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory, evalset: Path) -> dict[str, str]:
    """What ``callscribe transcribe`` (the batch CLI, in a subprocess, the engine the server runs) writes of each
    item: the text of its JSON transcript."""
    from callscribe.model import Transcript

    out = tmp_path_factory.mktemp("cli-out")
    items = (ZH_ITEM, EN_ITEM)
    cmd = [sys.executable, "-m", "callscribe", "transcribe", *(str(evalset / i) for i in items), "-o", str(out)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLSCRIBE_")}
    r = subprocess.run([*cmd, "--engine", "whisper", "-f", "json"], capture_output=True, text=True, timeout=600,
                       env=env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    texts = {}
    for item in items:
        t = Transcript.from_dict(json.loads((out / f"{Path(item).stem}.json").read_text(encoding="utf-8")))
        texts[item] = t.text
    assert texts == {item: pipeline_text(evalset / item) for item in items}  # the CLI is the Pipeline
    return texts


def _create(client: openai.OpenAI, path: Path, **kw: object) -> object:
    with path.open("rb") as fh:
        return client.audio.transcriptions.create(model="whisper-1", file=fh, **kw)


@pytest.mark.parametrize("item", [ZH_ITEM, EN_ITEM])
def test_round_trip_matches_the_pipeline(client, evalset, expected, item):
    result = _create(client, evalset / item)
    assert result.text.strip()
    assert result.text == expected[item]


def test_text_srt_vtt(client, evalset, expected):
    path, text = evalset / ZH_ITEM, expected[ZH_ITEM]
    assert _create(client, path, response_format="text").strip() == text
    srt = _create(client, path, response_format="srt")
    blocks = [b for b in srt.strip().split("\n\n") if b.strip()]
    assert blocks
    for n, block in enumerate(blocks, 1):
        lines = block.splitlines()
        assert lines[0] == str(n)
        assert re.fullmatch(r"\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}", lines[1])
    assert text in srt.replace("\n", "")
    vtt = _create(client, path, response_format="vtt")
    assert vtt.startswith("WEBVTT")
    assert re.search(r"\d\d:\d\d:\d\d\.\d{3} --> \d\d:\d\d:\d\d\.\d{3}", vtt)
    assert text in vtt.replace("\n", "")


def test_verbose_json_segments_and_words(client, evalset, expected):
    path = evalset / ZH_ITEM
    verbose = _create(client, path, response_format="verbose_json")
    assert verbose.text == expected[ZH_ITEM]
    assert verbose.language == "zh"
    assert verbose.duration == pytest.approx(4.204, abs=0.05)
    assert verbose.segments and verbose.words is None
    assert "".join(s.text for s in verbose.segments) == verbose.text
    for i, seg in enumerate(verbose.segments):
        assert seg.id == i
        assert 0.0 <= seg.start < seg.end <= verbose.duration + 0.01
        assert seg.avg_logprob <= 0.0
    with_words = _create(client, path, response_format="verbose_json", timestamp_granularities=["word"])
    assert with_words.words and with_words.segments is None
    starts = [w.start for w in with_words.words]
    assert starts == sorted(starts)
    assert all(0.0 <= w.start <= w.end <= with_words.duration + 0.01 and w.word.strip() for w in with_words.words)
    both = _create(client, path, response_format="verbose_json", timestamp_granularities=["word", "segment"])
    assert both.words and both.segments


def test_stream_events(client, evalset, expected):
    with (evalset / ZH_ITEM).open("rb") as fh:
        stream = client.audio.transcriptions.create(model="whisper-1", file=fh, stream=True)
        events = list(stream)
    types = [e.type for e in events]
    assert types[-1] == "transcript.text.done"
    assert types[:-1] and set(types[:-1]) == {"transcript.text.delta"}
    assert "".join(e.delta for e in events[:-1]) == events[-1].text == expected[ZH_ITEM]


def test_stream_is_server_sent_events(server, evalset):
    with (evalset / EN_ITEM).open("rb") as fh, httpx.stream(
        "POST", f"{server.api}/audio/transcriptions", headers=server.headers(), files={"file": fh},
        data={"stream": "true"}, timeout=300,
    ) as r:  # fmt: skip
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert lines and '"transcript.text.done"' in lines[-1]


def test_prompt_becomes_hotwords(client, evalset):
    path = evalset / HOTLINE_ITEM
    biased = _create(client, path, prompt="滨海新区，宽带套餐", response_format="verbose_json")
    assert biased.text == pipeline_text(path, hotwords=("滨海新区", "宽带套餐"))
    assert biased.text != _create(client, path).text  # on this call the glossary changes what is written


def test_concurrent_requests_each_get_their_own_answer(client, evalset, expected):
    items = [ZH_ITEM, EN_ITEM, ZH_ITEM, EN_ITEM]
    with ThreadPoolExecutor(len(items)) as pool:
        texts = list(pool.map(lambda item: _create(client, evalset / item).text, items))
    assert texts == [expected[item] for item in items]


def test_models(client, server):
    preflight = {"Origin": "http://app.example", "Access-Control-Request-Method": "GET"}
    assert "access-control-allow-origin" not in httpx.options(f"{server.api}/models", headers=preflight).headers
    models = client.models.list().data
    assert len(models) == 1
    card = models[0]
    assert card.id == "whisper" and card.object == "model" and card.owned_by == "callscribe"
    assert client.models.retrieve("whisper").id == "whisper"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o-transcribe")


def test_wrong_key_is_refused_by_the_client(server, evalset):
    bad = openai.OpenAI(base_url=server.api, api_key="not-the-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        _create(bad, evalset / ZH_ITEM)
    assert info.value.status_code == 401
    assert info.value.body["code"] == "invalid_api_key"


def test_uploads_are_removed_after_answering(server, client, evalset):
    _create(client, evalset / EN_ITEM)
    uploads = server.data_dir / "uploads"
    assert uploads.is_dir()
    assert list(uploads.iterdir()) == []
