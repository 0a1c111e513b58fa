"""Clips waiting for the engine, gathered across calls, and how they are cut into engine calls.

:meth:`callscribe.pipeline.Pipeline.run` fills the pool from its open calls, hears it one group at a time and
finishes a call as soon as none of its clips is left. Each call's next clip is read one early, so a call is known
to be exhausted the moment its last clip enters the pool (not one pool later).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar

from callscribe.engines.base import Clip


class ClipSource(Protocol):
    clips: Iterator[Clip]
    exhausted: bool


C = TypeVar("C", bound=ClipSource)


class ClipPool(Generic[C]):
    """``(call, clip)`` pairs not heard yet; calls are told apart by identity."""

    def __init__(self) -> None:
        self.waiting: list[tuple[C, Clip]] = []
        self._left: dict[int, int] = {}  # clips of each call taken into the pool and not heard yet
        self._ahead: dict[int, Clip] = {}  # each call's next clip, read early

    def __len__(self) -> int:
        return len(self.waiting)

    def pull(self, call: C, size: int) -> None:
        """Take ``call``'s clips until it has none left or the pool holds ``size``."""
        while not call.exhausted and len(self.waiting) < size:
            key = id(call)
            clip = self._ahead.pop(key) if key in self._ahead else next(call.clips, None)
            following = None if clip is None else next(call.clips, None)
            if following is None:
                call.exhausted = True
            else:
                self._ahead[key] = following
            if clip is not None:
                self.waiting.append((call, clip))
                self._left[key] = self._left.get(key, 0) + 1

    def fill(self, calls: list[C], size: int, fair: bool = False) -> None:
        """Take clips of ``calls`` until the pool holds ``size``: all of one call, then the next (arrival order), or
        with ``fair`` one clip of each call per round, so a call that came later does not wait for every clip of
        the calls before it (the service: a short request behind a long one)."""
        if not fair:
            for call in calls:
                self.pull(call, size)
            return
        while len(self.waiting) < size and not all(call.exhausted for call in calls):
            for call in calls:
                self.pull(call, min(size, len(self.waiting) + 1))

    def holds(self, call: C) -> bool:
        """Whether ``call`` still counts (it has not been dropped)."""
        return id(call) in self._left

    def done(self, call: C) -> bool:
        """Every clip of ``call`` has been taken and heard."""
        return call.exhausted and not self._left.get(id(call))

    def drop(self, call: C) -> None:
        """Forget ``call`` (finished or failed): its clips still in a group are skipped."""
        self._left.pop(id(call), None)
        self._ahead.pop(id(call), None)

    def heard(self, group: list[tuple[C, Clip]]) -> None:
        for call, _ in group:
            if id(call) in self._left:
                self._left[id(call)] -= 1

    def groups(self, batch: int | None) -> list[list[tuple[C, Clip]]]:
        """Empty the pool into engine calls: longest clips first, ``batch`` at a time; all of it in arrival order
        when ``batch`` is None."""
        pool, self.waiting = self.waiting, []
        if not batch:
            return [pool]
        ordered = sorted(pool, key=lambda item: -item[1].duration)  # stable: equal lengths keep their order
        return [ordered[k : k + batch] for k in range(0, len(ordered), batch)]
