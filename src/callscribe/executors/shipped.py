"""Prepared calls that travel between processes: the CPU stages run in one, the engine stage in another.

The CPU side runs :meth:`Pipeline.prepare <callscribe.pipeline.Pipeline.prepare>` (decode, speech map, speaker
planning) and packs what it made: the call's 16 kHz samples per channel, its speaker plan, notes and timings. The
engine side unpacks that into the ``_Call`` the local executor would have made (samples in memory, or spooled to
temp files once the call is long, exactly as decoding leaves them; clips cut lazily by the same ``iter_clips``) and
runs :meth:`Pipeline.run` over a bundle of such calls. Batching across calls, second decodes of uncovered speech,
glossary re-reads, text and speakers finalize are the local executor's own code, so the transcripts are the same.

Nothing here needs Ray: any executor that moves work between processes can use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from callscribe.audio.decode import BLOCK_FRAMES, SAMPLE_RATE, SPOOL_AFTER_S, DecodedAudio
from callscribe.audio.segment import iter_clips, plan_clips
from callscribe.audio.spool import SampleSpool
from callscribe.engines.base import Engine
from callscribe.model import CallInfo, Transcript
from callscribe.options import Options
from callscribe.pipeline import CallError, Pipeline, StageError, _Call, _with_path, one_line

__all__ = ["Prepared", "PreparedCall", "ShippedPipeline", "pack", "prepare_call", "unpack"]


@dataclass(frozen=True)
class Prepared:
    """What a scheduler needs to know about a prepared call without fetching its audio."""

    path: str
    duration: float = 0.0
    clips: int = 0  # clips the engine will hear (first readings)
    nbytes: int = 0
    error: CallError | None = None


@dataclass
class PreparedCall:
    """A call after the CPU stages, ready to be heard anywhere: plain data, picklable."""

    info: CallInfo
    plan: Any  # callscribe.speakers.stage.SpeakerPlan
    timings: dict[str, float]
    notes: list[str]
    samples: list[np.ndarray]  # one float32 16 kHz array per channel
    audio_path: str
    source_rate: int
    codec: str
    duration: float  # seconds, as decoding measured them
    audio_notes: list[str] = field(default_factory=list)
    clips: int = 0

    @property
    def nbytes(self) -> int:
        return sum(int(s.nbytes) for s in self.samples)


def _clip_args(options: Options, plan: Any) -> dict[str, Any]:
    """How :meth:`Pipeline.prepare` cuts a call's clips (the same arguments, so the same clips)."""
    return {"max_clip_s": options.max_clip_s, "pad_s": options.pad_s, "labels": plan.labels or None}


def pack(call: _Call, options: Options) -> PreparedCall:
    """The prepared call as plain data; its decoded audio is read whole and closed."""
    audio = call.audio
    try:
        samples = [audio.read_frames(ch) for ch in range(audio.channels)]
        clips = len(plan_clips(audio, call.plan.speech, **_clip_args(options, call.plan)))
    finally:
        close = getattr(call.clips, "close", None)
        if close is not None:
            close()
        audio.close()
    return PreparedCall(
        info=call.info,
        plan=call.plan,
        timings=dict(call.timings),
        notes=list(call.notes),
        samples=samples,
        audio_path=audio.path,
        source_rate=int(audio.source_rate),
        codec=str(audio.codec),
        duration=float(audio.duration),
        audio_notes=list(getattr(audio, "notes", ())),
        clips=clips,
    )


def unpack(shipped: PreparedCall, options: Options) -> _Call:
    """The call as :meth:`Pipeline.prepare` returns it: audio open (spooled past ``SPOOL_AFTER_S``), clips lazy."""
    channels = len(shipped.samples)
    spool = SampleSpool(channels, round(SPOOL_AFTER_S * SAMPLE_RATE))
    frames = min((len(s) for s in shipped.samples), default=0)
    for first in range(0, frames, BLOCK_FRAMES):
        spool.append(np.stack([s[first : first + BLOCK_FRAMES] for s in shipped.samples]))
    spool.finish()
    audio = DecodedAudio(
        path=shipped.audio_path,
        source_rate=shipped.source_rate,
        channels=channels,
        codec=shipped.codec,
        duration=shipped.duration,
        notes=list(shipped.audio_notes),
        _store=spool,
    )
    plan = shipped.plan
    o = options
    clips = iter_clips(
        audio,
        plan.speech,
        call_id=shipped.info.id,
        normalize=o.normalize,
        denoise=o.denoise,
        **_clip_args(o, plan),
    )
    return _Call(shipped.info, audio, plan, clips, dict(shipped.timings), list(shipped.notes))


def prepare_call(pipeline: Pipeline, path: str, sha: str) -> tuple[Prepared, PreparedCall | None]:
    """The CPU stages of one call: ``(header, call)``, or ``(header with the error, None)`` when it fails.

    The error is the one the local executor reports for the same file (same stage, same line)."""
    try:
        shipped = pack(pipeline.prepare(path, sha=sha), pipeline.options)
    except StageError as exc:
        return Prepared(path, error=CallError(path, exc.stage, str(exc))), None
    except Exception as exc:
        error = CallError(path, getattr(exc, "stage", "decode"), _with_path(path, one_line(exc)))
        return Prepared(path, error=error), None
    header = Prepared(path, shipped.info.duration, shipped.clips, shipped.nbytes)
    return header, shipped


class ShippedPipeline(Pipeline):
    """A pipeline whose calls arrive prepared: :meth:`run_shipped` hears a bundle of them with :meth:`Pipeline.run`
    (clips batched across the bundle's calls) and returns a ``Transcript`` or ``CallError`` per call."""

    def __init__(self, options: Options | dict[str, Any] | None = None, engine: Engine | None = None) -> None:
        super().__init__(options, engine)
        self._inbox: dict[str, PreparedCall] = {}

    def prepare(self, source: Any, *, sample_rate: int | None = None, sha: str = "") -> _Call:
        shipped = self._inbox.pop(str(source), None)
        if shipped is None:  # not shipped: prepare it here
            return super().prepare(source, sample_rate=sample_rate, sha=sha)
        return unpack(shipped, self.options)

    def run_shipped(self, calls: Sequence[PreparedCall], **kwargs: Any) -> list[Transcript | CallError]:
        self._inbox = {c.info.path: c for c in calls}
        try:
            return list(self.run(self._sources(calls), **kwargs))
        finally:
            self._inbox = {}

    @staticmethod
    def _sources(calls: Iterable[PreparedCall]) -> Iterator[tuple[str | Path, str]]:
        for call in calls:
            yield call.info.path, call.info.sha256
