"""One engine instance for the batch worker and the live streams: every ``transcribe`` call takes a fair lock.

The service loads one engine, owned by the engine worker's thread, which calls it from ``Pipeline.run`` one batch
at a time. The live hub runs in its own thread and needs the same engine every tick. Rather than a second queue into
the worker (whose runs are long: a run lasts as long as requests keep arriving), the pipeline's engine is wrapped
in a :class:`SharedEngine` before the worker starts: the worker loads and uses it exactly as before, and each
``transcribe`` call, from either thread, takes a first-come first-served lock. A live tick therefore waits for at
most the one engine batch the worker has started (one clip on CPU, a batch of clips on GPU), and a busy live hub
cannot starve the worker either. Engines are never called from two threads at once, so engines that are not
thread-safe (torch models on one GPU) are safe.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from callscribe.engines.base import Clip, Engine, EngineOptions, EngineResult

if TYPE_CHECKING:
    from callscribe.pipeline import Pipeline


class FairLock:
    """A reentrant lock granted in the order it was asked for."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._next = 0
        self._serving = 0
        self._owner: int | None = None
        self._depth = 0
        self.waits = 0  # times a caller had to wait (for metrics and tests)

    def __enter__(self) -> FairLock:
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
                return self
            ticket = self._next
            self._next += 1
            if ticket != self._serving:
                self.waits += 1
            while ticket != self._serving:
                self._cond.wait()
            self._owner, self._depth = me, 1
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with self._cond:
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._serving += 1
                self._cond.notify_all()


class SharedEngine:
    """An :class:`~callscribe.engines.base.Engine` loaded on first use and called under a :class:`FairLock`."""

    def __init__(self, load: Callable[[], Engine]) -> None:
        self._load = load
        self._inner: Engine | None = None
        self._load_lock = threading.Lock()
        self.lock = FairLock()

    @property
    def inner(self) -> Engine:
        with self._load_lock:
            if self._inner is None:
                self._inner = self._load()
            return self._inner

    @property
    def loaded(self) -> bool:
        return self._inner is not None

    @property
    def name(self) -> str:
        return self.inner.name

    def describe(self) -> str:
        return self.inner.describe()

    def transcribe(self, clips: Sequence[Clip], options: EngineOptions) -> list[EngineResult]:
        engine = self.inner
        with self.lock:
            return engine.transcribe(clips, options)

    def __getattr__(self, attr: str) -> Any:  # batch_size and other engine attributes the pipeline reads
        if attr.startswith("_"):
            raise AttributeError(attr)
        return getattr(self.inner, attr)


def share_engine(pipeline: Pipeline) -> SharedEngine:
    """Wrap ``pipeline``'s engine (loaded or not) in a :class:`SharedEngine`, once; the worker and the live hub
    then use the same instance through it. Call before the worker starts."""
    from callscribe.pipeline import Pipeline

    current = pipeline._engine  # the pipeline keeps its one engine here; it has no public setter
    if isinstance(current, SharedEngine):
        return current
    if current is not None:
        loaded = current
        shared = SharedEngine(lambda: loaded)
    else:

        def load() -> Engine:
            loader = Pipeline(pipeline.options)
            loader.engine_name = pipeline.resolve_engine_name()  # resolve `auto` once, as the worker does
            return loader.engine

        shared = SharedEngine(load)
    pipeline._engine = shared
    return shared
