"""Live-stream test helpers: the real server (``callscribe serve`` on loopback), calls to stream, event checks."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("websockets", reason="the live client needs websockets (the [server] extra's uvicorn[standard])")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))

from server_fixtures import API_KEY, RunningServer, start_server, stop_server

from callscribe.cli_stream import Playback, load_pcm, play

__all__ = ["API_KEY", "RunningServer", "start_server", "stop_server"]

# A short two-party stereo call at 8 kHz with bleed, from evalset-dev speech (agent on channel 0).
CALL_TURNS = (("agent", ("cosyvoice",)), ("customer", ("fireredtts2",)), ("agent", ("aishell1",)),
              ("customer", ("wenetspeech",)))  # fmt: skip


def ws_url(server: RunningServer, key: str | None = None) -> str:
    url = server.url.replace("http://", "ws://") + "/v1/stream"
    return f"{url}?api_key={key}" if key else url


def built_call(evalset: Path, out: Path, *, rate: int = 8000) -> tuple[Path, Any]:
    """The stereo call written to ``out/<id>.wav``; returns the path and its reference."""
    from callscribe.eval.calls import CallSpec, TurnSpec, load_pieces, write_call

    spec = CallSpec("stream_zh_stereo", "zh", "stereo", rate,
                    tuple(TurnSpec(party, pieces) for party, pieces in CALL_TURNS), bleed_db=-25.0)  # fmt: skip
    built = write_call(spec, load_pieces(evalset), out)
    return built.audio_path, built.ref


def phone_call(out: Path) -> Path:
    """An espeak-ng stereo call where the customer reads a phone number, part of it after a pause."""
    from synth import AGENT_VOICE_EN, CUSTOMER_VOICE_EN, Turn, build_dialogue, to_stereo, write_wav

    d = build_dialogue([
        Turn("agent", "Thank you for calling. Can I have a phone number to call you back?", AGENT_VOICE_EN),
        Turn("customer", "Sure. My phone number is five five five, eight six seven, five three zero nine.",
             CUSTOMER_VOICE_EN, gap=0.5),
        Turn("customer", "Again, that is five five five, eight six seven,", CUSTOMER_VOICE_EN, gap=0.6),
        Turn("customer", "five three zero nine.", CUSTOMER_VOICE_EN, gap=1.2),
        Turn("agent", "Thank you, we will call you back.", AGENT_VOICE_EN, gap=0.5),
    ])  # fmt: skip
    path = out / "phone_call.wav"
    write_wav(path, to_stereo(d, "agent", "customer", bleed_db=-30.0), d.sample_rate)
    return path


def stream_file(url: str, path: Path, *, speed: float = 3.0, rate: int | None = None, **kwargs: Any) -> Playback:
    pcm, sample_rate = load_pcm(path, rate)
    return play(url, pcm, sample_rate, speed=speed, **kwargs)


def strings(event: dict[str, Any]) -> Iterable[str]:
    """Every text an event carries (text, unstable, evidence, description, message, word texts)."""
    for key in ("text", "unstable", "evidence", "description", "message"):
        value = event.get(key)
        if isinstance(value, str):
            yield value
    for w in event.get("words") or ():
        yield w["text"]


def of_type(events: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e.get("type") == kind]


def silence(seconds: float, rate: int = 16000, channels: int = 1) -> np.ndarray:
    return np.zeros((round(seconds * rate), channels), "<i2")
