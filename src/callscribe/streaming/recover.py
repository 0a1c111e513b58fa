"""Recordings a killed server left in ``DATA/streams``, heard again when the server starts.

A stream's audio is appended to ``DATA/streams/<id>.wav`` as it arrives, and its start message is kept next to it
(``<id>.start.json``) until the call is finished. A server killed mid-call (SIGKILL, power loss) leaves both
behind. At the next start each such recording is repaired (:func:`callscribe.streaming.recorder.repair`), played
through a :class:`~callscribe.streaming.session.StreamSession` with the stream's own start message (its turns and
finals exactly as live, without partials), and finished like any stream (stored, or written as ``<id>.json``).
Finishing removes the recording from the folder (with a store) or writes its transcript next to it, so a recording
is finished once: a second start, or one killed while recovering, finds nothing new or does the same work again (the
store replaces a call with the same recording and options in place).
"""

from __future__ import annotations

import json
import logging
import wave
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from callscribe.outputs.writers import atomic_write_text
from callscribe.streaming.protocol import ProtocolError, StartConfig, parse_start
from callscribe.streaming.session import Job, LiveSettings, StreamSession

log = logging.getLogger("callscribe.streaming")

START_SUFFIX = ".start.json"
BLOCK_S = 1.0  # audio fed to the session at a time (under the session's backlog limit)
NOTE = "the server stopped during the call; the recording was transcribed when it started again"


def start_file(recording: Path) -> Path:
    return recording.with_name(recording.stem + START_SUFFIX)


def write_start(recording: Path, config: StartConfig) -> None:
    """Keep the stream's start message next to its recording (for :func:`left_behind` after a crash)."""
    atomic_write_text(start_file(recording), json.dumps(config.message, ensure_ascii=False, default=str))


def left_behind(folder: Path, skip: Sequence[str] = ()) -> list[Path]:
    """Recordings in ``folder`` that no finished call accounts for (no ``<id>.json`` beside them), oldest first;
    ``skip``: ids of streams open now."""
    if not folder.is_dir():
        return []
    found = [
        p for p in folder.glob("*.wav") if p.stem not in skip and not p.with_suffix(".json").exists() and p.is_file()
    ]
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))


def start_config(recording: Path, sample_rate: int, channels: int) -> StartConfig:
    """The stream's start message, or (none kept, or unreadable) a plain one for the recording's format."""
    kept = start_file(recording)
    if kept.is_file():
        try:
            data = json.loads(kept.read_text(encoding="utf-8"))
            config = parse_start(data)
            if (config.sample_rate, config.channels) == (sample_rate, channels):
                return config
            log.warning("%s: the kept start message does not match the recording; using defaults", kept.name)
        except (ValueError, ProtocolError) as exc:
            log.warning("%s: unreadable start message (%s); using defaults", kept.name, exc)
    return parse_start({"type": "start", "sample_rate": sample_rate, "channels": channels})


def replay(
    stream_id: str, recording: Path, config: StartConfig, live: LiveSettings, hear: Callable[[Sequence[Job]], None]
) -> StreamSession:
    """The recording through a session (turns, finals; no partials), its final decodes handed to ``hear``."""
    config = replace(config, partials=False)
    session = StreamSession(stream_id, config, live, _ignore)
    block = max(1, int(BLOCK_S * config.sample_rate))
    with wave.open(str(recording), "rb") as f:
        while frames := f.readframes(block):
            session.feed(frames)
            _step(session, hear)
    session.end_input(disconnected=True)
    while not session.hearing_done():
        _step(session, hear)
    return session


def _step(session: StreamSession, hear: Callable[[Sequence[Job]], None]) -> None:
    with session.state_lock:
        session.ingest()
        jobs = session.final_jobs()
    if jobs:
        hear(jobs)


def _ignore(_event: dict[str, Any]) -> None:
    """Nobody listens to a recovered stream's events."""
