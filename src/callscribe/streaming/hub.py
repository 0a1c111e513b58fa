"""The live hub: two threads for every open stream, one engine batch per tick.

The *ear* thread takes, every ``TICK_S``, what each stream received through resampling, VAD and turns; it never waits
for the engine, so a turn's end is decided on time and audio does not pile up behind a slow decode. The *voice*
thread gathers the decodes due:
the last decode of every turn that ended (always) and re-decodes of open turns (stalest first) while the batch's
expected engine time stays within ``BATCH_BUDGET_S``, and hands them to the engine as one ``transcribe`` call (one
per language when streams differ). A batch with finals uses the server's beam and word times; a batch of partials
only decodes greedily. The expected time per clip is learnt from the engine's answers, so on a slow
engine partials come less often while finals are never held back; on a GPU many partials share a batch. Results go
back to their sessions, which turn them into events. A stream whose input ended and whose last final is sent is
passed to ``on_heard`` (storing it is not the hub's job).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from callscribe.engines.base import Engine, EngineOptions, EngineResult
from callscribe.pipeline import one_line
from callscribe.streaming.session import Job, StreamSession

log = logging.getLogger("callscribe.streaming")

TICK_S = 0.1
BATCH_BUDGET_S = 1.0  # engine seconds a tick may spend on partials (finals are always heard)
FIRST_CLIP_GUESS_S = 0.5


class TooManyStreams(RuntimeError):
    pass


class StreamHub:
    def __init__(
        self,
        engine: Callable[[], Engine],
        engine_options: Callable[[], EngineOptions],
        *,
        max_streams: int,
        on_heard: Callable[[StreamSession], None],
    ) -> None:
        self._engine = engine
        self._engine_options = engine_options
        self.max_streams = max_streams
        self.on_heard = on_heard
        self._sessions: list[StreamSession] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._ear: threading.Thread | None = None
        self.clip_s = FIRST_CLIP_GUESS_S  # learnt engine seconds per clip in a batch
        self.batches = 0
        self.batch_sizes: list[int] = []  # recent batch sizes (tests and the benchmark read them)

    # -- the outside --------------------------------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._main, name="callscribe-live", daemon=True)
                self._ear = threading.Thread(target=self._listen, name="callscribe-live-ear", daemon=True)
                self._thread.start()
                self._ear.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping = True
        self._wake.set()
        for thread in (self._thread, self._ear):
            if thread is not None:
                thread.join(timeout)

    def add(self, session: StreamSession) -> None:
        with self._lock:
            if len(self._sessions) >= self.max_streams:
                raise TooManyStreams(f"{len(self._sessions)} live streams are open (the server's --max-streams "
                                     f"is {self.max_streams}); try again later")  # fmt: skip
            self._sessions.append(session)
        self.start()
        self._wake.set()

    def count(self) -> int:
        with self._lock:
            return len(self._sessions)

    def wake(self) -> None:
        self._wake.set()

    # -- the threads --------------------------------------------------------------------------------------------
    def _sessions_now(self) -> list[StreamSession]:
        with self._lock:
            return list(self._sessions)

    def _listen(self) -> None:
        """The ear: every tick, each stream's new audio through resampling, VAD and turns (never waits for the
        engine, so turns end on time and a slow engine does not let audio pile up)."""
        while not self._stopping:
            time.sleep(TICK_S)
            for s in self._sessions_now():
                try:
                    with s.state_lock:
                        s.ingest()
                        due = bool(s.pending) or s.hearing_done()
                except Exception as exc:
                    log.exception("stream %s: audio processing failed", s.id)
                    with s.state_lock:
                        s.emit({"type": "error", "code": "internal_error",
                                "message": f"audio processing failed: {one_line(exc)}"})  # fmt: skip
                        s.abandon()
                    due = True
                if due:
                    self._wake.set()

    def _main(self) -> None:
        """The voice: one engine batch per tick."""
        while not self._stopping:
            self._wake.wait(TICK_S)
            self._wake.clear()
            try:
                self._tick()
            except Exception:  # a bug in one tick must not end every stream
                log.exception("live hub tick failed")

    def _tick(self) -> None:
        sessions = self._sessions_now()
        now = time.monotonic()
        finals: list[Job] = []
        partials: list[Job] = []
        for s in sessions:
            with s.state_lock:
                finals += s.final_jobs()
                partials += s.partial_jobs(now, self.clip_s)
        partials.sort(key=lambda j: j.since)
        room = max(0, int((BATCH_BUDGET_S - len(finals) * self.clip_s) / max(self.clip_s, 1e-3)))
        if not finals:
            room = max(1, room)
        batch = finals + partials[:room]
        for skipped in partials[room:]:  # not heard this tick: due again at the next one, first in line
            with skipped.session.state_lock:
                state = skipped.session.open.get(skipped.turn.index)
                if state is not None:
                    state.decoded_wall, state.decoded_until = skipped.since, 0.0
        if batch:
            self._hear(batch)
        for s in sessions:
            with s.state_lock:
                done = s.hearing_done()
            if done:
                self._finish(s)

    def _finish(self, session: StreamSession) -> None:
        with self._lock:
            if session not in self._sessions:
                return
            self._sessions.remove(session)
        try:
            self.on_heard(session)
        except Exception:
            log.exception("stream %s: finishing failed", session.id)

    def _hear(self, batch: Sequence[Job]) -> None:
        groups: dict[str | None, list[Job]] = {}
        for job in batch:
            groups.setdefault(job.language, []).append(job)
        base = self._engine_options()
        for language, jobs in groups.items():
            finals = any(j.kind == "final" for j in jobs)
            # finals as the batch pipeline hears (its beam, word times); partials greedy: about 20 % less per clip
            # on CPU, and only their agreed prefix is ever shown
            options = replace(base, language=language, hotwords=(), timestamps="word" if finals else base.timestamps,
                              beam_size=base.beam_size if finals else 1)  # fmt: skip
            started = time.perf_counter()
            try:
                results = self._engine().transcribe([j.clip for j in jobs], options)
                if len(results) != len(jobs):
                    raise RuntimeError(f"the engine answered {len(results)} of {len(jobs)} clips")
            except Exception as exc:
                reason = one_line(exc)
                log.error("live decode of %d clip(s) failed: %s", len(jobs), reason)
                for job in jobs:
                    with job.session.state_lock:
                        job.session.on_failure(job, reason)
                continue
            elapsed = time.perf_counter() - started
            log.debug("live batch: %d final(s), %d partial(s), %.2f s", sum(j.kind == "final" for j in jobs),
                      sum(j.kind == "partial" for j in jobs), elapsed)  # fmt: skip
            self.clip_s = 0.7 * self.clip_s + 0.3 * elapsed / len(jobs)
            self.batches += 1
            self.batch_sizes = [*self.batch_sizes[-99:], len(jobs)]
            for job, result in zip(jobs, results, strict=True):
                self._deliver(job, result)

    @staticmethod
    def _deliver(job: Job, result: EngineResult) -> None:
        with job.session.state_lock:
            try:
                job.session.on_result(job, result)
            except Exception as exc:
                log.exception("stream %s: result handling failed", job.session.id)
                job.session.on_failure(job, one_line(exc))
