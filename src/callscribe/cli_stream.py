"""``callscribe stream FILE``: play a recording to a live ``/v1/stream`` at real time (or faster) and print events.

The file is decoded like any other input (every format FFmpeg reads; mono or stereo), resampled to 16 or 8 kHz,
and sent as 16-bit PCM frames paced by the clock: ``--speed 2`` sends two seconds of audio per second. Events are
printed as they come; ``--jsonl`` prints each as one JSON object with ``t_recv`` added (seconds since the first
audio frame was sent). Exit status: 0 when the call was stored (``call_done``), 1 when the server ended the stream
with an error, 2 for a bad argument or an unreadable file.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

FRAME_S = 0.1
RECV_TIMEOUT_S = 600.0


@dataclass
class Playback:
    """What one run of the client saw."""

    events: list[dict[str, Any]] = field(default_factory=list)
    t0: float | None = None  # monotonic time of the first audio frame
    sent_frames: int = 0  # sample frames sent
    sample_rate: int = 16000
    close_code: int | None = None
    close_reason: str = ""

    @property
    def sent_s(self) -> float:
        return self.sent_frames / self.sample_rate

    @property
    def call_done(self) -> dict[str, Any] | None:
        return next((e for e in self.events if e.get("type") == "call_done"), None)

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == "error"]


def load_pcm(path: Path, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """The recording as int16 ``(n, channels)`` at 16 or 8 kHz (``None``: 8 kHz for telephone-rate files)."""
    import soxr

    from callscribe.audio.decode import SAMPLE_RATE, decode

    audio = decode(path)
    try:
        if audio.channels > 2:
            raise ValueError(f"{path}: {audio.channels} channels; a live stream carries mono or stereo (one party "
                             "per channel)")  # fmt: skip
        rate = sample_rate or (8000 if audio.source_rate <= 8000 else SAMPLE_RATE)
        data = np.stack([audio.read_frames(ch) for ch in range(audio.channels)], axis=1)
    finally:
        audio.close()
    if rate != SAMPLE_RATE:
        data = np.asarray(soxr.resample(data, SAMPLE_RATE, rate), np.float32).reshape(-1, data.shape[1])
    return (np.clip(data, -1.0, 1.0) * 32767.0).astype("<i2"), rate


def play(
    url: str,
    pcm: np.ndarray,
    sample_rate: int,
    *,
    api_key: str | None = None,
    speed: float = 1.0,
    start: dict[str, Any] | None = None,
    on_event: Any = None,
    stop_after_s: float | None = None,
    frame_s: float = FRAME_S,
) -> Playback:
    """Stream ``pcm`` to ``url`` and collect every event until the server closes. ``stop_after_s``: drop the
    connection (without ``stop``) after that much audio, as a client that crashes would."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
    out = Playback(sample_rate=sample_rate)
    message = {"type": "start", "sample_rate": sample_rate, "channels": int(pcm.shape[1]), "encoding": "pcm_s16le",
               **(start or {})}  # fmt: skip
    with connect(url, additional_headers=headers, max_size=None, open_timeout=30) as ws:

        def receive() -> None:
            try:
                while True:
                    event = json.loads(ws.recv(timeout=RECV_TIMEOUT_S))
                    event["t_recv"] = round(time.monotonic() - (out.t0 or time.monotonic()), 3)
                    out.events.append(event)
                    if on_event is not None:
                        on_event(event)
            except ConnectionClosed as exc:
                if exc.rcvd is not None:
                    out.close_code, out.close_reason = exc.rcvd.code, exc.rcvd.reason
            except TimeoutError:
                pass

        reader = threading.Thread(target=receive, name="callscribe-stream-recv", daemon=True)
        reader.start()
        try:
            ws.send(json.dumps(message))
            step = max(1, round(frame_s * sample_rate))
            out.t0 = time.monotonic()
            for k, first in enumerate(range(0, len(pcm), step)):
                if stop_after_s is not None and first / sample_rate >= stop_after_s:
                    ws.socket.close()  # a dropped connection: no stop, no close frame
                    reader.join(5)
                    return out
                due = out.t0 + k * frame_s / speed
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                chunk = pcm[first : first + step]
                ws.send(chunk.tobytes())
                out.sent_frames += len(chunk)
            ws.send(json.dumps({"type": "stop"}))
        except ConnectionClosed:
            pass  # the server ended the stream (its error event says why)
        reader.join(RECV_TIMEOUT_S)
    return out


def _print(event: dict[str, Any], jsonl: bool) -> None:
    if jsonl:
        print(json.dumps(event, ensure_ascii=False), flush=True)
        return
    t = f"[{event.get('t_recv', 0.0):7.2f}s]"
    kind = event.get("type")
    who = f"ch{event.get('channel')} {event.get('role') or ''}".strip()
    if kind == "partial":
        line = f"{t} … {who}: {event.get('text', '')} ‹{event.get('unstable', '')}›"
    elif kind == "final":
        flags = f" [{', '.join(event['flags'])}]" if event.get("flags") else ""
        line = f"{t} ✔ {who} {event['start']:.2f}-{event['end']:.2f}: {event.get('text', '')}{flags}"
    elif kind == "alert":
        line = (
            f"{t} ! {event.get('severity')} {event.get('rule')} at {event.get('time', 0):.1f}s: {event.get('evidence')}"
        )
    elif kind == "error":
        line = f"{t} error {event.get('code')}: {event.get('message')}"
    elif kind == "call_done":
        where = f"call {event['call_id']}" if event.get("call_id") is not None else event.get("transcript", "")
        line = f"{t} call done: {where} ({event.get('utterances')} utterance(s), {event.get('duration')} s)"
    elif kind == "turn_end":
        return
    else:
        line = f"{t} {kind}: {json.dumps({k: v for k, v in event.items() if k != 'type'}, ensure_ascii=False)}"
    print(line, flush=True)


def stream_command(
    file: Annotated[Path, typer.Argument(help="Recording to play (any format the decoder reads; mono or stereo).")],
    url: Annotated[str, typer.Option(help="The server's stream URL.")] = "ws://127.0.0.1:8000/v1/stream",
    api_key: Annotated[
        str | None, typer.Option("--api-key", help="Key with the ingest scope (better: $CALLSCRIBE_API_KEY).")
    ] = None,
    speed: Annotated[float, typer.Option(help="Playback speed: 1 = real time, 4 = four times faster.")] = 1.0,
    jsonl: Annotated[bool, typer.Option("--jsonl", help="One JSON event per line, with t_recv.")] = False,
    sample_rate: Annotated[
        int | None, typer.Option("--sample-rate", help="Send 16000 or 8000 Hz (default: 8000 for 8 kHz files).")
    ] = None,
    language: Annotated[str | None, typer.Option(help="zh, en, ... (default: the server's, else detected).")] = None,
    roles: Annotated[
        str | None, typer.Option(help="Role of each channel, comma-separated, e.g. agent,customer.")
    ] = None,
    redact: Annotated[bool, typer.Option("--redact", help="Ask the server to mask personal data.")] = False,
    reprocess: Annotated[
        bool, typer.Option("--reprocess", help="After the call, transcribe the recording again offline.")
    ] = False,
    call_id: Annotated[str | None, typer.Option("--call-id", help="Name of the call in the store.")] = None,
    hotwords: Annotated[list[str] | None, typer.Option("--hotword", help="Glossary term (repeatable).")] = None,
) -> None:
    """Play a recording to a live stream (/v1/stream) and print partials, finals and alerts."""
    from callscribe.cli import fail
    from callscribe.extras import require

    require("websockets", "server")
    if speed <= 0:
        raise fail(f"--speed must be positive, got {speed}")
    if sample_rate not in (None, 8000, 16000):
        raise fail(f"--sample-rate must be 8000 or 16000, got {sample_rate}")
    try:
        pcm, rate = load_pcm(file, sample_rate)
    except Exception as exc:
        raise fail(" ".join(str(exc).split()) or f"{file}: cannot read") from None
    start: dict[str, Any] = {"redact": redact, "post_call": "reprocess" if reprocess else "assemble"}
    if language:
        start["language"] = language
    if roles:
        start["roles"] = [r.strip() or None for r in roles.split(",")]
    if hotwords:
        start["hotwords"] = list(hotwords)
    if call_id:
        start["metadata"] = {"call_id": call_id}
    key = api_key or os.environ.get("CALLSCRIBE_API_KEY")
    try:
        result = play(url, pcm, rate, api_key=key, speed=speed, start=start, on_event=lambda e: _print(e, jsonl))
    except OSError as exc:
        raise fail(f"{url}: cannot connect ({exc})") from None
    except Exception as exc:  # a refused handshake and such
        raise fail(f"{url}: {' '.join(str(exc).split())}") from None
    if result.call_done is None:
        reason = result.close_reason or (result.errors[0].get("message") if result.errors else "the stream ended")
        print(f"stream ended without a stored call: {reason}", file=sys.stderr)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("stream")(stream_command)
