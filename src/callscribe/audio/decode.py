"""Decode any recording PyAV opens into 16 kHz float32 samples, one stream per channel.

Decoding runs in blocks: each decoded frame is converted to float32, resampled per channel with a streaming
soxr resampler, gathered into blocks of at most :data:`BLOCK_FRAMES` samples, handed to the consumers (the VAD
runs there, in the same pass) and spooled (:mod:`callscribe.audio.spool`), so memory does not grow with call
length.
Channels are never mixed down.

Only regular files are read (a named pipe, a device or a socket would block or never end), and a file is opened
once, checked on that handle, and decoded through it, so what is decoded is the file that was checked and every read
ends at its end. Non-finite samples (NaN, inf) in float recordings are set to 0 and counted in the call's notes.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import numpy as np
import soxr

from callscribe.audio.files import (
    AudioError,
    fd_path,
    has_listeners,
    open_regular,
    tell_listeners,
)
from callscribe.audio.spool import SampleSpool

log = logging.getLogger("callscribe")

SAMPLE_RATE = 16_000
# Calls up to this long stay in memory; longer ones spill to one temp file per channel.
SPOOL_AFTER_S = 120.0

# Samples per channel in one block handed to consumers (a multiple of the VAD's 512-sample window).
BLOCK_FRAMES = 65_536
# A stream that decodes to less than this share of its declared length is reported as cut short.
MIN_USABLE_S = 0.05  # less than this decoded from a stream that promised more: nothing usable
TRUNCATED_RATIO = 0.9
# Give up on a stream after this many undecodable packets in a row.
MAX_BAD_PACKETS = 50
SOXR_QUALITY = "HQ"
_WAV_HEADER_SCAN = 4096

Consumer = Callable[[np.ndarray], None]


@dataclass
class DecodedAudio:
    """A decoded call: every channel at 16 kHz, read per channel. Close it (or use ``with``) when done."""

    path: str
    source_rate: int
    channels: int
    codec: str
    duration: float  # seconds
    notes: list[str] = field(default_factory=list)  # warnings worth showing, e.g. a stream that ended early
    _store: SampleSpool | None = field(default=None, repr=False, compare=False)

    @property
    def spooled(self) -> bool:
        """True when the samples live in temp files rather than in memory."""
        return self._store is not None and self._store.spooled

    @property
    def frames(self) -> int:
        """Samples per channel at 16 kHz."""
        return self._store.frames if self._store is not None else 0

    def read_frames(self, channel: int, first: int = 0, last: int | None = None) -> np.ndarray:
        """Samples ``first:last`` of one channel (16 kHz float32, clamped to the call)."""
        if self._store is None:
            raise ValueError(f"{self.path}: audio is closed")
        if not 0 <= channel < self.channels:
            raise IndexError(f"{self.path}: no channel {channel} (call has {self.channels})")
        return self._store.read(channel, first, self.frames if last is None else last)

    def read(self, channel: int, start: float = 0.0, end: float | None = None) -> np.ndarray:
        """One channel from ``start`` to ``end`` seconds as float32 16 kHz mono."""
        first = round(start * SAMPLE_RATE)
        last = None if end is None else round(end * SAMPLE_RATE)
        return self.read_frames(channel, first, last)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> DecodedAudio:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class _Blocker:
    """Gathers resampled pieces into fixed-size blocks for the store and the consumers."""

    def __init__(self, store: SampleSpool, consumers: Sequence[Consumer], *, mix: bool = False) -> None:
        self.store = store
        self.consumers = consumers
        self.mix = mix  # average the channels into one as they come
        self._parts: list[np.ndarray] = []
        self._size = 0

    def add(self, piece: np.ndarray) -> None:
        if piece.shape[1] == 0:
            return
        if self.mix:
            piece = piece.mean(axis=0, keepdims=True, dtype=np.float32)
        self._parts.append(piece)
        self._size += piece.shape[1]
        while self._size >= BLOCK_FRAMES:
            joined = np.concatenate(self._parts, axis=1)
            self._emit(joined[:, :BLOCK_FRAMES])
            rest = joined[:, BLOCK_FRAMES:]
            self._parts, self._size = ([rest] if rest.shape[1] else []), rest.shape[1]

    def flush(self) -> None:
        if self._size:
            self._emit(np.concatenate(self._parts, axis=1))
        self._parts, self._size = [], 0

    def _emit(self, block: np.ndarray) -> None:
        block = np.ascontiguousarray(block, dtype=np.float32)
        self.store.append(block)
        for consumer in self.consumers:
            consumer(block)


_FLOAT_FORMATS = frozenset({"flt", "dbl"})
_SCALE = {"u8": 128.0, "s16": 32768.0, "s32": 2147483648.0, "s64": 9223372036854775808.0}


def frame_to_float(frame: av.AudioFrame) -> np.ndarray:
    """A decoded frame as float32 ``(channels, n)`` in [-1, 1] whatever its sample format."""
    channels = frame.layout.nb_channels
    data = frame.to_ndarray()
    if not frame.format.is_planar:
        data = data.reshape(-1, channels).T
    name = frame.format.name.rstrip("p")
    if name == "u8":
        return ((data.astype(np.float32) - 128.0) / 128.0).astype(np.float32)
    if name in _SCALE:
        return (data.astype(np.float64) / _SCALE[name]).astype(np.float32)
    return data.astype(np.float32)


def repair_non_finite(samples: np.ndarray) -> int:
    """Set NaN and ±inf samples to 0 in place; return how many there were."""
    if samples.dtype.kind != "f":
        return 0
    bad = ~np.isfinite(samples)
    count = int(np.count_nonzero(bad))
    if count:
        samples[bad] = 0.0
    return count


def _non_finite_note(count: int) -> str:
    return f"repaired {count} non-finite sample{'s' if count != 1 else ''} (NaN/inf) by setting them to 0"


def _declared_seconds(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _wav_declared_seconds(fd: int) -> float | None:
    """Length a RIFF/WAVE header promises (ffmpeg clamps it to the file size, hiding a cut-off file)."""
    try:
        head = os.pread(fd, _WAV_HEADER_SCAN, 0)
    except OSError:
        return None
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    at, bytes_per_second = 12, 0
    while at + 8 <= len(head):
        chunk, size = head[at : at + 4], struct.unpack("<I", head[at + 4 : at + 8])[0]
        if chunk == b"fmt " and at + 16 <= len(head):
            bytes_per_second = struct.unpack("<I", head[at + 16 : at + 20])[0]
        if chunk == b"data":
            if not bytes_per_second or size in (0, 0xFFFFFFFF):
                return None
            return size / bytes_per_second
        at += 8 + size + (size & 1)
    return None


def _check_size(path: Path, fd: int) -> None:
    if os.fstat(fd).st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")


def _too_long(seconds: float, limit: float) -> str:
    return f"call is {seconds:.1f} s long, over --max-duration {limit:g} s"


def decode(
    source: str | os.PathLike[str],
    *,
    max_duration: float | None = None,
    consumers: Sequence[Consumer] = (),
    mix: bool = False,
) -> DecodedAudio:
    """Decode ``source`` to 16 kHz float32 per channel in one streaming pass.

    ``consumers`` get each block as a float32 array shaped ``(channels, n)`` as it is produced. ``mix``: average
    every channel into one (the call is then one signal: every channel's speech is in it).
    Raises :class:`AudioError` (one line, naming the file) for anything that cannot be used.
    """
    path = Path(source)
    fd = open_regular(path)
    try:
        _check_size(path, fd)
        try:
            container = av.open(fd_path(fd, path), mode="r")
        except PermissionError:
            raise AudioError(path, "permission denied") from None
        except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise AudioError(path, f"not a recognised audio file ({reason})") from None
        try:
            return _decode_container(path, fd, container, max_duration, consumers, mix)
        finally:
            container.close()
    finally:
        os.close(fd)


def _decode_container(
    path: Path, fd: int, container: Any, max_duration: float | None, consumers: Sequence[Consumer], mix: bool = False
) -> DecodedAudio:
    if not container.streams.audio:
        kinds = sorted({s.type for s in container.streams})
        found = f" (found {', '.join(kinds)})" if kinds else ""
        raise AudioError(path, f"no audio stream{found}")
    stream = container.streams.audio[0]
    codec = stream.codec_context.name
    declared = _declared_seconds(container, stream)
    promised = _wav_declared_seconds(fd) if container.format.name == "wav" else None
    if max_duration is not None and declared is not None and declared > max_duration:
        raise AudioError(path, _too_long(declared, max_duration))

    store: SampleSpool | None = None
    blocker: _Blocker | None = None
    resampler: soxr.ResampleStream | None = None
    source_rate = stream.rate or 0
    channels = stream.codec_context.channels or 0
    bad_packets = bad_in_row = non_finite = 0
    notes: list[str] = []
    last_told = 0
    try:
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                bad_packets += 1
                bad_in_row += 1
                if bad_in_row > MAX_BAD_PACKETS:
                    break
                continue
            bad_in_row = 0
            for frame in frames:
                samples = frame_to_float(frame)
                if frame.format.name.rstrip("p") in _FLOAT_FORMATS:  # integer PCM cannot hold NaN or inf
                    non_finite += repair_non_finite(samples)
                if store is None:
                    channels, source_rate = samples.shape[0], frame.sample_rate
                    mixing = mix and channels > 1
                    store = SampleSpool(1 if mixing else channels, round(SPOOL_AFTER_S * SAMPLE_RATE))
                    blocker = _Blocker(store, consumers, mix=mixing)
                    if source_rate != SAMPLE_RATE:
                        resampler = soxr.ResampleStream(
                            source_rate, SAMPLE_RATE, channels, dtype="float32", quality=SOXR_QUALITY
                        )
                elif samples.shape[0] != channels or frame.sample_rate != source_rate:
                    raise AudioError(path, "channel count or sample rate changes mid-stream")
                assert blocker is not None
                if resampler is not None:
                    out = resampler.resample_chunk(np.ascontiguousarray(samples.T))
                    blocker.add(out.T)
                else:
                    blocker.add(samples)
                if has_listeners() and store.frames - last_told >= BLOCK_FRAMES:
                    last_told = store.frames
                    tell_listeners(str(path), store.frames / SAMPLE_RATE, declared)
                if max_duration is not None and store.frames > max_duration * SAMPLE_RATE:
                    seconds = declared if declared is not None else store.frames / SAMPLE_RATE
                    raise AudioError(path, _too_long(max(seconds, max_duration), max_duration))
    except av.error.FFmpegError as exc:
        if store is None or store.frames == 0:
            raise AudioError(path, f"corrupt audio stream, nothing decodable ({type(exc).__name__})") from None
        notes.append(f"stream is damaged after {store.frames / SAMPLE_RATE:.1f} s; decoded the first part only")
    except BaseException:
        if store is not None:
            store.close()
        raise

    if store is None or blocker is None:
        if bad_packets:
            raise AudioError(path, f"corrupt audio stream: {bad_packets} packets undecodable, no audio")
        raise AudioError(path, "no audio samples (0 s of audio)")
    if resampler is not None:
        blocker.add(resampler.resample_chunk(np.zeros((0, channels), dtype=np.float32), last=True).T)
    blocker.flush()
    store.finish()
    if store.frames == 0:
        store.close()
        raise AudioError(path, "no audio samples (0 s of audio)")
    duration = store.frames / SAMPLE_RATE
    if non_finite:
        notes.append(_non_finite_note(non_finite))
    if bad_packets:
        notes.append(f"skipped {bad_packets} undecodable packets")
    expected = max(declared or 0.0, promised or 0.0)
    if expected and duration < TRUNCATED_RATIO * expected:
        if duration < MIN_USABLE_S:
            store.close()
            raise AudioError(path, f"truncated: no audio data after the header ({expected:.1f} s declared)")
        notes.append(f"stream ended early: decoded {duration:.1f} s of {expected:.1f} s declared")
    for note in notes:
        log.warning("%s: %s", path, note)
    if max_duration is not None and duration > max_duration:
        store.close()
        raise AudioError(path, _too_long(duration, max_duration))
    if store.channels != channels:
        notes.append(mixed_note(channels))
    return DecodedAudio(
        path=str(path),
        source_rate=source_rate,
        channels=store.channels,
        codec=codec,
        duration=duration,
        notes=notes,
        _store=store,
    )


def mixed_note(channels: int) -> str:
    return f"{channels} channels mixed into one signal by request"


def from_array(samples: np.ndarray, sample_rate: int, *, name: str = "<array>", mix: bool = False) -> DecodedAudio:
    """Wrap samples shaped ``(n,)`` or ``(channels, n)`` (any rate) as :class:`DecodedAudio`; ``mix`` as in
    :func:`decode`."""
    data = np.asarray(samples)
    if data.ndim == 1:
        data = data[np.newaxis, :]
    if data.ndim != 2 or data.shape[1] == 0:
        raise AudioError(name, f"expected a non-empty (n,) or (channels, n) array, got shape {samples.shape}")
    mixed_from = data.shape[0] if mix and data.shape[0] > 1 else 0
    if mixed_from:
        data = data.mean(axis=0, keepdims=True, dtype=np.float32)
    if sample_rate <= 0:
        raise AudioError(name, f"sample rate must be positive, got {sample_rate}")
    data = data.astype(np.float32, copy=False)
    non_finite = 0
    if not np.isfinite(data).all():
        data = data.copy()  # never change the caller's array
        non_finite = repair_non_finite(data)
    if sample_rate != SAMPLE_RATE:
        resampled = soxr.resample(np.ascontiguousarray(data.T), sample_rate, SAMPLE_RATE, quality=SOXR_QUALITY)
        data = np.asarray(resampled, dtype=np.float32).reshape(-1, data.shape[0]).T
    store = SampleSpool(data.shape[0], round(SPOOL_AFTER_S * SAMPLE_RATE))
    for first in range(0, data.shape[1], BLOCK_FRAMES):
        store.append(data[:, first : first + BLOCK_FRAMES])
    store.finish()
    return DecodedAudio(
        path=name,
        source_rate=sample_rate,
        channels=data.shape[0],
        codec="array",
        duration=store.frames / SAMPLE_RATE,
        notes=([_non_finite_note(non_finite)] if non_finite else []) + ([mixed_note(mixed_from)] if mixed_from else []),
        _store=store,
    )


def is_audio(path: str | os.PathLike[str]) -> bool:
    """True when the file's content has an audio stream PyAV can open (the name is not looked at)."""
    return probe_seconds(path) is not None


def probe_seconds(path: str | os.PathLike[str]) -> float | None:
    """Seconds of audio the container declares (0.0 when it does not say), or ``None`` when it holds no audio.

    Only a non-empty regular file is opened; anything else is ``None`` without a read.
    """
    try:
        fd = open_regular(path)
    except AudioError:
        return None
    try:
        if os.fstat(fd).st_size == 0:
            return None
        with av.open(fd_path(fd, Path(path)), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                return None
            return _declared_seconds(container, container.streams.audio[0]) or 0.0
    except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError):
        return None
    finally:
        os.close(fd)
