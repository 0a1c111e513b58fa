"""The engine worker: one engine, one queue, concurrent requests batched across calls, results to the right caller."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path

import pytest
from server_fixtures import EN_ITEM, HOTLINE_ITEM, ZH_ITEM

from callscribe.engines import base as engines
from callscribe.model import Transcript
from callscribe.pipeline import CallError, Pipeline
from callscribe.server.worker import EngineWorker, QueueFull, RequestOptions, WorkerStopped

pytestmark = [pytest.mark.evalset, pytest.mark.slow]


class Recording:
    """The real engine, with a note of which calls' clips each engine call held and with what options."""

    def __init__(self, inner: engines.Engine) -> None:
        self.inner = inner
        self.name = inner.name
        self.batches: list[tuple[tuple[str, ...], str, str | None]] = []

    def describe(self) -> str:
        return self.inner.describe()

    def transcribe(self, clips: Sequence[engines.Clip], options: engines.EngineOptions) -> list[engines.EngineResult]:
        self.batches.append((tuple(c.call_id for c in clips), options.timestamps, options.language))
        return self.inner.transcribe(clips, options)


@pytest.fixture(scope="module")
def recording() -> Recording:
    return Recording(engines.create("whisper"))


def _wait(future: Future) -> Transcript:
    result = future.result(timeout=300)
    assert isinstance(result, Transcript), result
    return result


def test_concurrent_calls_share_engine_batches(recording, evalset):
    zh, en, hotline = (str(evalset / item) for item in (ZH_ITEM, EN_ITEM, HOTLINE_ITEM))
    worker = EngineWorker(Pipeline({"engine": "whisper"}, engine=recording))  # type: ignore[arg-type]
    recording.batches.clear()
    worker.start()
    try:
        futures = {
            "zh": worker.submit(zh, "a"),
            "en": worker.submit(en, "b"),
            "hotline": worker.submit(hotline, "c"),
            "zh again": worker.submit(zh, "a"),
            "words": worker.submit(en, "b", RequestOptions(word_timestamps=True)),
            "forced zh": worker.submit(hotline, "c", RequestOptions(language="zh")),
        }
        results = {name: _wait(f) for name, f in futures.items()}
    finally:
        worker.stop()
    assert results["zh"].call.path == zh and results["en"].call.path == en and results["hotline"].call.path == hotline
    assert results["zh again"] is results["zh"]  # the same upload in one run is heard once, answered twice
    ids = {name: Path(results[name].call.path).stem for name in results}
    plain = [set(calls) for calls, stamps, language in recording.batches if stamps == "segment" and language is None]
    assert any(len(calls) >= 2 for calls in plain), recording.batches  # clips of several calls in one engine call
    worded = [set(calls) for calls, stamps, _ in recording.batches if stamps == "word"]
    assert worded and all(calls == {ids["words"]} for calls in worded)  # other options: a run of its own
    assert any(u.words for u in results["words"].utterances)
    assert not any(u.words for u in results["en"].utterances)
    forced = [set(calls) for calls, _, language in recording.batches if language == "zh"]
    assert forced and all(calls == {ids["forced zh"]} for calls in forced)
    assert results["forced zh"].language == "zh"
    assert worker.depth() == 0 and worker.running() == 0


def test_a_call_that_fails_is_answered_with_its_reason(recording, evalset, tmp_path):
    bad = tmp_path / "noise.wav"
    bad.write_bytes(b"RIFF" + bytes(range(256)) * 4)
    worker = EngineWorker(Pipeline({"engine": "whisper"}, engine=recording))  # type: ignore[arg-type]
    worker.start()
    try:
        failed = worker.submit(str(bad), "x").result(timeout=300)
        good = worker.submit(str(evalset / ZH_ITEM), "y").result(timeout=300)
    finally:
        worker.stop()
    assert isinstance(failed, CallError) and failed.stage == "decode" and failed.path == str(bad)
    assert isinstance(good, Transcript) and good.text


def test_queue_limit_and_stop(tmp_path, evalset):
    worker = EngineWorker(Pipeline({"engine": "whisper"}), max_queue=1)  # the engine loads in the thread
    with pytest.raises(WorkerStopped):
        worker.submit(str(evalset / ZH_ITEM), "a")  # not started
    worker.start()
    first = worker.submit(str(evalset / ZH_ITEM), "a")  # waits while the engine loads
    with pytest.raises(QueueFull):
        worker.submit(str(evalset / EN_ITEM), "b")
    worker.stop()
    with pytest.raises(WorkerStopped):
        first.result(timeout=60)
    with pytest.raises(WorkerStopped):
        worker.submit(str(evalset / ZH_ITEM), "a")


def test_an_engine_that_cannot_load(tmp_path, evalset):
    not_a_model = tmp_path / "model"
    not_a_model.mkdir()
    worker = EngineWorker(Pipeline({"engine": "whisper", "model": str(not_a_model)}))
    worker.start()
    with pytest.raises(WorkerStopped, match=r"model\.bin is missing"):  # queued while loading, or refused after
        worker.submit(str(evalset / ZH_ITEM), "a").result(timeout=60)
    worker.stop()
    assert not worker.ready.is_set() and worker.load_error and "model.bin" in worker.load_error
    with pytest.raises(WorkerStopped):
        worker.submit(str(evalset / ZH_ITEM), "a")
