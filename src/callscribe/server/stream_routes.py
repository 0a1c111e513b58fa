"""``/v1/stream``: live calls over a WebSocket (protocol in docs/streaming.md).

The same keys as the HTTP API (``Authorization: Bearer KEY`` or ``?api_key=KEY``; the ``ingest`` scope). The server
accepts the connection first, so that every refusal (no key, no scope, too many streams, engine not ready, a bad
``start``) reaches the client as one ``error`` event followed by a close frame whose reason repeats it.
:func:`install` adds the route and the live service to an app; ``create_app`` calls it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, WebSocket

from callscribe.server.auth import Access
from callscribe.server.errors import ApiError
from callscribe.server.stream_calls import LiveService, Stream
from callscribe.streaming import protocol as p

log = logging.getLogger("callscribe.server")

router = APIRouter()
SCOPE = "ingest"
FINISH_WAIT_S = 3600.0  # how long a client that said stop is kept waiting for call_done at most
SHUTDOWN_WAIT_S = 30.0
MAX_QUEUED_EVENTS = 256  # events waiting for a slow client before its partials are dropped


def install(app: FastAPI) -> None:
    """Add ``/v1/stream`` and the live service to an app made by ``create_app`` (before it starts)."""
    live = LiveService(app.state.service)
    app.state.live = live
    app.include_router(router)
    outer = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[Any]:
        async with outer(a) as state:
            live.start_recovery()  # recordings a killed server left behind
            try:
                yield state
            finally:  # open streams end and are stored before the service (and its store) stops
                await asyncio.to_thread(live.shutdown, SHUTDOWN_WAIT_S)

    app.router.lifespan_context = lifespan


def _authenticate(ws: WebSocket) -> None:
    access: Access = ws.app.state.access
    header = ws.headers.get("authorization")
    key = ws.query_params.get("api_key")
    if not header and key:
        header = f"Bearer {key}"
    try:
        principal = access.principal(header)
    except ApiError as exc:
        raise p.ProtocolError(exc.code or "unauthorized", exc.message.replace("'Authorization: Bearer <key>'",
                              "'Authorization: Bearer <key>' or ?api_key=<key>"), p.CLOSE_POLICY) from None  # fmt: skip
    if not principal.allows(SCOPE):
        raise p.ProtocolError("insufficient_scope", f"this API key lacks the {SCOPE!r} scope", p.CLOSE_POLICY)


async def _send(ws: WebSocket, event: dict[str, Any]) -> bool:
    try:
        await ws.send_text(json.dumps(event, ensure_ascii=False))
        return True
    except Exception:  # the client has gone
        return False


async def _close(ws: WebSocket, code: int, reason: str = "") -> None:
    with contextlib.suppress(Exception):
        await ws.close(code=code, reason=reason.encode()[:120].decode("utf-8", "ignore"))


async def _refuse(ws: WebSocket, exc: p.ProtocolError) -> None:
    log.info("stream refused: %s", exc.message, extra={"code": exc.code})
    await _send(ws, exc.event())
    await _close(ws, exc.close_code, exc.message)


async def _start(ws: WebSocket) -> p.StartConfig:
    from callscribe.cli import known_languages

    try:
        message = await asyncio.wait_for(ws.receive(), p.START_TIMEOUT_S)
    except asyncio.TimeoutError:
        raise p.ProtocolError("start_timeout", f"no start message within {p.START_TIMEOUT_S:g} s",
                              p.CLOSE_POLICY) from None  # fmt: skip
    if message["type"] == "websocket.disconnect":
        raise p.ProtocolError("disconnected", "the client left before start", p.CLOSE_NORMAL)
    if message.get("text") is None:
        raise p.ProtocolError("expected_start", 'the first message must be the JSON {"type": "start", ...}')
    return p.parse_start(p.parse_json(message["text"]), known_languages())


@router.websocket("/v1/stream")
async def stream_socket(ws: WebSocket) -> None:
    live: LiveService = ws.app.state.live
    await ws.accept()
    try:
        _authenticate(ws)
        live.check_open()
        config = await _start(ws)
    except p.ProtocolError as exc:
        if exc.code != "disconnected":
            await _refuse(ws, exc)
        return
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    board = _Board(ws.app)

    def emit(event: dict[str, Any]) -> None:  # from the hub's and the finisher's threads
        board.report(event)
        if event["type"] == "partial" and events.qsize() > MAX_QUEUED_EVENTS:
            return  # a client this far behind gets the finals; partials would only be stale
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody to tell
            loop.call_soon_threadsafe(events.put_nowait, event)

    try:
        stream = live.open(config, emit)
    except p.ProtocolError as exc:
        await _refuse(ws, exc)
        return
    except Exception as exc:
        log.exception("stream could not open")
        await _refuse(ws, p.ProtocolError("internal_error", f"the stream could not open: {exc}", p.CLOSE_INTERNAL))
        return
    s = stream.session
    board.begin(s.id, config)
    await _send(ws, {"type": "started", "stream_id": s.id, "sample_rate": config.sample_rate,
                     "channels": config.channels, "language": s.language, "redact": s.redact,
                     "max_frame_bytes": config.max_frame_bytes})  # fmt: skip
    sender = asyncio.create_task(_pump(ws, events))
    close_code, reason, gone = await _receive(ws, stream, emit)
    if close_code != p.CLOSE_NORMAL:  # ended on an error: no call_done will take it off the live page
        board.end()
    if gone:  # nobody to answer: the call is still finished and stored in the background
        sender.cancel()
        return
    try:
        await asyncio.wait_for(asyncio.shield(sender), FINISH_WAIT_S)
    except asyncio.TimeoutError:
        sender.cancel()
    await _close(ws, close_code, reason)


async def _receive(ws: WebSocket, stream: Stream, emit: Any) -> tuple[int, str, bool]:
    """Read frames until stop, an error or a disconnect: ``(close code, reason, client gone)``."""
    config = stream.session.config
    live: LiveService = ws.app.state.live
    try:
        while True:
            try:
                message = await asyncio.wait_for(ws.receive(), p.IDLE_TIMEOUT_S)
            except asyncio.TimeoutError:
                raise p.ProtocolError("idle_timeout", f"nothing received for {p.IDLE_TIMEOUT_S:g} s; the call is "
                                      "finished with what was received", p.CLOSE_NORMAL) from None  # fmt: skip
            if message["type"] == "websocket.disconnect":
                stream.end_input(disconnected=True)
                live.hub.wake()
                return p.CLOSE_NORMAL, "", True
            data = message.get("bytes")
            if data is not None:
                p.check_frame(len(data), config)
                stream.feed(data)
                _check_duration(stream, live)
                continue
            command = p.parse_json(message.get("text") or "")
            if command["type"] == "stop":
                stream.end_input()
                live.hub.wake()
                return p.CLOSE_NORMAL, "", False
            raise p.ProtocolError("unexpected_message", f'unexpected message type {str(command["type"])[:40]!r} '
                                  '(after start: binary audio frames, then {"type": "stop"})')  # fmt: skip
    except p.ProtocolError as exc:
        log.info("stream %s: %s", stream.session.id, exc.message, extra={"code": exc.code})
        emit(exc.event())
        stream.end_input()
        live.hub.wake()
        return exc.close_code, exc.message, False
    except Exception as exc:  # the connection broke some other way
        log.info("stream %s: connection lost (%s)", stream.session.id, type(exc).__name__)
        stream.end_input(disconnected=True)
        live.hub.wake()
        return p.CLOSE_GOING_AWAY, "", True


def _check_duration(stream: Stream, live: LiveService) -> None:
    limit = live.service.options.max_duration
    if limit is not None and stream.session.received_s > limit:
        raise p.ProtocolError("audio_too_long", f"the stream passed the server's --max-duration of {limit:g} s; "
                              "the call is finished with what was received", p.CLOSE_POLICY)  # fmt: skip


async def _pump(ws: WebSocket, events: asyncio.Queue[dict[str, Any]]) -> None:
    """Send events in order until call_done (or until the client is gone)."""
    while True:
        event = await events.get()
        if not await _send(ws, event) or event.get("type") == "call_done":
            return


class _Board:
    """Reports one stream to the review desk's live page (``callscribe.server.ui.live``): lines, alerts, the end.

    The events are the ones the client gets (masked when the stream redacts); the page masks again for reviewers
    without ``pii``. A failure here never touches the stream."""

    def __init__(self, app: Any) -> None:
        self.id: str | None = None
        try:
            from callscribe.server.ui.live import live_board

            self.board: Any = live_board(app)
        except Exception:  # the desk is optional: no board, nothing to report
            log.debug("no live board", exc_info=True)
            self.board = None

    def begin(self, stream_id: str, config: Any) -> None:
        if self.board is not None:
            self.id = stream_id
            agent, queue = getattr(config, "agent_id", None), getattr(config, "queue", None)
            self.board.begin(stream_id, agent_id=agent, queue=queue)

    def report(self, event: dict[str, Any]) -> None:
        if self.board is None or self.id is None:
            return
        try:
            kind = event.get("type")
            if kind in ("partial", "final"):
                self.board.line(
                    self.id, role=event.get("role"), text=str(event.get("text", "")), start=event.get("start"),
                    final=kind == "final",
                )  # fmt: skip
            elif kind == "alert":
                self.board.alert(self.id, f"{event.get('rule')}: {event.get('evidence', '')}".strip(": "))
            elif kind == "call_done":
                self.end()
        except Exception:
            log.debug("live board report failed", exc_info=True)

    def end(self) -> None:
        if self.board is not None and self.id is not None:
            with contextlib.suppress(Exception):
                self.board.end(self.id)
