"""Turns of one channel as its audio arrives: streaming silero VAD, the open turn, and its end.

The VAD is the project's silero v6 ONNX (:func:`callscribe.audio.vad.vad_session`) read the same way as for whole
files: 512-sample windows at 16 kHz, each with the 64 samples before it, the LSTM state carried from window to
window. A turn opens at the first window at or above ``threshold``; it ends when the speech has been followed by
``eot_silence_s`` of windows below ``threshold - 0.15`` (an :class:`EndOfTurn` policy decides, so a turn-detection
model can replace the plain silence rule). A turn shorter than ``min_speech_s`` of speech is dropped (a click, a
breath); one longer than ``max_turn_s`` is cut at the quietest window of its last ``CUT_SEARCH_S`` and goes on as a
new turn. The channel keeps only the audio of its open turn plus ``PREROLL_S`` before it. :class:`CallTurns` steps
the channels of a call together and, on a two-channel call, takes windows that are only the other party's crosstalk
for silence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from callscribe.audio.decode import SAMPLE_RATE
from callscribe.audio.vad import CONTEXT, NEG_THRESHOLD_OFFSET, STATE_SHAPE, WINDOW, vad_session

WINDOW_S = WINDOW / SAMPLE_RATE  # 32 ms
# Silence that ends a turn: measured on evalset-dev turns with mid-sentence pauses (docs/streaming.md).
EOT_SILENCE_S = 0.6
MIN_SPEECH_S = 0.25
PAD_S = 0.2  # audio kept before the first and after the last speech window of a turn (as Options.pad_s)
MAX_TURN_S = 20.0  # as Options.max_clip_s: longer clips lose words
CUT_SEARCH_S = 2.0
PREROLL_S = 0.5
BLEED_GAP_DB = 10.0  # a window this much quieter than the other channel's is crosstalk
BLEED_SPAN = 6  # windows of the other channel compared (192 ms)


class StreamVad:
    """Silero VAD over one channel fed any number of samples at a time; one probability per complete window."""

    def __init__(self) -> None:
        self.h = np.zeros(STATE_SHAPE, dtype=np.float32)
        self.c = np.zeros(STATE_SHAPE, dtype=np.float32)
        self.context = np.zeros(CONTEXT, dtype=np.float32)
        self.leftover = np.zeros(0, dtype=np.float32)

    def feed(self, samples: np.ndarray, *, last: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``(speech probability, level in dBFS)`` of every window completed by ``samples``."""
        data = np.concatenate([self.leftover, samples]) if len(self.leftover) else samples
        if last and len(data) % WINDOW:
            data = np.concatenate([data, np.zeros(WINDOW - len(data) % WINDOW, np.float32)])
        usable = len(data) - len(data) % WINDOW
        self.leftover = np.array(data[usable:], dtype=np.float32)
        if not usable:
            return np.zeros(0, np.float32), np.zeros(0, np.float32)
        windows = np.asarray(data[:usable], np.float32).reshape(-1, WINDOW)
        levels = (10.0 * np.log10(np.mean(windows.astype(np.float64) ** 2, axis=1) + 1e-10)).astype(np.float32)
        contexts = np.empty((len(windows), CONTEXT), dtype=np.float32)
        contexts[0] = self.context
        contexts[1:] = windows[:-1, -CONTEXT:]
        batch = np.concatenate([contexts, windows], axis=1)
        probs, self.h, self.c = vad_session().run(None, {"input": batch, "h": self.h, "c": self.c})
        self.context = windows[-1, -CONTEXT:].copy()
        return np.asarray(probs, dtype=np.float32).reshape(-1), levels


class ChannelAudio:
    """The recent 16 kHz samples of one channel, addressed by absolute sample index."""

    def __init__(self) -> None:
        self._chunks: list[np.ndarray] = []
        self.base = 0  # absolute index of the first kept sample
        self.end = 0  # absolute index after the last sample

    def append(self, samples: np.ndarray) -> None:
        if len(samples):
            self._chunks.append(np.asarray(samples, np.float32))
            self.end += len(samples)

    def _joined(self) -> np.ndarray:
        if len(self._chunks) != 1:
            self._chunks = [np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.float32)]
        return self._chunks[0]

    def read(self, first: int, last: int) -> np.ndarray:
        first, last = max(first, self.base), min(last, self.end)
        if last <= first:
            return np.zeros(0, np.float32)
        return self._joined()[first - self.base : last - self.base].copy()

    def drop_before(self, index: int) -> None:
        index = min(index, self.end)
        if index <= self.base:
            return
        self._chunks = [self._joined()[index - self.base :]]
        self.base = index


@dataclass
class Turn:
    """A stretch of one channel's speech; times in seconds of call time. ``end`` is set when it closes."""

    channel: int
    speech_start: float
    last_speech: float  # end of the last window at or above the threshold
    start: float = -1.0  # where the turn's audio starts: PAD_S before its first speech (default), or a cut
    index: int = -1  # numbered by the session, across channels
    end: float | None = None
    forced: bool = False  # closed because it grew past max_turn_s
    closed_at: float | None = None  # call time when the end was decided (end + the silence waited for)
    audio: np.ndarray | None = field(default=None, repr=False)  # the closed turn's samples, start to end

    def __post_init__(self) -> None:
        if self.start < 0:
            self.start = round(max(0.0, self.speech_start - PAD_S), 3)


class EndOfTurn(Protocol):
    """Decides, during a silence after speech, whether the turn is over."""

    def ended(self, silence_s: float, audio: Callable[[], np.ndarray]) -> bool:
        """``silence_s``: how long the silence has lasted; ``audio()``: the turn's samples up to now."""
        ...


@dataclass(frozen=True)
class SilenceEnd:
    """The turn is over after ``silence_s`` of silence."""

    silence_s: float = EOT_SILENCE_S

    def ended(self, silence_s: float, audio: Callable[[], np.ndarray]) -> bool:
        return silence_s >= self.silence_s


class ChannelTurns:
    """VAD and turn state of one channel. :meth:`push` takes 16 kHz samples and returns the turns it opened and
    closed (in order); :meth:`clip` gives a turn's audio."""

    def __init__(
        self,
        channel: int,
        *,
        threshold: float = 0.5,
        end_of_turn: EndOfTurn | None = None,
        min_speech_s: float = MIN_SPEECH_S,
        max_turn_s: float = MAX_TURN_S,
    ) -> None:
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"VAD threshold must be between 0 and 1, got {threshold}")
        self.channel = channel
        self.threshold = threshold
        self.neg_threshold = max(threshold - NEG_THRESHOLD_OFFSET, 0.01)
        self.end_of_turn = end_of_turn or SilenceEnd()
        self.min_speech_s = min_speech_s
        self.max_turn_s = max_turn_s
        self.vad = StreamVad()
        self.audio = ChannelAudio()
        self.window = 0  # index of the next window the VAD will score
        self.open: Turn | None = None
        self._quiet_from: int | None = None
        self._recent: list[float] = []  # probabilities of the open turn's last CUT_SEARCH_S

    @property
    def now(self) -> float:
        """Seconds of this channel heard so far."""
        return self.audio.end / SAMPLE_RATE

    @property
    def silence_s(self) -> float:
        """How long the open turn has been silent (0 while its speaker talks)."""
        if self.open is None or self._quiet_from is None:
            return 0.0
        return max(0.0, self.window * WINDOW_S - self._quiet_from * WINDOW_S)

    def push(self, samples: np.ndarray, *, last: bool = False) -> list[tuple[str, Turn]]:
        """Feed samples (``last``: the stream ended; an open turn is closed). Returns ``(kind, turn)`` with kind
        ``open``, ``close`` or ``drop`` (closed with too little speech)."""
        probs, _ = self.hear(samples, last=last)
        return self.advance(probs, last=last)

    def hear(self, samples: np.ndarray, *, last: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Keep the samples and score them: ``(probability, level dBFS)`` per completed window."""
        self.audio.append(samples)
        return self.vad.feed(np.asarray(samples, np.float32), last=last)

    def advance(self, probs: np.ndarray, *, last: bool = False) -> list[tuple[str, Turn]]:
        """Step the turn state through the windows :meth:`hear` scored (probabilities possibly gated)."""
        events: list[tuple[str, Turn]] = []
        for p in probs:
            self._step(float(p), events)
            self.window += 1
        if last and self.open is not None:
            self._close(self.open, self.open.last_speech + PAD_S, events, forced=self.open.forced)
        if self.open is None:
            self.audio.drop_before(self.audio.end - round(PREROLL_S * SAMPLE_RATE))
        return events

    def _step(self, p: float, events: list[tuple[str, Turn]]) -> None:
        i = self.window
        t_end = (i + 1) * WINDOW_S
        turn = self.open
        if turn is None:
            if p >= self.threshold:
                self.open = Turn(self.channel, i * WINDOW_S, t_end)
                self._quiet_from = None
                self._recent = [p]
                events.append(("open", self.open))
            return
        self._recent = [*self._recent[-round(CUT_SEARCH_S / WINDOW_S) + 1 :], p]
        if p >= self.threshold:
            turn.last_speech = t_end
            self._quiet_from = None
        elif p < self.neg_threshold and self._quiet_from is None:
            self._quiet_from = i
        if self._quiet_from is not None:
            silence = t_end - self._quiet_from * WINDOW_S
            if self.end_of_turn.ended(silence, lambda: self.clip(turn, t_end)):
                self._close(turn, min(t_end, turn.last_speech + PAD_S), events)
                return
        if t_end - turn.speech_start >= self.max_turn_s:
            quietest = int(np.argmin(self._recent))
            cut = t_end - (len(self._recent) - quietest) * WINDOW_S
            self._close(turn, cut, events, forced=True)
            self.open = Turn(self.channel, cut, t_end, start=round(cut, 3), forced=True)
            self._recent = []
            events.append(("open", self.open))

    def _close(self, turn: Turn, end: float, events: list[tuple[str, Turn]], *, forced: bool = False) -> None:
        """Close ``turn`` at ``end`` and keep its audio (the channel's buffer moves on); too little speech: drop."""
        self.open = None
        self._quiet_from = None
        turn.end = round(min(max(end, turn.speech_start), self.now), 3)
        turn.closed_at = round(min(self.window + 1, self.audio.end / WINDOW) * WINDOW_S, 3)
        if not forced and turn.last_speech - turn.speech_start < self.min_speech_s:
            events.append(("drop", turn))
            return
        turn.audio = self.clip(turn)
        events.append(("close", turn))

    def clip(self, turn: Turn, until: float | None = None) -> np.ndarray:
        """The turn's audio from ``turn.start`` to its end (or ``until``, or what has arrived)."""
        end = until if until is not None else (turn.end if turn.end is not None else self.now)
        return self.audio.read(round(turn.start * SAMPLE_RATE), round(end * SAMPLE_RATE))


class CallTurns:
    """The channels of one call stepped together. On a two-channel call a window is the other party's crosstalk,
    not speech, when its level is ``BLEED_GAP_DB`` or more below the loudest of the other channel's last
    ``BLEED_SPAN`` windows (bleed arrives a little late, and the quiet moments inside the other party's words count
    as theirs): it opens no turn and keeps none open."""

    def __init__(self, channels: int, end_of_turn: Callable[[], EndOfTurn] = SilenceEnd, **kwargs: Any) -> None:
        self.channels = [ChannelTurns(ch, end_of_turn=end_of_turn(), **kwargs) for ch in range(channels)]
        self._recent = [np.full(BLEED_SPAN - 1, -100.0, np.float32) for _ in range(channels)]

    def push(self, block: np.ndarray, *, last: bool = False) -> list[tuple[str, Turn]]:
        """``block``: 16 kHz samples shaped ``(n, channels)``."""
        block = np.asarray(block, np.float32).reshape(-1, len(self.channels))
        scored = [c.hear(np.ascontiguousarray(block[:, i]), last=last) for i, c in enumerate(self.channels)]
        probs = [p for p, _ in scored]
        if len(scored) == 2:
            loudest = [self._loudest(ch, levels) for ch, (_, levels) in enumerate(scored)]
            probs = [p.copy() for p in probs]
            for ch, (_, levels) in enumerate(scored):
                other = loudest[1 - ch][: len(levels)]
                probs[ch][levels < other - BLEED_GAP_DB] = 0.0
        events: list[tuple[str, Turn]] = []
        for c, p in zip(self.channels, probs, strict=True):
            events += c.advance(p, last=last)
        return events

    def _loudest(self, ch: int, levels: np.ndarray) -> np.ndarray:
        """The loudest level among each window and the ``BLEED_SPAN - 1`` before it."""
        joined = np.concatenate([self._recent[ch], levels])
        self._recent[ch] = joined[-(BLEED_SPAN - 1) :]
        if not len(levels):
            return levels
        return np.lib.stride_tricks.sliding_window_view(joined, BLEED_SPAN).max(axis=1)
