"""What the pipeline hands around: a call on its way through, and why a call failed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callscribe.engines.base import Clip, EngineResult
from callscribe.model import CallInfo, Span


@dataclass(frozen=True)
class CallError:
    """Why one call failed: a stage name and a one-line reason that names the file."""

    path: str
    stage: str
    reason: str

    def __str__(self) -> str:
        return self.reason if self.reason.startswith(self.path) else f"{self.path}: {self.reason}"


class StageError(Exception):
    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


@dataclass
class _Call:
    """A call on its way through: prepared audio, its clip generator, and the results gathered so far."""

    info: CallInfo
    audio: Any  # callscribe.audio.DecodedAudio
    plan: Any  # callscribe.speakers.stage.SpeakerPlan
    clips: Iterator[Clip]
    timings: dict[str, float]
    notes: list[str] = field(default_factory=list)
    results: list[tuple[Clip, EngineResult]] = field(default_factory=list)
    uncovered: list[tuple[Clip, Span]] = field(default_factory=list)  # speech left without text after recovery
    exhausted: bool = False


def sha256_file(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
