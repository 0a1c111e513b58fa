"""Calls in progress, for the live page: the hook the streaming endpoint reports to.

The desk reads ``app.state.live_calls``: any object with ``live_calls() -> list[LiveCall]`` (a
:class:`LiveSource`). :func:`live_board` returns the app's :class:`LiveBoard` (made and installed there on first
use), which a streaming session fills as it goes::

    board = live_board(app)
    board.begin(session_id, agent_id="A17", queue="billing")
    board.line(session_id, role="customer", text="我的话费…", start=12.3, final=False)   # a partial: replaces
    board.line(session_id, role="customer", text="我的话费多扣了。", start=12.3, final=True)
    board.alert(session_id, "customer asked for a supervisor")
    board.end(session_id)                                                                 # gone from the page

The page also lists the call jobs the store holds as queued or running (recordings being transcribed).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Protocol

MAX_LINES = 200  # per call: the live page shows the latest


@dataclass(frozen=True)
class LiveLine:
    role: str | None
    text: str
    start: float | None = None
    final: bool = True


@dataclass(frozen=True)
class LiveCall:
    id: str
    started_at: datetime
    agent_id: str | None = None
    queue: str | None = None
    lines: tuple[LiveLine, ...] = ()
    alerts: tuple[str, ...] = ()
    updated: float = field(default_factory=time.monotonic, compare=False)


class LiveSource(Protocol):
    def live_calls(self) -> list[LiveCall]: ...


class LiveBoard:
    """Live calls by session id (thread-safe); a partial line replaces the party's previous partial."""

    def __init__(self) -> None:
        self._calls: dict[str, LiveCall] = {}
        self._lock = threading.Lock()

    def begin(self, call_id: str, *, agent_id: str | None = None, queue: str | None = None) -> None:
        with self._lock:
            self._calls[call_id] = LiveCall(call_id, datetime.now(timezone.utc), agent_id, queue)

    def line(
        self, call_id: str, *, role: str | None, text: str, start: float | None = None, final: bool = True
    ) -> None:
        with self._lock:
            call = self._calls.get(call_id)
            if call is None:
                return
            lines = list(call.lines)
            if lines and not lines[-1].final and lines[-1].role == role:
                lines.pop()  # the partial this line continues
            lines.append(LiveLine(role, text, start, final))
            self._calls[call_id] = replace(call, lines=tuple(lines[-MAX_LINES:]), updated=time.monotonic())

    def alert(self, call_id: str, text: str) -> None:
        with self._lock:
            call = self._calls.get(call_id)
            if call is not None:
                self._calls[call_id] = replace(call, alerts=(*call.alerts, text), updated=time.monotonic())

    def end(self, call_id: str) -> None:
        with self._lock:
            self._calls.pop(call_id, None)

    def live_calls(self) -> list[LiveCall]:
        with self._lock:
            return sorted(self._calls.values(), key=lambda c: c.started_at)


def live_board(app: Any) -> LiveBoard:
    """The app's board (installed as ``app.state.live_calls`` the first time)."""
    found = getattr(app.state, "live_calls", None)
    if isinstance(found, LiveBoard):
        return found
    if found is not None:
        raise TypeError("app.state.live_calls holds another live source; report to it directly")
    board = app.state.live_calls = LiveBoard()
    return board


def snapshot(app: Any) -> list[dict[str, Any]]:
    """What the live page shows of each call in progress (JSON-ready)."""
    source = getattr(app.state, "live_calls", None)
    calls = source.live_calls() if source is not None else []
    return [
        {
            "id": c.id,
            "started_at": c.started_at.isoformat(),
            "agent_id": c.agent_id,
            "queue": c.queue,
            "lines": [{"role": x.role, "text": x.text, "start": x.start, "final": x.final} for x in c.lines[-12:]],
            "alerts": list(c.alerts),
        }
        for c in calls
    ]
