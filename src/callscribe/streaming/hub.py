"""The live hub: two threads for every open stream, finals first.

The *ear* thread takes, every ``TICK_S``, what each stream received through resampling, VAD and turns; it never waits
for the engine, so a turn's end is decided on time and audio does not pile up behind a slow decode. The *voice* thread
gathers the decodes due, finals first: the last decode of every turn that ended (none when the turn's final was already
decoded ahead at a pause, a *guess*), then the guesses of open turns silent for ``SPECULATE_S``, then, only while no
final is due, re-decodes of open turns (stalest first) one engine batch at a time for at most ``BATCH_BUDGET_S``. Finals
and guesses use the server's beam and word times; partials decode greedily without word times. Streams in different
languages make one call per language. Every live decode asks the engine for its live mode
(:data:`~callscribe.engines.whisper_live.LIVE_WINDOW`: Whisper's encoder on the clip's length instead of 30 s; other
engines ignore it). The expected time of a partial is learnt from the engine's answers, so on a slow engine partials
come less often while finals are never held back; on a GPU many partials share a batch. Results go back to their
sessions, which turn them into events. A stream whose input ended and whose last final is sent is passed to ``on_heard``
(storing it is not the hub's job).
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
LIVE_WINDOW = "live_window"  # EngineOptions.extra: the engine's live mode (callscribe.engines.whisper_live)


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
        self.clip_s = FIRST_CLIP_GUESS_S  # learnt engine seconds per clip of a final batch
        self.partial_s = FIRST_CLIP_GUESS_S  # learnt engine seconds per clip of a partial batch
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

    def decode(self, jobs: Sequence[Job]) -> None:
        """Decode ``jobs`` now, in the calling thread (a stream heard outside the hub's ticks), and deliver them."""
        self._hear(jobs)

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
        finals: list[Job] = []
        guesses: list[Job] = []
        for s in sessions:
            with s.state_lock:
                finals += s.final_jobs()
                guesses += s.guess_jobs()
        if finals:
            self._hear(finals)
        if guesses:
            self._hear(guesses)
        if not self._finals_due(sessions):
            self._partials(sessions)
        for s in sessions:
            with s.state_lock:
                done = s.hearing_done()
            if done:
                self._finish(s)

    @staticmethod
    def _finals_due(sessions: Sequence[StreamSession]) -> bool:
        for s in sessions:
            with s.state_lock:
                if s.finals_due():
                    return True
        return False

    def _partials(self, sessions: Sequence[StreamSession]) -> None:
        """Re-decodes of open turns, stalest first, one engine batch at a time while no final is due and for at
        most ``BATCH_BUDGET_S``; the rest are due again at the next tick, first in line."""
        now = time.monotonic()
        due: list[Job] = []
        for s in sessions:
            with s.state_lock:
                due += s.partial_jobs(now, self.partial_s)
        due.sort(key=lambda j: j.since)
        size = max(1, int(getattr(self._engine(), "default_batch", 1) or 1))
        until = time.monotonic() + BATCH_BUDGET_S
        k = 0
        while k < len(due):
            if k and (time.monotonic() + self.partial_s > until or self._finals_due(sessions)):
                break
            self._hear(due[k : k + size])
            k += size
        for skipped in due[k:]:
            with skipped.session.state_lock:
                state = skipped.session.open.get(skipped.turn.index)
                if state is not None:
                    state.decoded_wall, state.decoded_until = skipped.since, 0.0

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
            finals = any(j.kind != "partial" for j in jobs)
            # finals as the batch pipeline hears (its beam, word times); partials greedy without word times (only
            # their agreed prefix is ever shown); every live decode in the engine's live mode
            options = replace(base, language=language, hotwords=(), timestamps="word" if finals else "segment",
                              beam_size=base.beam_size if finals else 1,
                              extra={**base.extra, LIVE_WINDOW: True})  # fmt: skip
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
            log.debug("live batch: %d final(s), %d guess(es), %d partial(s), %.2f s",
                      sum(j.kind == "final" for j in jobs), sum(j.kind == "guess" for j in jobs),
                      sum(j.kind == "partial" for j in jobs), elapsed)  # fmt: skip
            if finals:
                self.clip_s = 0.7 * self.clip_s + 0.3 * elapsed / len(jobs)
            else:
                self.partial_s = 0.7 * self.partial_s + 0.3 * elapsed / len(jobs)
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
