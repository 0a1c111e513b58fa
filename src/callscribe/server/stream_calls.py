"""The live side of the service: the hub, each stream's recording, and what happens when a stream ends.

A stream's audio is appended to ``DATA/streams/<id>.wav`` as it arrives. When the stream ends (``stop``, an error,
an idle timeout or a dropped connection) and its last final is sent, a finishing thread makes the call: the finals
assembled into a Transcript (or, with ``post_call: reprocess``, the recording heard again by the batch pipeline
through the engine worker), redacted when redaction is on, checked by QA, and, with a call store, stored with the
recording kept under ``DATA/audio/<sha256>.wav`` (as ``POST /v1/calls`` keeps one); the ``call_done`` event then
carries the call's id. Without a store the transcript and QA are written next to the recording
(``DATA/streams/<id>.json``, ``<id>.qa.json``). Recordings a killed server left behind are finished the same way
when the server starts (:mod:`callscribe.streaming.recover`).
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from callscribe.model import Transcript, to_dict
from callscribe.outputs.writers import atomic_write_text
from callscribe.pipeline import one_line
from callscribe.streaming import finish, recover
from callscribe.streaming.engine_share import SharedEngine, share_engine
from callscribe.streaming.hub import StreamHub
from callscribe.streaming.protocol import CLOSE_TRY_LATER, ProtocolError, StartConfig
from callscribe.streaming.recorder import WavRecorder, repair, sha256_of
from callscribe.streaming.session import LiveSettings, StreamSession

if TYPE_CHECKING:
    from callscribe.server.app import Service

log = logging.getLogger("callscribe.server")

REPROCESS_TIMEOUT_S = 3600.0
COPY_BLOCK = 1 << 20


class Recording:
    """A finished recording (one a killed server left behind) where a stream keeps its :class:`WavRecorder`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def close(self) -> str:
        return sha256_of(self.path)


class Stream:
    """One open stream as the route sees it: the session, its recording, and when it is done."""

    def __init__(self, session: StreamSession, recorder: WavRecorder | Recording, *, recovered: bool = False) -> None:
        self.session = session
        self.recorder = recorder
        self.recovered = recovered
        self.done = threading.Event()
        self.call_done: dict[str, Any] | None = None

    def feed(self, pcm: bytes) -> None:
        self.recorder.append(pcm)  # kept first: what was received is never lost, even when the hub is behind
        self.session.feed(pcm)

    def end_input(self, *, disconnected: bool = False) -> None:
        self.session.end_input(disconnected=disconnected)


class LiveService:
    def __init__(self, service: Service) -> None:
        self.service = service
        self.settings = service.settings
        self.engine: SharedEngine = share_engine(service.pipeline)
        self.folder = Path(self.settings.data_dir) / "streams"
        self.max_streams = int(getattr(self.settings, "max_streams", 8))
        self.hub = StreamHub(lambda: self.engine, service.pipeline.engine_options, max_streams=self.max_streams,
                             on_heard=self._heard)  # fmt: skip
        self._finisher = ThreadPoolExecutor(max_workers=2, thread_name_prefix="callscribe-live-finish")
        self._streams: dict[str, Stream] = {}
        self._lock = threading.Lock()
        self._recovering: threading.Thread | None = None
        self._stopping = threading.Event()
        threading.Thread(target=_warm, args=(service.options,), name="callscribe-live-warm", daemon=True).start()

    # -- opening ------------------------------------------------------------------------------------------------
    def check_open(self) -> None:
        """Refuse a stream the server cannot take now (engine not loaded, too many open)."""
        worker = self.service.worker
        if worker.load_error is not None:
            raise ProtocolError("engine_unavailable", f"the engine did not load: {worker.load_error}", CLOSE_TRY_LATER)
        if not worker.ready.is_set():
            raise ProtocolError("engine_unavailable", "the engine is still loading; try again shortly", CLOSE_TRY_LATER)
        with self._lock:
            if len(self._streams) >= self.max_streams:
                busy = f"server busy: {len(self._streams)} live streams open (--max-streams {self.max_streams})"
                raise ProtocolError("too_many_streams", f"{busy}; try again later", CLOSE_TRY_LATER)

    def open(self, config: StartConfig, emit: Callable[[dict[str, Any]], None]) -> Stream:
        self.check_open()
        stream_id = uuid.uuid4().hex[:16]
        self.folder.mkdir(parents=True, exist_ok=True)
        live = LiveSettings(self.service.options, redact="pii" in self.service.options.redact)
        session = StreamSession(stream_id, config, live, emit)
        stream = Stream(session, WavRecorder(self.folder / f"{stream_id}.wav", config.sample_rate, config.channels))
        recover.write_start(stream.recorder.path, config)
        with self._lock:
            self._streams[stream_id] = stream
        try:
            self.hub.add(session)
        except Exception:
            with self._lock:
                self._streams.pop(stream_id, None)
            stream.recorder.close()
            stream.recorder.path.unlink(missing_ok=True)
            recover.start_file(stream.recorder.path).unlink(missing_ok=True)
            raise
        log.info("stream %s opened (%d Hz, %d channel(s))", stream_id, config.sample_rate, config.channels,
                 extra={"stream": stream_id})  # fmt: skip
        return stream

    def open_count(self) -> int:
        with self._lock:
            return len(self._streams)

    # -- finishing ----------------------------------------------------------------------------------------------
    def _heard(self, session: StreamSession) -> None:
        self._finisher.submit(self._finish, session.id)

    def _finish(self, stream_id: str) -> None:
        with self._lock:
            stream = self._streams.get(stream_id)
        if stream is None:
            return
        session = stream.session
        event: dict[str, Any] = {"type": "call_done", "stream_id": stream_id, "call_id": None}
        event.update(duration=round(session.received_s, 3), utterances=len(session.finals))
        try:
            event.update(self._make_call(stream))
        except Exception as exc:
            log.exception("stream %s: the call could not be finished", stream_id)
            event["error"] = f"the call could not be stored: {one_line(exc)} (the recording is kept)"
        finally:
            with self._lock:
                self._streams.pop(stream_id, None)
            stream.call_done = event
            session.emit(event)
            stream.done.set()
            log.info("stream %s done: %s", stream_id, event.get("call_id"), extra={"stream": stream_id})

    def _make_call(self, stream: Stream) -> dict[str, Any]:
        session = stream.session
        sha = stream.recorder.close()
        recording = stream.recorder.path
        kept = self._keep(recording) if self.service.store is not None else recording
        if session.config.post_call == "reprocess":
            t = self._reprocess(session, kept, sha)
            server_redacts = "pii" in self.service.options.redact  # then the pipeline has redacted already
        else:
            t = finish.assemble(session, path=str(kept), sha256=sha, engine=self.engine.describe())
            server_redacts = False
        if stream.recovered:
            t = replace(t, notes=(*t.notes, recover.NOTE))
        if session.redact and not server_redacts:
            t = finish.redact(t)
        qa = finish.check(t, session.options)
        out: dict[str, Any] = {"sha256": sha}
        if qa is not None:
            out["qa"] = {"score": qa.score, "max_score": qa.max_score, "needs_review": qa.needs_review}
        if self.service.store is not None:
            from callscribe.store import CallMeta

            cfg = session.config
            meta = CallMeta(agent_id=cfg.agent_id, call_time=cfg.call_time, queue=cfg.queue, extra=dict(cfg.extra))
            out["call_id"] = self.service.store.add(t, qa, meta=meta)
            recording.unlink(missing_ok=True)
        else:
            atomic_write_text(recording.with_suffix(".json"), t.to_json())
            if qa is not None:
                atomic_write_text(
                    recording.with_suffix(".qa.json"), json.dumps(to_dict(qa), ensure_ascii=False, indent=2)
                )
            out["transcript"] = recording.with_suffix(".json").name
        recover.start_file(recording).unlink(missing_ok=True)
        return out

    def _keep(self, recording: Path) -> Path:
        """The recording copied durably into the audio folder under its sha256 (as POST /v1/calls keeps one)."""
        incoming = self.service.audio.begin(recording.name, limit=1 << 62)
        try:
            with open(recording, "rb") as fh:
                while block := fh.read(COPY_BLOCK):
                    incoming.write(block)
            return incoming.commit().path
        except BaseException:
            incoming.discard()
            raise

    def _reprocess(self, session: StreamSession, path: Path, sha: str) -> Transcript:
        """The recording heard again by the batch pipeline (speakers, glossary checks and all)."""
        from callscribe.server.worker import RequestOptions

        g = session.glossary
        options = RequestOptions(language=session.language, hotwords=g.terms, corrections=g.corrections)
        options = self.service.request_options(options)  # the store's glossary entries as they are now
        result = self.service.worker.submit(str(path), sha, options).result(timeout=REPROCESS_TIMEOUT_S)
        if not isinstance(result, Transcript):
            raise RuntimeError(str(result))
        call = replace(result.call, id=finish.call_name(session),
                       metadata={**result.call.metadata, "source": finish.SOURCE, "stream_id": session.id})  # fmt: skip
        return replace(result, call=call, notes=(*result.notes, "transcribed again after the live stream"))

    # -- recordings a killed server left behind ----------------------------------------------------------------
    def start_recovery(self) -> None:
        """Finish, in the background and once, the recordings a killed server left in ``DATA/streams``."""
        with self._lock:
            if self._recovering is not None:
                return
            skip = tuple(self._streams)
            self._recovering = threading.Thread(target=self._recover, args=(skip,), name="callscribe-live-recover",
                                                daemon=True)  # fmt: skip
        self._recovering.start()

    def _recover(self, skip: tuple[str, ...]) -> None:
        found = recover.left_behind(self.folder, skip)
        if not found:
            return
        worker = self.service.worker
        while not worker.ready.wait(1.0):
            if self._stopping.is_set():
                return
        if worker.load_error is not None:
            log.error("%d stream recording(s) left behind are not transcribed: the engine did not load", len(found))
            return
        log.info("finishing %d stream recording(s) a stopped server left behind", len(found))
        for path in found:
            if self._stopping.is_set():
                return
            try:
                self.recover_one(path)
            except Exception:
                log.exception("stream recording %s could not be finished (it is kept)", path.name)

    def recover_one(self, path: Path) -> dict[str, Any]:
        """Hear one left-behind recording as its stream would have been heard, and store it."""
        rate, channels = repair(path)
        config = recover.start_config(path, rate, channels)
        live = LiveSettings(self.service.options, redact="pii" in self.service.options.redact)
        session = recover.replay(path.stem, path, config, live, self.hub.decode)
        done = self._make_call(Stream(session, Recording(path), recovered=True))
        log.info("stream %s recovered: %s", path.stem, done.get("call_id") or done.get("transcript"))
        return done

    def shutdown(self, timeout: float = 30.0) -> None:
        """End every open stream (their calls are finished) and wait up to ``timeout`` for them."""
        self._stopping.set()
        if self._recovering is not None:
            self._recovering.join(timeout)
        with self._lock:
            streams = list(self._streams.values())
        for stream in streams:
            stream.end_input()
        self.hub.wake()
        for stream in streams:
            stream.done.wait(timeout)
        self.hub.stop()
        self._finisher.shutdown(wait=False)


def _warm(options: Any) -> None:
    """Load the live path's text tools now, so that the first stream's first final does not wait for them."""
    try:
        from callscribe.streaming.live_qa import LiveQA
        from callscribe.text.script import converter

        converter(options.zh_script)("測試")
        LiveQA(options.scorecard, options.language).warm()
    except Exception:  # only a head start
        log.debug("live warm-up failed", exc_info=True)
