"""The engine worker: one thread owns the one engine; requests reach it through a queue and come back as futures.

Every request hands in ``(path, sha256, RequestOptions)`` and gets a ``Future`` that resolves to a
:class:`~callscribe.model.Transcript` or a :class:`~callscribe.pipeline.CallError`. The thread loads the engine once,
then loops: it waits for the first item, and runs :meth:`Pipeline.run` over a *feed* that hands the pipeline every
item already queued with the same request options, without ever blocking. ``Pipeline.run`` pulls from the feed
while it has calls being prepared, so requests that arrive while earlier ones are decoded join the same run and
their clips share engine batches (the cross-call batching of the batch runner). When the feed is empty the run
finishes what it holds and ends; the loop then starts the next run with whatever arrived meanwhile. Items whose
options differ (another language, their own hotwords, word timestamps, a changed server glossary) wait, in order,
for a run of their own: a run is one :class:`Pipeline` sharing the one engine instance.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from callscribe.model import Transcript
from callscribe.options import Options
from callscribe.pipeline import CallError, Pipeline, one_line

log = logging.getLogger("callscribe.server")

Result = Transcript | CallError


@dataclass(frozen=True)
class RequestOptions:
    """What one request may change about the pipeline; requests with equal options share a run."""

    language: str | None = None
    hotwords: tuple[str, ...] = ()
    corrections: tuple[tuple[str, str], ...] = ()
    word_timestamps: bool = False
    channel_roles: tuple[str, ...] = ()  # a call's own roles by channel (POST /v1/calls)
    # the server's glossary as read now (terms, corrections), in place of the one the pipeline was built with
    glossary: tuple[tuple[str, ...], tuple[tuple[str, str], ...]] | None = None

    def apply(self, base: Options) -> Options:
        if self == RequestOptions():
            return base
        if self.glossary is not None:
            base = base.replace(hotwords=self.glossary[0], corrections=self.glossary[1])
        changes: dict[str, object] = {}
        if self.language:
            changes["language"] = self.language
        if self.hotwords or self.corrections:
            changes["hotwords"] = tuple(dict.fromkeys((*base.hotwords, *self.hotwords)))
            changes["corrections"] = tuple(dict.fromkeys((*base.corrections, *self.corrections)))
        if self.word_timestamps:
            changes["timestamps"] = "word"
        if self.channel_roles:
            changes["channel_roles"] = self.channel_roles
        return base.replace(**changes)


@dataclass
class _Item:
    path: str
    sha: str
    options: RequestOptions
    future: Future[Result]
    queued_at: float = field(default_factory=time.monotonic)


class WorkerStopped(RuntimeError):
    """The worker is shutting down (or never started): no new work."""


class QueueFull(RuntimeError):
    """More requests are waiting than the server takes."""


class _Feed:
    """The sources of one run: queued items with the run's options, handed over without blocking.

    A reusable iterator: ``StopIteration`` only says "nothing now" (``Pipeline.run`` asks again after preparing the
    next call). Items with other options are parked in ``later`` for the runs after this one.
    """

    def __init__(self, worker: EngineWorker, first: _Item) -> None:
        self.worker = worker
        self.options = first.options
        self.waiting: dict[str, list[_Item]] = {}
        self._add(first)
        self._fresh = [first]

    def _add(self, item: _Item) -> bool:
        known = item.path in self.waiting
        self.waiting.setdefault(item.path, []).append(item)  # the same upload twice: heard once, answered twice
        return not known

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> tuple[str, str]:
        while True:
            if self._fresh:
                item = self._fresh.pop()
                self.worker._started(item)
                return item.path, item.sha
            item = self.worker._take(self.options)
            if item is None:
                raise StopIteration
            if self._add(item):
                self._fresh.append(item)
            else:
                self.worker._started(item)

    def resolve(self, result: Result) -> list[_Item]:
        path = result.call.path if isinstance(result, Transcript) else result.path
        return self.waiting.pop(path, [])


class EngineWorker:
    """One thread, one engine, one queue (see the module docstring)."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        max_queue: int = 256,
        on_event: Callable[[str, Result | None, float], None] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.max_queue = max_queue
        self.on_event = on_event  # ("queued"|"started"|"done"|"failed", result, seconds waited or taken)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue: collections.deque[_Item] = collections.deque()
        self._running = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.ready = threading.Event()
        self.load_error: str | None = None
        self.engine_name: str | None = None
        self.engine_description: str = ""

    # -- the outside --------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="callscribe-engine", daemon=True)
        self._thread.start()

    def submit(self, path: str, sha: str, options: RequestOptions | None = None) -> Future[Result]:
        future: Future[Result] = Future()
        item = _Item(path, sha, options or RequestOptions(), future)
        with self._lock:
            if self._stopping or self._thread is None:
                raise WorkerStopped("the engine worker is not running")
            if self.load_error is not None:
                raise WorkerStopped(f"the engine did not load: {self.load_error}")
            if len(self._queue) >= self.max_queue:
                raise QueueFull(f"{len(self._queue)} requests are waiting (the limit is {self.max_queue})")
            self._queue.append(item)
            self._wake.notify()
        self._event("queued", None, 0.0)
        return future

    def depth(self) -> int:
        """Items queued and not yet handed to a run."""
        with self._lock:
            return len(self._queue)

    def running(self) -> int:
        """Items handed to a run and not yet answered."""
        with self._lock:
            return self._running

    def stop(self, timeout: float = 30.0) -> None:
        with self._lock:
            self._stopping = True
            left = list(self._queue)
            self._queue.clear()
            self._wake.notify_all()
        for item in left:
            item.future.set_exception(WorkerStopped("the server is shutting down"))
        if self._thread is not None:
            self._thread.join(timeout)

    # -- the thread ---------------------------------------------------------------------------------------------
    def _main(self) -> None:
        t0 = time.perf_counter()
        try:
            name = self.pipeline.resolve_engine_name()
            engine = self.pipeline.engine
            self.engine_name = name
            self.engine_description = engine.describe()
        except Exception as exc:
            self.load_error = one_line(exc)
            log.error("engine did not load: %s", self.load_error)
            self._fail_queued(WorkerStopped(f"the engine did not load: {self.load_error}"))
            return
        log.info(
            "engine %s loaded in %.1f s: %s", name, time.perf_counter() - t0, self.engine_description,
            extra={"engine": name},
        )  # fmt: skip
        self.ready.set()
        while True:
            first = self._next_first()
            if first is None:
                return
            self._run(first)

    def _next_first(self) -> _Item | None:
        with self._lock:
            while not self._queue and not self._stopping:
                self._wake.wait()
            if self._stopping:
                return None
            return self._queue.popleft()

    def _take(self, options: RequestOptions) -> _Item | None:
        """The oldest queued item with these options, or None (never blocks)."""
        with self._lock:
            if self._stopping:
                return None
            for i, item in enumerate(self._queue):
                if item.options == options:
                    del self._queue[i]
                    return item
        return None

    def _started(self, item: _Item) -> None:
        with self._lock:
            self._running += 1
        self._event("started", None, time.monotonic() - item.queued_at)

    def _run(self, first: _Item) -> None:
        pipeline = self.pipeline
        if first.options != RequestOptions():
            pipeline = Pipeline(first.options.apply(self.pipeline.options), engine=self.pipeline.engine)
            pipeline.engine_reason = self.pipeline.engine_reason
        feed = _Feed(self, first)
        try:
            for result in pipeline.run(feed, fair=True):
                self._answer(feed.resolve(result), result)
        except Exception as exc:  # the run itself broke: every call still in it gets the reason
            log.exception("pipeline run failed")
            for path, items in list(feed.waiting.items()):
                self._answer(items, CallError(path, "server", f"{path}: {one_line(exc)}"))
            feed.waiting.clear()
        for path, items in list(feed.waiting.items()):  # never answered (cannot happen unless the pipeline lost it)
            self._answer(items, CallError(path, "server", f"{path}: the pipeline returned no result"))

    def _answer(self, items: list[_Item], result: Result) -> None:
        with self._lock:
            self._running -= len(items)
        for item in items:
            if not item.future.done():
                item.future.set_result(result)
            seconds = time.monotonic() - item.queued_at
            self._event("done" if isinstance(result, Transcript) else "failed", result, seconds)

    def _fail_queued(self, exc: Exception) -> None:
        with self._lock:
            left = list(self._queue)
            self._queue.clear()
        for item in left:
            item.future.set_exception(exc)

    def _event(self, kind: str, result: Result | None, seconds: float) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(kind, result, seconds)
        except Exception:  # metrics must never break the worker
            log.debug("worker event hook failed", exc_info=True)
