"""The speech map: silero VAD v6 (ONNX, from faster-whisper's wheel) run per channel as blocks are decoded.

The model reads 512-sample windows at 16 kHz, each preceded by the last 64 samples of the window before, and
carries an LSTM state ``(h, c)``; a batch of windows is one time sequence, so each channel keeps its own
state, context and leftover samples between blocks. Probabilities are kept (one float per 32 ms window);
spans come from them with hysteresis (speech starts at ``threshold``, ends after ``min_silence_s`` below
``threshold - 0.15``), speech shorter than ``min_speech_s`` is dropped, the rest padded by ``speech_pad_s``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from callscribe.audio.decode import SAMPLE_RATE, Consumer, DecodedAudio, decode, from_array
from callscribe.model import Span
from callscribe.options import Options

log = logging.getLogger("callscribe")

WINDOW = 512  # samples per VAD decision at 16 kHz (32 ms)
CONTEXT = 64  # samples of the previous window the model sees before each window
STATE_SHAPE = (1, 1, 128)
NEG_THRESHOLD_OFFSET = 0.15
MIN_SPEECH_S = 0.25
SPEECH_PAD_S = 0.1
MODEL_FILE = "silero_vad_v6.onnx"
# Windows per model call: bounds the memory of one call while keeping the per-call overhead small.
MAX_BATCH_WINDOWS = 4096

_session_lock = threading.Lock()
_session: Any = None


def model_path() -> Path:
    """Where the silero VAD v6 ONNX lives: faster-whisper's asset folder."""
    import faster_whisper

    return Path(faster_whisper.__file__).parent / "assets" / MODEL_FILE


def vad_session() -> Any:
    """The process-wide onnxruntime session (created once; ``run`` is safe to call from several threads)."""
    global _session
    with _session_lock:
        if _session is None:
            import onnxruntime

            opts = onnxruntime.SessionOptions()
            opts.intra_op_num_threads = 1
            opts.inter_op_num_threads = 1
            opts.log_severity_level = 3
            _session = onnxruntime.InferenceSession(
                str(model_path()), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        return _session


class _ChannelVad:
    """Streaming state of one channel: model state, context samples, leftover samples, probabilities."""

    def __init__(self) -> None:
        self.h = np.zeros(STATE_SHAPE, dtype=np.float32)
        self.c = np.zeros(STATE_SHAPE, dtype=np.float32)
        self.context = np.zeros(CONTEXT, dtype=np.float32)
        self.leftover = np.zeros(0, dtype=np.float32)
        self.probs = array("f")
        self.frames = 0

    def feed(self, samples: np.ndarray) -> None:
        self.frames += len(samples)
        data = np.concatenate([self.leftover, samples]) if len(self.leftover) else samples
        usable = len(data) - len(data) % WINDOW
        self.leftover = np.array(data[usable:], dtype=np.float32)
        for first in range(0, usable, MAX_BATCH_WINDOWS * WINDOW):
            self._run(data[first : min(usable, first + MAX_BATCH_WINDOWS * WINDOW)])

    def finish(self) -> None:
        if len(self.leftover):
            tail = np.zeros(WINDOW, dtype=np.float32)
            tail[: len(self.leftover)] = self.leftover
            self.leftover = np.zeros(0, dtype=np.float32)
            self._run(tail)

    def _run(self, samples: np.ndarray) -> None:
        windows = samples.reshape(-1, WINDOW).astype(np.float32, copy=False)
        contexts = np.empty((len(windows), CONTEXT), dtype=np.float32)
        contexts[0] = self.context
        contexts[1:] = windows[:-1, -CONTEXT:]
        batch = np.concatenate([contexts, windows], axis=1)
        probs, self.h, self.c = vad_session().run(None, {"input": batch, "h": self.h, "c": self.c})
        self.context = windows[-1, -CONTEXT:].copy()
        self.probs.extend(np.asarray(probs, dtype=np.float32).reshape(-1))


class SpeechMap:
    """A decode consumer that runs the VAD on every channel; ``spans()`` gives speech per channel.

    ``channels=None`` takes the channel count from the first block.
    """

    def __init__(
        self,
        channels: int | None = None,
        threshold: float = 0.5,
        min_silence_s: float = 0.3,
        *,
        min_speech_s: float = MIN_SPEECH_S,
        speech_pad_s: float = SPEECH_PAD_S,
    ) -> None:
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"VAD threshold must be between 0 and 1, got {threshold}")
        self.threshold = threshold
        self.neg_threshold = max(threshold - NEG_THRESHOLD_OFFSET, 0.01)
        self.min_silence_s = min_silence_s
        self.min_speech_s = min_speech_s
        self.speech_pad_s = speech_pad_s
        self.seconds = 0.0  # time spent in the model and bookkeeping
        self._channels: list[_ChannelVad] = []
        self._finished = False
        if channels is not None:
            self._channels = [_ChannelVad() for _ in range(channels)]

    @property
    def channels(self) -> int:
        return len(self._channels)

    def __call__(self, block: np.ndarray) -> None:
        if self._finished:
            raise RuntimeError("SpeechMap already finished; make a new one for more audio")
        started = time.perf_counter()
        block = np.atleast_2d(block)
        if not self._channels:
            self._channels = [_ChannelVad() for _ in range(block.shape[0])]
        if block.shape[0] != len(self._channels):
            raise ValueError(f"block has {block.shape[0]} channels, expected {len(self._channels)}")
        for state, samples in zip(self._channels, block, strict=True):
            state.feed(samples)
        self.seconds += time.perf_counter() - started

    def finish(self) -> None:
        """Run the last partial window of each channel (zero-padded); ``spans()`` calls this itself."""
        if not self._finished:
            started = time.perf_counter()
            for state in self._channels:
                state.finish()
            self._finished = True
            self.seconds += time.perf_counter() - started

    def probabilities(self, channel: int) -> np.ndarray:
        """Speech probability of each 32 ms window of ``channel`` (window ``i`` starts at ``i * 0.032`` s)."""
        return np.frombuffer(self._channels[channel].probs, dtype=np.float32).copy()

    def spans(self) -> dict[int, list[Span]]:
        """Speech spans in seconds for every channel (an empty list for a silent channel)."""
        self.finish()
        return {ch: self._channel_spans(ch) for ch in range(len(self._channels))}

    def _channel_spans(self, channel: int) -> list[Span]:
        state = self._channels[channel]
        probs = np.frombuffer(state.probs, dtype=np.float32)
        min_silence = max(1, round(self.min_silence_s * SAMPLE_RATE / WINDOW))
        raw: list[tuple[int, int]] = []  # in windows, end exclusive
        start: int | None = None
        quiet_from: int | None = None
        for i in np.flatnonzero((probs >= self.threshold) | (probs < self.neg_threshold)):
            if probs[i] >= self.threshold:
                quiet_from = None
                if start is None:
                    start = int(i)
            elif start is not None:
                if quiet_from is None:
                    quiet_from = int(i)
                if i + 1 - quiet_from >= min_silence:
                    raw.append((start, quiet_from))
                    start = quiet_from = None
        if start is not None:
            raw.append((start, quiet_from if quiet_from is not None else len(probs)))
        return _finish_spans(raw, state.frames / SAMPLE_RATE, self.min_speech_s, self.speech_pad_s)


def _finish_spans(raw: list[tuple[int, int]], length: float, min_speech: float, pad: float) -> list[Span]:
    """Window ranges -> padded, merged spans in seconds, clamped to the audio, short ones dropped."""
    step = WINDOW / SAMPLE_RATE
    out: list[Span] = []
    for first, last in raw:
        begin, end = first * step, min(last * step, length)
        if end - begin < min_speech:
            continue
        begin, end = max(0.0, begin - pad), min(length, end + pad)
        if out and begin <= out[-1].end:
            out[-1] = Span(out[-1].start, max(out[-1].end, end))
        else:
            out.append(Span(round(begin, 4), round(end, 4)))
    return out


@dataclass
class PreparedAudio:
    """A decoded call with its speech map. Close it (or use ``with``) to free the spooled samples."""

    audio: DecodedAudio
    speech: dict[int, list[Span]]
    timings: dict[str, float] = field(default_factory=dict)  # "decode" and "vad" seconds
    speech_map: SpeechMap | None = field(default=None, repr=False)

    def close(self) -> None:
        self.audio.close()

    def __enter__(self) -> PreparedAudio:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _speech_map(options: Options, channels: int | None = None) -> SpeechMap:
    return SpeechMap(channels, threshold=options.vad_threshold, min_silence_s=options.min_silence_s)


def _spans(speech_map: SpeechMap) -> dict[int, list[Span]]:
    """``speech_map.spans()`` with its time counted as VAD time."""
    started = time.perf_counter()
    speech = speech_map.spans()
    speech_map.seconds += time.perf_counter() - started
    return speech


def prepare(source: str | os.PathLike[str], options: Options, *, consumers: Sequence[Consumer] = ()) -> PreparedAudio:
    """Decode ``source`` and map its speech in one pass.

    ``consumers`` see every 16 kHz block too, shaped ``(channels, n)`` (their time counts as decode time).
    """
    speech_map = _speech_map(options)
    started = time.perf_counter()
    mix = options.channels == "mix"  # one signal asked for: every channel's speech goes into it
    audio = decode(source, max_duration=options.max_duration, consumers=[speech_map, *consumers], mix=mix)
    decoded = time.perf_counter() - started - speech_map.seconds
    speech = _spans(speech_map)
    log.debug(
        "%s: %.1f s, %d channels, decode %.2f s, VAD %.2f s",
        audio.path,
        audio.duration,
        audio.channels,
        decoded,
        speech_map.seconds,
    )
    timings = {"decode": decoded, "vad": speech_map.seconds}
    return PreparedAudio(audio=audio, speech=speech, timings=timings, speech_map=speech_map)


def prepare_array(samples: np.ndarray, sample_rate: int, options: Options, *, name: str = "<array>") -> PreparedAudio:
    """Like :func:`prepare` for samples already in memory, ``(n,)`` or ``(channels, n)``."""
    started = time.perf_counter()
    audio = from_array(samples, sample_rate, name=name, mix=options.channels == "mix")
    decoded = time.perf_counter() - started
    speech_map = _speech_map(options, audio.channels)
    for first in range(0, audio.frames, MAX_BATCH_WINDOWS * WINDOW):
        last = first + MAX_BATCH_WINDOWS * WINDOW
        speech_map(np.stack([audio.read_frames(ch, first, last) for ch in range(audio.channels)]))
    speech = _spans(speech_map)
    return PreparedAudio(audio, speech, {"decode": decoded, "vad": speech_map.seconds}, speech_map)
