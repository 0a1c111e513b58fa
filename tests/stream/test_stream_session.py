"""A live session in-process with the bundled engine: turns to finals to a finished call, and the engine shared with
a batch pipeline through the fair lock."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from stream_fixtures import built_call
from websockets.exceptions import ConnectionClosed

from callscribe.cli_stream import load_pcm
from callscribe.model import QAResult, Transcript, to_dict
from callscribe.pipeline import Pipeline
from callscribe.streaming import finish
from callscribe.streaming.engine_share import SharedEngine, share_engine
from callscribe.streaming.protocol import parse_start
from callscribe.streaming.session import LiveSettings, StreamSession

pytestmark = [pytest.mark.evalset, pytest.mark.slow]


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    p = Pipeline({"engine": "whisper", "threads": 2, "language": "zh"})
    share_engine(p)
    return p


def _run(session: StreamSession, engine: Any, pcm: Any, step: int) -> None:
    """What the hub does, one block at a time: ingest, then the finals due (partials left out)."""

    def hear() -> None:
        jobs = session.final_jobs()
        if jobs:
            options = engine_options(session)
            for job, result in zip(jobs, engine.transcribe([j.clip for j in jobs], options), strict=True):
                session.on_result(job, result)

    def engine_options(s: StreamSession) -> Any:
        from dataclasses import replace

        return replace(pipeline_options, language=s.language, timestamps="word")

    pipeline_options = Pipeline({"engine": "whisper"}).engine_options()
    for first in range(0, len(pcm), step):
        session.feed(pcm[first : first + step].tobytes())
        session.ingest()
        hear()
    session.end_input()
    session.ingest()
    hear()


def test_a_session_makes_one_final_per_turn_and_a_call_that_serialises(
    pipeline: Pipeline, evalset: Path, tmp_path: Path
) -> None:
    path, ref = built_call(evalset, tmp_path)
    pcm, rate = load_pcm(path)
    config = parse_start({"type": "start", "sample_rate": rate, "channels": 2, "language": "zh",
                          "roles": ["agent", "customer"], "metadata": {"call_id": "in-process"}})  # fmt: skip
    events: list[dict[str, Any]] = []
    session = StreamSession("s1", config, LiveSettings(pipeline.options, redact=True), events.append)
    _run(session, pipeline.engine, pcm, rate // 10)
    assert session.hearing_done()
    finals = [e for e in events if e["type"] == "final"]
    assert len([f for f in finals if f["text"]]) >= len(ref.turns) - 1
    for r in ref.turns:  # every reference turn is covered by a final of its own channel
        assert any(f["channel"] == r.channel and f["start"] < r.end and f["end"] > r.start for f in finals), r
    t = finish.redact(finish.assemble(session, path=str(path), sha256="0" * 64, engine=pipeline.engine.describe()))
    assert Transcript.from_json(t.to_json()) == t  # plain types all through: JSON round-trips exactly
    qa = finish.check(t, session.options)
    assert qa is not None and QAResult.from_dict(json.loads(json.dumps(to_dict(qa)))).call_id == "in-process"
    assert {s.role for s in t.speakers} == {"agent", "customer"} and t.options["result_key"].startswith("live-")


def test_the_batch_pipeline_and_a_live_session_share_one_engine(
    pipeline: Pipeline, evalset: Path, tmp_path: Path
) -> None:
    engine = pipeline.engine
    assert isinstance(engine, SharedEngine) and share_engine(pipeline) is engine
    waits = engine.lock.waits
    batch: list[Transcript] = []
    recording = evalset / "audio/zh_aishell1_BAC009S0764W0121.wav"
    runner = threading.Thread(target=lambda: batch.append(pipeline.transcribe(recording)))
    path, _ = built_call(evalset, tmp_path)
    pcm, rate = load_pcm(path)
    config = parse_start({"type": "start", "sample_rate": rate, "channels": 2, "language": "zh"})
    events: list[dict[str, Any]] = []
    session = StreamSession("s2", config, LiveSettings(pipeline.options), events.append)
    runner.start()
    _run(session, engine, pcm, rate // 10)
    runner.join(300)
    assert batch and batch[0].text.strip() and any(e["type"] == "final" and e["text"] for e in events)
    assert engine.lock.waits > waits  # the two threads took turns at the one engine


def test_a_silent_client_is_timed_out_and_its_call_kept(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np
    from server_fixtures import served_in_thread
    from websockets.sync.client import connect

    from callscribe.server.app import create_app
    from callscribe.server.settings import Settings
    from callscribe.streaming import protocol

    monkeypatch.setattr(protocol, "IDLE_TIMEOUT_S", 1.5)
    app = create_app(Settings(engine="whisper", data_dir=tmp_path / "data"), pipeline=pipeline)
    with served_in_thread(app) as url, connect(url.replace("http", "ws") + "/v1/stream", open_timeout=30) as ws:
        deadline = time.monotonic() + 120
        while not app.state.service.worker.ready.is_set() and time.monotonic() < deadline:
            time.sleep(0.2)
        ws.send(json.dumps({"type": "start", "sample_rate": 16000, "channels": 1}))
        ws.send(np.zeros(8000, "<i2").tobytes())
        events = []
        with contextlib.suppress(ConnectionClosed):
            while True:
                events.append(json.loads(ws.recv(timeout=60)))
    kinds = [e["type"] for e in events]
    assert kinds[0] == "started" and kinds[-1] == "call_done", kinds
    assert [e["code"] for e in events if e["type"] == "error"] == ["idle_timeout"]
    done = events[-1]
    assert done["call_id"] is None and (tmp_path / "data" / "streams" / done["transcript"]).is_file()
    assert done["duration"] == 0.5


class _DeafOnChannel:
    """The real engine, except that it hears nothing on one channel (speech Whisper cannot read, or loops it drops)."""

    def __init__(self, engine: Any, channel: int) -> None:
        self.engine, self.channel = engine, channel

    def transcribe(self, clips: list[Any], options: Any) -> list[Any]:
        from callscribe.engines.base import EngineResult

        heard = iter(self.engine.transcribe([c for c in clips if c.channel != self.channel], options))
        nothing = EngineResult((), language=options.language)
        return [nothing if c.channel == self.channel else next(heard) for c in clips]


def test_a_turn_heard_without_text_is_kept_and_flagged(pipeline: Pipeline, evalset: Path, tmp_path: Path) -> None:
    """Speech that comes back without text is a final of its own, flagged ``uncovered`` in the event and in the
    stored call (as the batch pipeline flags it), never dropped."""
    path, ref = built_call(evalset, tmp_path)
    pcm, rate = load_pcm(path)
    config = parse_start({"type": "start", "sample_rate": rate, "channels": 2, "language": "zh",
                          "roles": ["agent", "customer"]})  # fmt: skip
    events: list[dict[str, Any]] = []
    session = StreamSession("s2", config, LiveSettings(pipeline.options), events.append)
    _run(session, _DeafOnChannel(pipeline.engine, 1), pcm, rate // 10)
    finals = [e for e in events if e["type"] == "final"]
    deaf = [f for f in finals if f["channel"] == 1]
    assert deaf and all(f["text"] == "" and f["flags"] == ["uncovered"] for f in deaf)
    assert all("flags" not in f for f in finals if f["channel"] == 0 and f["text"])
    for r in ref.turns:
        if r.channel == 1:  # every customer turn is still there, as speech without text
            assert any(f["start"] < r.end and f["end"] > r.start for f in deaf), r
    t = finish.assemble(session, path=str(path), sha256="0" * 64, engine="whisper")
    stored = [u for u in t.utterances if u.channel == 1]
    assert [(u.start, u.end) for u in stored] == [(f["start"], f["end"]) for f in deaf]
    assert all(u.text == "" and u.flags == ("uncovered",) for u in stored)
    assert any("without text (flagged uncovered" in n for n in t.notes)
