"""The live-stream protocol: the ``start`` message, the limits, and the shape of every event (docs/streaming.md).

The client sends a JSON ``start``, then binary frames of interleaved 16-bit little-endian PCM, then a JSON ``stop``.
The server sends JSON events: ``started``, ``partial``, ``turn_end``, ``final``, ``alert``, ``error`` and
``call_done``. Anything wrong with what the client sends is a :class:`ProtocolError`: one ``error`` event naming the
cause, then the server closes the connection with the error's close code.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from callscribe.model import ROLES
from callscribe.text.glossary import Glossary, GlossaryError

SAMPLE_RATES = (8000, 16000)
CHANNELS = (1, 2)
ENCODINGS = ("pcm_s16le",)
POST_CALL = ("assemble", "reprocess")
MAX_FRAME_S = 1.0  # the longest audio one binary frame may carry
MAX_BACKLOG_S = 30.0  # audio received and not yet heard by the hub before the stream is refused as overloaded
START_TIMEOUT_S = 10.0
IDLE_TIMEOUT_S = float(os.environ.get("CALLSCRIBE_STREAM_IDLE_S", "30"))  # no message for this long: the call ends
MAX_TEXT_MESSAGE = 64 * 1024
MAX_TERMS = 200
MAX_TERM_CHARS = 64
MAX_METADATA_BYTES = 8 * 1024
END_SILENCE_RANGE = (0.2, 3.0)
_NAME = re.compile(r"[^\w.\-]+", re.UNICODE)
_START_KEYS = {"type", "sample_rate", "channels", "encoding", "language", "roles", "hotwords", "metadata", "redact",
               "post_call", "partials", "end_silence_s"}  # fmt: skip

# WebSocket close codes (RFC 6455 and the registered 1012-1014).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_UNSUPPORTED = 1003
CLOSE_INVALID = 1007
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_TRY_LATER = 1013


class ProtocolError(Exception):
    """Something the client sent (or the server's state) ends the stream: ``code`` for programs, a one-line
    ``message`` for people, and the WebSocket ``close_code``."""

    def __init__(self, code: str, message: str, close_code: int = CLOSE_INVALID) -> None:
        super().__init__(message)
        self.code = code
        self.message = " ".join(message.split())
        self.close_code = close_code

    def event(self) -> dict[str, Any]:
        return {"type": "error", "code": self.code, "message": self.message}


@dataclass(frozen=True)
class StartConfig:
    """A checked ``start`` message."""

    sample_rate: int
    channels: int
    encoding: str = "pcm_s16le"
    language: str | None = None
    roles: tuple[str | None, ...] = ()
    glossary: Glossary = field(default_factory=lambda: Glossary((), ()))
    name: str | None = None  # metadata.call_id, cleaned: the stored call's name
    agent_id: str | None = None
    queue: str | None = None
    call_time: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    redact: bool = False
    post_call: str = "assemble"
    partials: bool = True
    end_silence_s: float | None = None  # silence that ends a turn (None: the server's default)
    message: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # the start message as sent

    @property
    def bytes_per_second(self) -> int:
        return self.sample_rate * self.channels * 2

    @property
    def max_frame_bytes(self) -> int:
        return int(self.bytes_per_second * MAX_FRAME_S)

    def role(self, channel: int) -> str | None:
        return self.roles[channel] if channel < len(self.roles) else None


def _bad(message: str, code: str = "invalid_start", close: int = CLOSE_INVALID) -> ProtocolError:
    return ProtocolError(code, f"start: {message}", close)


def parse_json(text: str) -> dict[str, Any]:
    """A client's text message as a JSON object, or a :class:`ProtocolError`."""
    if len(text) > MAX_TEXT_MESSAGE:
        raise ProtocolError("message_too_large", f"text message of {len(text)} characters (at most {MAX_TEXT_MESSAGE})",
                            CLOSE_TOO_BIG)  # fmt: skip
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ProtocolError("invalid_json", f"not JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError("invalid_message", 'a text message must be a JSON object with a "type"')
    return data


def parse_start(data: dict[str, Any], known_languages: frozenset[str] | None = None) -> StartConfig:
    """Check a ``start`` message; each problem is one line naming the field."""
    if data.get("type") != "start":
        raise ProtocolError("expected_start", f'the first message must be {{"type": "start", ...}}, got type '
                            f'{str(data.get("type"))[:40]!r}')  # fmt: skip
    unknown = sorted(set(data) - _START_KEYS)
    if unknown:
        raise _bad(f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(_START_KEYS))}")
    rate = data.get("sample_rate")
    if rate not in SAMPLE_RATES or isinstance(rate, bool):
        raise _bad(f"sample_rate {rate!r}: send 8000 or 16000 Hz audio", "unsupported_audio", CLOSE_UNSUPPORTED)
    channels = data.get("channels", 1)
    if channels not in CHANNELS or isinstance(channels, bool):
        raise _bad(f"channels {channels!r}: send 1 (mono) or 2 (one party per channel)", "unsupported_audio",
                   CLOSE_UNSUPPORTED)  # fmt: skip
    encoding = data.get("encoding", "pcm_s16le")
    if encoding not in ENCODINGS:
        raise _bad(f"encoding {encoding!r}: only pcm_s16le (16-bit little-endian, interleaved) is taken",
                   "unsupported_audio", CLOSE_UNSUPPORTED)  # fmt: skip
    language = data.get("language")
    if language is not None and not isinstance(language, str):
        raise _bad("language must be a string such as zh or en")
    language = None if language is None or language.strip().lower() in ("", "auto") else language.strip().lower()
    if language is not None and known_languages is not None and language not in known_languages:
        raise _bad(f"language {language!r}: unknown language code; use a code like zh, en, yue (or leave it out)")
    roles = _roles(data.get("roles"), channels)
    post_call = data.get("post_call", "assemble")
    if post_call not in POST_CALL:
        raise _bad(f"post_call {post_call!r}: use assemble or reprocess")
    end_silence = data.get("end_silence_s")
    low, high = END_SILENCE_RANGE
    if end_silence is not None and (
        isinstance(end_silence, bool) or not isinstance(end_silence, int | float) or not low <= end_silence <= high
    ):
        raise _bad(f"end_silence_s {end_silence!r}: seconds of silence that end a turn, {low:g} to {high:g}")
    meta = data.get("metadata") or {}
    if not isinstance(meta, dict):
        raise _bad("metadata must be an object")
    if len(json.dumps(meta, default=str)) > MAX_METADATA_BYTES:
        raise _bad(f"metadata is larger than {MAX_METADATA_BYTES} bytes")
    return StartConfig(
        sample_rate=int(rate),
        channels=int(channels),
        encoding=encoding,
        language=language,
        roles=roles,
        glossary=_glossary(data.get("hotwords")),
        name=_name(meta.get("call_id")),
        agent_id=_text(meta.get("agent_id"), "metadata.agent_id"),
        queue=_text(meta.get("queue"), "metadata.queue"),
        call_time=_time(meta.get("call_time")),
        extra={k: v for k, v in meta.items() if k not in ("call_id", "agent_id", "queue", "call_time")},
        redact=_flag(data.get("redact", False), "redact"),
        post_call=post_call,
        partials=_flag(data.get("partials", True), "partials"),
        end_silence_s=float(end_silence) if end_silence is not None else None,
        message=dict(data),
    )


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if value == "pii":
        return True
    raise _bad(f"{name} must be true or false")


def _roles(value: Any, channels: int) -> tuple[str | None, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > channels:
        raise _bad(f'roles must be a list of at most {channels} role(s), one per channel (e.g. ["agent", "customer"])')
    bad = [r for r in value if r is not None and r not in ROLES]
    if bad:
        raise _bad(f"role {bad[0]!r}: use one of {', '.join(ROLES)} (or null)")
    return tuple(value)


def _glossary(value: Any) -> Glossary:
    if value is None:
        return Glossary((), ())
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad('hotwords must be a list of terms (or "wrong => right" corrections)')
    if len(value) > MAX_TERMS:
        raise _bad(f"hotwords: at most {MAX_TERMS} terms, got {len(value)}")
    try:
        glossary = Glossary.parse("\n".join(v.replace("#", " ").replace("\n", " ") for v in value), source="hotwords")
    except GlossaryError as exc:
        raise _bad(str(exc)) from None
    long = [t for t in glossary.terms if len(t) > MAX_TERM_CHARS]
    if long:
        raise _bad(f"hotwords: term {long[0][:20]!r}... is longer than {MAX_TERM_CHARS} characters")
    return glossary


def _text(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str | int) or isinstance(value, bool) or len(str(value)) > 200:
        raise _bad(f"{name} must be a string of at most 200 characters")
    return str(value)


def _name(value: Any) -> str | None:
    text = _text(value, "metadata.call_id")
    if text is None:
        return None
    return _NAME.sub("_", text).strip("._")[:80] or None


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise _bad(f"metadata.call_time {str(value)[:40]!r}: use ISO 8601, e.g. 2026-01-05T09:30:00Z") from None


def check_frame(size: int, config: StartConfig) -> None:
    """A binary frame's size: a whole number of sample frames, at most ``MAX_FRAME_S`` of audio."""
    if size > config.max_frame_bytes:
        raise ProtocolError("frame_too_large", f"binary frame of {size} bytes: at most {config.max_frame_bytes} "
                            f"({MAX_FRAME_S:g} s of {config.channels}-channel {config.sample_rate} Hz pcm_s16le)",
                            CLOSE_TOO_BIG)  # fmt: skip
    step = 2 * config.channels
    if size % step:
        what = f"{step}-byte sample frames ({config.channels} channel(s) of 16-bit samples)"
        raise ProtocolError("bad_frame", f"binary frame of {size} bytes is not a whole number of {what}")
