"""One live stream: audio in, turns per channel, decode jobs out, events back.

The connection's thread (the server's event loop) only appends frames (:meth:`StreamSession.feed`) and says when
the input ends; everything else runs in the hub's two threads, each holding ``state_lock``: resampling to 16 kHz, VAD
and turns (:meth:`ingest`, the ear), choosing what to decode (:meth:`final_jobs`, :meth:`guess_jobs`,
:meth:`partial_jobs`) and turning engine results into events (:meth:`on_result`, the voice). Events go out through
``emit`` (thread-safe, never blocks); emitting under the lock keeps a turn's events in order.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import soxr

from callscribe.audio.decode import SAMPLE_RATE
from callscribe.coverage import UNCOVERED
from callscribe.engines.base import Clip, EngineResult
from callscribe.model import Utterance, Word, join_texts
from callscribe.options import Options
from callscribe.streaming.agreement import stable_prefix
from callscribe.streaming.live_qa import LiveQA
from callscribe.streaming.live_redact import ends_in_digits, mask_live, mask_split
from callscribe.streaming.protocol import CLOSE_TRY_LATER, MAX_BACKLOG_S, ProtocolError, StartConfig
from callscribe.streaming.turns import PAD_S, CallTurns, EndOfTurn, SilenceEnd, Turn
from callscribe.text.glossary import Glossary
from callscribe.utterances import build_utterances

log = logging.getLogger("callscribe.streaming")

PARTIAL_EVERY_S = 0.6  # wall seconds between re-decodes of one open turn (stretched when the engine is busy)
MIN_PARTIAL_S = 0.5  # speech an open turn needs before its first re-decode
MIN_NEW_AUDIO_S = 0.3  # new audio since the turn's last decode before it is decoded again
QUIET_S = 0.3  # an open turn silent this long is not re-decoded: its end is likely near, and its final will need the
# engine; nor is one with no new speech since its last decode
SPECULATE_S = 0.25  # silence after which an open turn's final is decoded ahead: kept when the turn ends right there
NUMBER_JOIN_S = 4.0  # a final starting with digits this soon after one ending in digits may continue its number


@dataclass
class OpenTurn:
    turn: Turn
    decoded_wall: float = 0.0
    decoded_until: float = 0.0  # call time up to which the last re-decode heard
    hypothesis: str = ""
    shown: tuple[str, str] = ("", "")  # (stable, unstable) last sent


@dataclass
class Job:
    """One clip for the engine: a re-decode of an open turn (``partial``), a closed turn's last decode (``final``),
    or that decode started ahead, at a short pause (``guess``)."""

    session: StreamSession
    kind: str  # "partial" | "final" | "guess"
    turn: Turn
    clip: Clip
    language: str | None
    since: float = 0.0  # when the turn was last decoded (stalest first)


@dataclass
class Guess:
    """A final decoded at a pause of a still open turn; it is the final when the turn ends exactly there."""

    last_speech: float
    end: float
    clip: Clip
    result: EngineResult | None = None


@dataclass
class Final:
    """A final as heard (unmasked) and its turn number."""

    turn: int
    utterance: Utterance


@dataclass
class LiveSettings:
    """What the server decides for every stream."""

    options: Options
    redact: bool = False
    end_of_turn: Callable[[], EndOfTurn] = field(default=SilenceEnd)


class StreamSession:
    def __init__(
        self, stream_id: str, config: StartConfig, live: LiveSettings, emit: Callable[[dict[str, Any]], None]
    ) -> None:
        o = live.options
        self.id = stream_id
        self.config = config
        self.options = o
        self.emit = emit
        self.redact = live.redact or config.redact
        self.language = config.language or o.language
        self.glossary = Glossary(
            tuple(dict.fromkeys((*o.hotwords, *config.glossary.terms))),
            tuple(dict.fromkeys((*o.corrections, *config.glossary.corrections))),
        )
        end_of_turn = live.end_of_turn
        if config.end_silence_s is not None:
            silence = config.end_silence_s
            end_of_turn = lambda: SilenceEnd(silence)  # noqa: E731
        self.turns = CallTurns(
            config.channels, end_of_turn=end_of_turn, threshold=o.vad_threshold, max_turn_s=o.max_clip_s
        )
        self.channels = self.turns.channels
        self._resampler = (
            soxr.ResampleStream(config.sample_rate, SAMPLE_RATE, config.channels, dtype="float32")
            if config.sample_rate != SAMPLE_RATE
            else None
        )
        self.qa = LiveQA(o.scorecard, self.language)
        self._inbox: collections.deque[np.ndarray] = collections.deque()
        self._lock = threading.Lock()  # the inbox
        self.state_lock = threading.RLock()  # everything else: the hub's two threads take it
        self.backlog = 0  # sample frames received and not yet ingested
        self.received = 0  # sample frames received in all
        self.input_done = False
        self.disconnected = False
        self._flushed = False
        self.open: dict[int, OpenTurn] = {}
        self.pending: list[Turn] = []  # closed turns waiting for their final decode
        self.finals: list[Final] = []
        self.guesses: dict[int, Guess] = {}  # turn -> its final decoded ahead
        self.guessed = 0  # finals that came from a guess (metrics, tests)
        self._next_turn = 0
        self._digits_until: dict[int, float] = {}  # channel -> time up to which its next final may continue a number
        self.started_wall = time.monotonic()

    # -- the connection's side ----------------------------------------------------------------------------------
    def feed(self, pcm: bytes) -> None:
        frames = np.frombuffer(pcm, dtype="<i2").reshape(-1, self.config.channels)
        with self._lock:
            if self.backlog + len(frames) > MAX_BACKLOG_S * self.config.sample_rate:
                raise ProtocolError("overloaded", f"the server is {self.backlog / self.config.sample_rate:.0f} s "
                                    "behind this stream; try again later", CLOSE_TRY_LATER)  # fmt: skip
            self._inbox.append(frames)
            self.backlog += len(frames)
            self.received += len(frames)

    def end_input(self, *, disconnected: bool = False) -> None:
        self.input_done = True
        self.disconnected = self.disconnected or disconnected

    @property
    def received_s(self) -> float:
        return self.received / self.config.sample_rate

    # -- the hub's side -----------------------------------------------------------------------------------------
    def ingest(self) -> None:
        """Everything received so far through resampling, VAD and turn tracking."""
        with self._lock:
            blocks = list(self._inbox)
            self._inbox.clear()
            self.backlog = 0
            done = self.input_done and not self._flushed
        if blocks:
            pcm = np.concatenate(blocks).astype(np.float32) / 32768.0
            self._push(self._resampler.resample_chunk(pcm) if self._resampler is not None else pcm, last=False)
        if done:
            self._flushed = True
            tail = np.zeros((0, self.config.channels), np.float32)
            if self._resampler is not None:
                tail = self._resampler.resample_chunk(tail, last=True)
            self._push(tail, last=True)

    def _push(self, audio: np.ndarray, *, last: bool) -> None:
        for kind, turn in self.turns.push(audio.reshape(-1, self.config.channels), last=last):
            self._turn_event(kind, turn)

    def _turn_event(self, kind: str, turn: Turn) -> None:
        if kind == "open":
            turn.index = self._next_turn
            self._next_turn += 1
            self.open[turn.index] = OpenTurn(turn)
            return
        self.open.pop(turn.index, None)
        if kind == "drop":
            self.guesses.pop(turn.index, None)
        if kind == "close":
            self.pending.append(turn)
            self.emit({"type": "turn_end", "turn": turn.index, "channel": turn.channel,
                       "role": self.config.role(turn.channel), "start": round(turn.speech_start, 3),
                       "end": turn.end})  # fmt: skip

    def final_jobs(self) -> list[Job]:
        """Closed turns' last decodes; a turn whose guess heard exactly its audio gets its final now, undecoded."""
        jobs = []
        for t in self.pending:
            guess = self.guesses.pop(t.index, None)
            clip = self._clip(t, t.audio)
            if guess is not None and guess.result is not None and _same_clip(guess, t, clip):
                self.guessed += 1
                self.on_result(Job(self, "final", t, clip, self.language), guess.result)
            else:
                jobs.append(Job(self, "final", t, clip, self.language))
        self.pending = []
        return jobs

    def guess_jobs(self) -> list[Job]:
        """Open turns silent for ``SPECULATE_S``: their final decoded ahead (once per stretch of speech), so that it
        is ready when the silence turns out to end the turn."""
        jobs = []
        for state in self._guessable():
            turn, channel = state.turn, self.channels[state.turn.channel]
            end = round(min(turn.last_speech + PAD_S, channel.now), 3)  # where the turn ends if this silence ends it
            clip = self._clip(turn, channel.clip(turn, end))
            self.guesses[turn.index] = Guess(turn.last_speech, end, clip)
            jobs.append(Job(self, "guess", turn, clip, self.language))
        return jobs

    def _guessable(self) -> list[OpenTurn]:
        if self.input_done:
            return []
        out = []
        for state in self.open.values():
            turn, channel = state.turn, self.channels[state.turn.channel]
            if channel.silence_s < SPECULATE_S or turn.last_speech - turn.speech_start < channel.min_speech_s:
                continue
            if channel.now < turn.last_speech + PAD_S:  # the audio the turn would end with has not all arrived
                continue
            known = self.guesses.get(turn.index)
            if known is None or known.last_speech != turn.last_speech:
                out.append(state)
        return out

    def finals_due(self) -> bool:
        """A closed turn waits for its final, or an open turn for its guess."""
        return bool(self.pending) or bool(self._guessable())

    def partial_jobs(self, now: float, decode_s: float = 0.0) -> list[Job]:
        """Open turns due for a re-decode, stalest first. A turn is first re-decoded once it has lasted
        ``MIN_PARTIAL_S`` or one engine decode (``decode_s``), whichever is longer: on a slow engine a shorter turn
        would end before its partial came back, and the decode would only delay finals."""
        if not self.config.partials or self.input_done:
            return []
        due = []
        for state in self.open.values():
            turn, channel = state.turn, self.channels[state.turn.channel]
            heard, first = channel.now, max(MIN_PARTIAL_S, decode_s)
            if heard - turn.speech_start < first or heard - state.decoded_until < MIN_NEW_AUDIO_S:
                continue
            if channel.silence_s >= QUIET_S or turn.last_speech <= state.decoded_until:
                continue
            if now - state.decoded_wall < PARTIAL_EVERY_S:
                continue
            due.append(state)
        due.sort(key=lambda s: s.decoded_wall)
        jobs = []
        for state in due:
            audio = self.channels[state.turn.channel].clip(state.turn)
            since = state.decoded_wall
            state.decoded_wall, state.decoded_until = now, state.turn.start + len(audio) / SAMPLE_RATE
            jobs.append(Job(self, "partial", state.turn, self._clip(state.turn, audio), self.language, since))
        return jobs

    def _clip(self, turn: Turn, audio: np.ndarray | None) -> Clip:
        samples = audio if audio is not None else np.zeros(0, np.float32)
        return Clip(self.id, turn.channel, turn.start, samples, f"ch{turn.channel}", turn.index)

    def abandon(self) -> None:
        """Stop hearing after a failure: open turns are dropped, the call is finished with what it has."""
        self.end_input()
        self._flushed = True
        self.open.clear()
        self.guesses.clear()
        self.pending = []
        with self._lock:
            self._inbox.clear()

    def hearing_done(self) -> bool:
        """The input ended, every turn is closed and every final sent."""
        return self._flushed and not self.pending and not self.open and not self._inbox

    # -- results ------------------------------------------------------------------------------------------------
    def on_result(self, job: Job, result: EngineResult) -> None:
        if job.kind == "guess":
            guess = self.guesses.get(job.turn.index)
            if guess is not None and guess.clip is job.clip:
                guess.result = result  # used by final_jobs if the turn ends where the guess did
            return
        if self.language is None and result.language and job.kind == "final":
            self.language = result.language  # detected once: later decodes skip detection
        built = build_utterances(
            [(job.clip, result)], [], self.glossary, script=self.options.zh_script, language=self.language
        ).utterances
        text = join_texts(u.text for u in built)
        if job.kind == "partial":
            self._partial(job.turn, text)
        else:
            self._final(job.turn, text, built, result.language)

    def on_failure(self, job: Job, reason: str) -> None:
        if job.kind == "guess":
            self.guesses.pop(job.turn.index, None)  # the final is decoded as usual
        if job.kind == "final":  # the turn still ends: an empty final, flagged
            self._final(job.turn, "", [], None, failed=reason)

    def _partial(self, turn: Turn, text: str) -> None:
        state = self.open.get(turn.index)
        if state is None:
            return
        text = text.strip()
        stable = stable_prefix(state.hypothesis, text)  # a prefix of text
        state.hypothesis = text
        unstable = text[len(stable) :].strip()
        if self.redact:
            stable, unstable = mask_split(text, len(stable), self.language)
        if (stable, unstable) == state.shown or not (stable or unstable):
            return
        state.shown = (stable, unstable)
        role = self.config.role(turn.channel)
        self.emit({"type": "partial", "turn": turn.index, "channel": turn.channel, "role": role,
                   "start": round(turn.speech_start, 3), "text": stable, "unstable": unstable})  # fmt: skip

    def _final(
        self, turn: Turn, text: str, built: list[Utterance], language: str | None, failed: str | None = None
    ) -> None:
        words = tuple(  # plain floats: engines may hand numpy scalars, which JSON and QA results do not take
            Word(w.text, float(w.start), float(w.end), None if w.probability is None else float(w.probability))
            for u in built
            for w in u.words
        )
        confs = [(float(u.confidence), max(float(u.duration), 0.01)) for u in built if u.confidence is not None]
        confidence = round(sum(c * d for c, d in confs) / sum(d for _, d in confs), 4) if confs else None
        end = turn.end if turn.end is not None else turn.last_speech
        u = Utterance(
            start=round(turn.speech_start, 3),
            end=round(max(turn.speech_start, min(turn.last_speech, end)), 3),
            channel=turn.channel,
            text=text,
            speaker=f"ch{turn.channel}",
            role=self.config.role(turn.channel),
            words=words,
            confidence=confidence,
            language=language or self.language,
            flags=final_flags(text, built, failed),
        )
        self.finals.append(Final(turn.index, u))  # speech without text too: kept, flagged, never dropped
        shown_text, shown_words = text, words
        if self.redact:
            head = self._digits_until.get(turn.channel, -1.0) >= u.start
            shown_text, shown_words, _ = mask_live(text, words, u.language, open_tail=True, open_head=head)
        if ends_in_digits(text):
            self._digits_until[turn.channel] = u.end + NUMBER_JOIN_S
        else:
            self._digits_until.pop(turn.channel, None)
        event: dict[str, Any] = {
            "type": "final", "turn": turn.index, "channel": turn.channel, "role": u.role, "start": u.start,
            "end": u.end, "text": shown_text,
            "words": [{"text": w.text, "start": w.start, "end": w.end, "probability": w.probability}
                      for w in shown_words],
            "confidence": confidence, "language": u.language,
        }  # fmt: skip
        if u.flags:
            event["flags"] = list(u.flags)
        if failed:
            event["error"] = failed
        self.emit(event)
        for alert in self.qa.check(u, turn.index, shown_text):
            self.emit({"type": "alert", "rule": alert.rule, "severity": alert.severity, "evidence": alert.evidence,
                       "time": alert.time, "turn": alert.turn, "channel": alert.channel, "role": alert.role,
                       "description": alert.description})  # fmt: skip


def final_flags(text: str, built: list[Utterance], failed: str | None) -> tuple[str, ...]:
    """A final's flags: the engine's (``repetition``...), ``live-failed`` when its decode failed, and ``uncovered``
    (as in batch transcripts) when the turn's speech came back without text."""
    flags = dict.fromkeys(f for u in built for f in u.flags)
    if failed:
        flags["live-failed"] = None
    if not text:
        flags[UNCOVERED] = None
    return tuple(flags)


def _same_clip(guess: Guess, turn: Turn, clip: Clip) -> bool:
    """The guess heard exactly the closed turn's audio (no speech came after it, the turn was not cut)."""
    return (
        guess.last_speech == turn.last_speech
        and guess.end == turn.end
        and len(guess.clip.audio) == len(clip.audio)
        and guess.clip.start == clip.start
    )
