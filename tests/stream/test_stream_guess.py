"""Finals decoded ahead at a pause (guesses): used when the turn ends right there, discarded when speech goes on."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from callscribe.engines.base import Clip, EngineOptions, EngineResult, EngineSegment
from callscribe.eval.calls import load_pieces
from callscribe.options import Options
from callscribe.streaming.protocol import parse_start
from callscribe.streaming.session import SPECULATE_S, Job, LiveSettings, StreamSession

RATE = 16000


class CountingEngine:
    """Answers every clip with its length in samples, so a final says exactly which audio was decoded."""

    def __init__(self) -> None:
        self.clips: list[Clip] = []

    def transcribe(self, clips: Sequence[Clip], options: EngineOptions) -> list[EngineResult]:
        self.clips += clips
        return [EngineResult((EngineSegment(0.0, c.duration, f"n{len(c.audio)}"),), "en") for c in clips]


def _hear(session: StreamSession, engine: CountingEngine, jobs: list[Job], kinds: list[str]) -> None:
    for job, result in zip(jobs, engine.transcribe([j.clip for j in jobs], EngineOptions()), strict=True):
        kinds.append(job.kind)
        session.on_result(job, result)


def _play(audio: np.ndarray, *, guesses_until: float = 1e9) -> tuple[StreamSession, list[dict[str, Any]], list[str]]:
    """Feed ``audio`` in 100 ms blocks as the hub does: ingest, finals, then guesses (until ``guesses_until``
    seconds of audio: a busy engine makes no new guess)."""
    config = parse_start({"type": "start", "sample_rate": RATE, "channels": 1, "language": "en",
                          "end_silence_s": 0.6, "partials": False})  # fmt: skip
    events: list[dict[str, Any]] = []
    session = StreamSession("g", config, LiveSettings(Options(language="en")), events.append)
    engine, kinds = CountingEngine(), []
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    for first in range(0, len(pcm), RATE // 10):
        session.feed(pcm[first : first + RATE // 10].tobytes())
        session.ingest()
        _hear(session, engine, session.final_jobs(), kinds)
        if first < guesses_until * RATE:
            _hear(session, engine, session.guess_jobs(), kinds)
    session.end_input()
    session.ingest()
    _hear(session, engine, session.final_jobs(), kinds)
    assert session.hearing_done()
    return session, events, kinds


@pytest.fixture(scope="module")
def speech(evalset: Path) -> tuple[np.ndarray, np.ndarray]:
    pieces = load_pieces(evalset)
    return pieces["timit_LDC93S1_8k"].audio, pieces["ljspeech_LJ002-0020_numbers"].audio


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * RATE), np.float32)


@pytest.mark.evalset
def test_a_turn_that_ends_at_its_pause_gets_the_guess_as_its_final(speech: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = speech
    audio = np.concatenate([_silence(0.5), a, _silence(1.5), b, _silence(1.5)])
    session, events, kinds = _play(audio)
    finals = [e for e in events if e["type"] == "final"]
    assert len(finals) == 2 and kinds.count("guess") == 2 and "final" not in kinds and session.guessed == 2
    _, plain_events, plain_kinds = _play(audio, guesses_until=0.0)
    assert plain_kinds == ["final", "final"]
    # the guesses heard exactly the audio the closed turns' own decodes hear: the same finals
    assert [e for e in plain_events if e["type"] == "final"] == finals
    order = [e["type"] for e in events]
    assert order.index("turn_end") < order.index("final")


@pytest.mark.evalset
def test_a_guess_is_dropped_when_speech_goes_on(speech: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = speech
    pause = SPECULATE_S + 0.2  # long enough for a guess, shorter than the 0.6 s that ends a turn
    audio = np.concatenate([_silence(0.5), a, _silence(pause), b, _silence(1.5)])
    _, plain, _ = _play(audio, guesses_until=0.0)
    (final,) = [e for e in plain if e["type"] == "final"]  # the pause did not end the turn
    session, events, kinds = _play(audio)
    assert kinds == ["guess", "guess"] and session.guessed == 1  # at the pause, then at the end
    assert [e for e in events if e["type"] == "final"] == [final]
    # no guess after the pause (the engine was busy): the pause's guess is stale and the turn is decoded whole
    session, events, kinds = _play(audio, guesses_until=0.5 + len(a) / RATE + pause)
    assert kinds == ["guess", "final"] and session.guessed == 0
    assert [e for e in events if e["type"] == "final"] == [final]
    assert int(final["text"][1:]) > len(a) + len(b)
