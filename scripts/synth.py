"""Speech synthesis for tests and the example calls, wrapping the espeak-ng command-line tool.

Synthetic speech is for structure tests (turns, channels, timing, formats), never for accuracy claims.

    from synth import Turn, build_dialogue, speak, to_stereo, write_wav

    d = build_dialogue([Turn("agent", "Thank you for calling.", AGENT_VOICE),
                        Turn("customer", "Hi, my bill is wrong.", CUSTOMER_VOICE, overlap=0.3)])
    write_wav("call.wav", to_stereo(d, "agent", "customer"), d.sample_rate, codec="pcm_mulaw")

Mandarin: use the ``cmn-latn-pinyin`` voice with pinyin and tone digits (``"nin2 hao3"``); espeak-ng's plain
``cmn`` voice reads pinyin as English on Debian 12.
"""

from __future__ import annotations

import functools
import io
import os
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import av
import numpy as np
import soxr

ESPEAK = "espeak-ng"
ESPEAK_RATE = 22050  # espeak-ng always writes 16-bit mono at this rate
SAMPLE_RATE = 16000
TRIM_DB = -40.0  # samples quieter than this (relative to the utterance peak) at either end are cut
TURN_PEAK = 0.5  # every turn is scaled to this peak so two overlapping parties never clip
TAIL_S = 0.5  # silence after the last turn

# Two clearly different voices per language (pitch and accent differ), for two-party calls. Variants go on the
# short voice names: espeak-ng 1.51 silently ignores "+f2" on "en-gb" but honours it on "en".
AGENT_VOICE_EN = "en-us+f3"
CUSTOMER_VOICE_EN = "en+m3"
AGENT_VOICE_ZH = "cmn-latn-pinyin+f3"
CUSTOMER_VOICE_ZH = "cmn-latn-pinyin+m3"

# Encoders that need a sample format other than planar float.
_CODEC_FORMATS = {"pcm_s16le": "s16", "pcm_mulaw": "s16", "pcm_alaw": "s16", "pcm_f32le": "flt"}


class SynthError(RuntimeError):
    """espeak-ng is missing or failed."""


@dataclass(frozen=True)
class Turn:
    """One party's utterance in a scripted dialogue.

    ``gap`` is the silence before the turn starts; ``overlap`` (when > 0, replacing ``gap``) is how many
    seconds the turn starts before the speech so far ends. ``text`` is what is fed to espeak-ng (pinyin for
    Mandarin); ``transcript`` is the reference wording (Chinese characters), defaulting to ``text``.
    """

    speaker: str
    text: str
    voice: str
    gap: float = 0.4
    overlap: float = 0.0
    rate: int = 165
    pitch: int = 50
    transcript: str | None = None


class RefTurn(NamedTuple):
    """Ground truth for one turn: where it lies in the dialogue, who says it and the words."""

    start: float
    end: float
    speaker: str
    text: str


@dataclass(frozen=True)
class Dialogue:
    """A synthesized conversation: mono mix, one equally long track per speaker, and the reference turns."""

    mix: np.ndarray
    tracks: dict[str, np.ndarray]
    turns: list[RefTurn]
    sample_rate: int

    @property
    def duration(self) -> float:
        return len(self.mix) / self.sample_rate

    @property
    def speakers(self) -> list[str]:
        """Speakers in order of first appearance."""
        return list(dict.fromkeys(t.speaker for t in self.turns))


def speak(
    text: str, voice: str = "en-us", *, rate: int = 165, pitch: int = 50, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """Synthesize ``text`` with espeak-ng: float32 mono at ``sample_rate``, leading/trailing silence removed.

    Results are cached; the returned array is a fresh copy each time.
    """
    return _speak_cached(text, voice, rate, pitch, sample_rate).copy()


@functools.lru_cache(maxsize=512)
def _speak_cached(text: str, voice: str, rate: int, pitch: int, sample_rate: int) -> np.ndarray:
    if not text.strip():
        raise ValueError("speak: empty text")
    exe = shutil.which(ESPEAK)
    if exe is None:
        raise SynthError(f"{ESPEAK} is not installed (Debian package espeak-ng)")
    cmd = [exe, "--stdout", "--stdin", "-v", voice, "-s", str(rate), "-p", str(pitch)]
    proc = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True, check=False)
    if proc.returncode != 0 or len(proc.stdout) <= 44:
        err = proc.stderr.decode("utf-8", "replace").strip() or "no audio produced"
        raise SynthError(f"{ESPEAK} voice {voice!r} failed on {text[:40]!r}: {err}")
    # espeak-ng cannot seek stdout, so the header's length fields are bogus; wave reads what is there.
    with wave.open(io.BytesIO(proc.stdout)) as w:
        rate_in = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    audio = _trim(pcm.astype(np.float32) / 32768.0)
    if audio.size == 0:
        raise SynthError(f"{ESPEAK} voice {voice!r} produced only silence for {text[:40]!r}")
    out = resample(audio, rate_in, sample_rate)
    out.setflags(write=False)
    return out


def _trim(x: np.ndarray) -> np.ndarray:
    peak = float(np.abs(x).max()) if x.size else 0.0
    if peak == 0.0:
        return x[:0]
    loud = np.flatnonzero(np.abs(x) > peak * 10 ** (TRIM_DB / 20))
    return x[loud[0] : loud[-1] + 1]


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample with soxr (high quality). ``samples`` is ``(n,)`` or ``(channels, n)``; float32 out."""
    x = np.asarray(samples, dtype=np.float32)
    if from_rate == to_rate:
        return x.copy()
    if x.ndim == 1:
        return soxr.resample(x, from_rate, to_rate).astype(np.float32)
    return np.ascontiguousarray(soxr.resample(x.T, from_rate, to_rate).T, dtype=np.float32)


def build_dialogue(turns: Sequence[Turn], *, sample_rate: int = SAMPLE_RATE) -> Dialogue:
    """Lay the turns out on a timeline and mix them.

    The first turn starts after its ``gap``; each later turn starts ``gap`` seconds after the speech so far
    ends, or ``overlap`` seconds before it. A speaker may not overlap themself.
    """
    if not turns:
        raise ValueError("build_dialogue: no turns")
    clips = [speak(t.text, t.voice, rate=t.rate, pitch=t.pitch, sample_rate=sample_rate) for t in turns]
    starts: list[int] = []
    placed: list[RefTurn] = []
    cursor = 0  # end of the speech so far, in samples
    for t, clip in zip(turns, clips, strict=True):
        if t.overlap < 0 or t.gap < 0:
            raise ValueError(f"turn {t.text[:30]!r}: gap and overlap must be >= 0")
        if t.overlap > 0 and placed:
            start = max(0, cursor - round(t.overlap * sample_rate))
        else:
            start = cursor + round(t.gap * sample_rate)
        end = start + len(clip)
        for prev in placed:
            if prev.speaker == t.speaker and start < round(prev.end * sample_rate):
                raise ValueError(f"turn {t.text[:30]!r}: {t.speaker} would overlap their own previous turn")
        starts.append(start)
        words = t.transcript if t.transcript is not None else t.text
        placed.append(RefTurn(start / sample_rate, end / sample_rate, t.speaker, words))
        cursor = max(cursor, end)
    n = cursor + round(TAIL_S * sample_rate)
    tracks: dict[str, np.ndarray] = {}
    for t, clip, start in zip(turns, clips, starts, strict=True):
        track = tracks.setdefault(t.speaker, np.zeros(n, dtype=np.float32))
        track[start : start + len(clip)] += clip * (TURN_PEAK / float(np.abs(clip).max()))
    mix = np.sum(list(tracks.values()), axis=0, dtype=np.float32)
    return Dialogue(mix=mix, tracks=tracks, turns=placed, sample_rate=sample_rate)


def to_stereo(
    d: Dialogue, left: str, right: str, *, bleed_db: float | None = -20.0, bleed_delay_ms: float = 2.0
) -> np.ndarray:
    """A ``(2, n)`` split-channel recording: ``left`` speaker on channel 0, ``right`` on channel 1.

    Each channel also carries the other party ``bleed_db`` dB down and ``bleed_delay_ms`` late, like crosstalk
    on a real call recorder; ``bleed_db=None`` gives clean channels.
    """
    missing = [s for s in (left, right) if s not in d.tracks]
    if missing:
        raise ValueError(f"to_stereo: no speaker {missing[0]!r} in dialogue (has {sorted(d.tracks)})")
    others = sorted(set(d.tracks) - {left, right})
    if others:
        raise ValueError(f"to_stereo: speakers {others} have no channel")
    a, b = d.tracks[left], d.tracks[right]
    out = np.stack([a, b]).astype(np.float32)
    if bleed_db is not None:
        gain = np.float32(10 ** (bleed_db / 20))
        shift = round(bleed_delay_ms * d.sample_rate / 1000)
        out[0] += gain * _delay(b, shift)
        out[1] += gain * _delay(a, shift)
    return out


def _delay(x: np.ndarray, shift: int) -> np.ndarray:
    if shift <= 0:
        return x
    return np.concatenate([np.zeros(shift, dtype=x.dtype), x[:-shift]])


def write_wav(path: str | os.PathLike[str], samples: np.ndarray, sample_rate: int, *, codec: str = "pcm_s16le") -> None:
    """Write a WAV file (any channel count) atomically via PyAV: ``pcm_s16le``, ``pcm_mulaw``, ..."""
    write_audio(path, samples, sample_rate, codec=codec, container="wav")


def write_audio(
    path: str | os.PathLike[str],
    samples: np.ndarray,
    sample_rate: int,
    *,
    codec: str,
    container: str,
    bit_rate: int | None = None,
) -> None:
    """Encode ``samples`` (``(n,)`` or ``(channels, n)``, float in [-1, 1]) with PyAV; atomic replace."""
    x = np.atleast_2d(np.asarray(samples, dtype=np.float32))
    if x.shape[0] > 8:
        raise ValueError(f"{path}: expected (channels, n) samples, got shape {x.shape}")
    x = np.clip(x, -1.0, 1.0)
    layout = {1: "mono", 2: "stereo"}.get(x.shape[0], f"{x.shape[0]}c")
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
    os.close(fd)
    os.chmod(tmp, 0o644)
    try:
        with av.open(tmp, "w", format=container) as out:
            stream = out.add_stream(codec, rate=sample_rate, layout=layout)
            if bit_rate is not None:
                stream.bit_rate = bit_rate
            fmt = _CODEC_FORMATS.get(codec)
            if fmt == "s16":
                data = np.round(x.T * 32767.0).astype("<i2").reshape(1, -1)
            elif fmt == "flt":
                data = np.ascontiguousarray(x.T).reshape(1, -1)
            else:
                fmt, data = "fltp", np.ascontiguousarray(x)
            frame = av.AudioFrame.from_ndarray(data, format=fmt, layout=layout)
            frame.sample_rate = sample_rate
            for packet in stream.encode(frame):
                out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
