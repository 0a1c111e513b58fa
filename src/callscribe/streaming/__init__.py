"""Live calls: streaming recognition that works with every engine (docs/streaming.md).

Per channel a streaming VAD opens and closes turns (:mod:`.turns`); an open turn is decoded again every
``PARTIAL_EVERY_S`` and the prefix two consecutive hypotheses agree on is shown as a partial (:mod:`.agreement`); a
closed turn is decoded once more and sent as a final that never changes (decoded ahead at a short pause, and kept
when the turn ends there). One hub thread hands every open stream's decodes to the engine, finals first (:mod:`.hub`),
sharing the server's one engine with the batch worker through a fair lock (:mod:`.engine_share`). Finals are checked
live (:mod:`.live_qa`), masked when redaction is on (:mod:`.live_redact`), and assembled into a call when the stream
ends (:mod:`.finish`); recordings a killed server left behind are finished when it starts again (:mod:`.recover`).
The WebSocket route is ``callscribe.server.stream_routes``; the client is ``callscribe stream``.
"""

from __future__ import annotations

from callscribe.streaming.agreement import stable_prefix
from callscribe.streaming.engine_share import FairLock, SharedEngine, share_engine
from callscribe.streaming.protocol import ProtocolError, StartConfig, parse_start
from callscribe.streaming.turns import EOT_SILENCE_S, ChannelTurns, SilenceEnd, Turn

__all__ = [
    "EOT_SILENCE_S",
    "ChannelTurns",
    "FairLock",
    "ProtocolError",
    "SharedEngine",
    "SilenceEnd",
    "StartConfig",
    "Turn",
    "parse_start",
    "share_engine",
    "stable_prefix",
]
