"""Two-party calls assembled from real speech with known turns, to measure what a pipeline loses or invents.

Sources: evalset-dev rows (``manifest.jsonl``) with one speaker and a ground-truth or test-assertion text
(model-output references are left out). Each file is one voice saying one utterance with one reference text,
which limits what a reference can honestly say:

- A *piece* is a whole file trimmed to its speech (Silero VAD extent plus 0.1 s), levelled to -20 dBFS; its
  reference is the file's text, exactly. Files are never cut into sentences: which words fall on which side of a
  pause is not known. The one exception: a text that starts with a one-character interjection (嗯, 啊, 对, ...)
  and punctuation, over audio that starts with a short burst and a pause, gives ``<key>:bc`` (that interjection,
  a real back-channel) and ``<key>:rest``. In the current evalset only the FireRedTTS2 podcast file qualifies
  (its leading 啊); without such a file calls have no back-channel.
- A turn is one or more pieces of the *same* party in order with 0.3-0.8 s pauses; its reference is their texts
  joined. To keep a party's voice consistent a turn may repeat a piece (the party says the same sentence
  twice) and a call repeats a party's pieces across turns: references exact, content repetitive. ``stretch``
  widens a piece's own pauses (at least 0.15 s in the source) to 0.3-0.8 s; words and reference unchanged.
- A turn's ``speech`` spans are where VAD found speech in its clean single-speaker sources, shifted to call
  time; uncovered speech and DER are measured on them, not on the pauses between them.

Forms: ``mono`` (both parties summed onto one channel) and ``stereo`` (agent channel 0, customer channel 1, each
carrying the other party as bleed ``bleed_db`` down and ``bleed_delay_ms`` late), 16-bit WAV at 8 or 16 kHz with
an optional white-noise floor. Every random draw (gaps, pauses, bleed, noise) comes from one seed per call, so a
seed rebuilds the same calls. The benchmark's calls are in ``benchmarks/calls.py``; the metrics in
:mod:`callscribe.eval.calls_score`."""

from __future__ import annotations

import json
import logging
import wave
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soxr

from callscribe.audio.decode import SAMPLE_RATE, decode
from callscribe.audio.vad import SpeechMap
from callscribe.eval.calls_score import CallRef, RefTurn
from callscribe.model import join_texts

log = logging.getLogger("callscribe")

PARTIES = ("agent", "customer")
STEREO_CHANNEL = {"agent": 0, "customer": 1}
QUALITIES = ("ground_truth", "test_assertion")
PIECE_PAD_S = 0.1  # audio kept either side of a source's speech
VAD_SILENCE_S = 0.15  # pauses at least this long inside a source are kept apart (and may be widened)
SPLIT_SILENCE_S = 0.2  # a back-channel is cut off only at a pause at least this long
INTERJECTIONS = "嗯啊对哦呃唉噢哎好"
PUNCT = "，,、。！!？? "
MAX_BACKCHANNEL_S = 0.8
GAP_S = (0.3, 1.5)  # silence between turns
PAUSE_S = (0.3, 0.8)  # silence between the pieces of one turn
LEAD_S = (0.3, 0.8)  # silence before the first turn
TAIL_S = 0.5
BLEED_DB = (-30.0, -15.0)
BLEED_DELAY_MS = (10.0, 50.0)
TARGET_DBFS = -20.0  # speech level of every piece before mixing
MAX_GAIN_DB = 24.0
PEAK = 0.98
DEFAULT_SEED = 20261205


@dataclass(frozen=True)
class Piece:
    """A stretch of one source file with its exact reference text; ``speech`` is relative to the piece."""

    key: str
    source: str  # source key: one voice
    lang: str
    text: str
    audio: np.ndarray = field(repr=False, compare=False)  # 16 kHz mono float32, levelled to TARGET_DBFS
    speech: tuple[tuple[float, float], ...]
    quality: str = ""

    @property
    def duration(self) -> float:
        return len(self.audio) / SAMPLE_RATE


@dataclass(frozen=True)
class TurnSpec:
    """One turn: ``pieces`` (keys, or unique substrings of keys) said in order by ``party``.

    ``overlap_s`` > 0 starts the turn that long before the previous turn ends (a barge-in, or with a long
    overlap a back-channel inside the previous turn).
    """

    party: str
    pieces: tuple[str, ...]
    stretch: bool = False
    overlap_s: float = 0.0


@dataclass(frozen=True)
class CallSpec:
    """A call to build: its turns in order, the form and rate of the file, and the ranges random draws come from.

    ``gap_s`` is the silence between turns (between the pieces' audio, which keeps 0.1 s around the speech);
    ``noise_dbfs`` the level of a white-noise floor added to every channel (``None``: none).
    """

    id: str
    lang: str
    form: str  # "mono" or "stereo"
    sample_rate: int
    turns: tuple[TurnSpec, ...]
    gap_s: tuple[float, float] = GAP_S
    bleed_db: float | None = None  # stereo only; None draws from BLEED_DB
    bleed_delay_ms: float | None = None  # stereo only; None draws from BLEED_DELAY_MS
    noise_dbfs: float | None = -65.0
    note: str = ""


@dataclass(frozen=True)
class BuiltCall:
    ref: CallRef
    audio_path: Path
    ref_path: Path
    rttm_path: Path


# -- sources and pieces ---------------------------------------------------------------------------------------
def _speech_spans(samples: np.ndarray) -> list[tuple[float, float]]:
    vad = SpeechMap(1, min_silence_s=VAD_SILENCE_S, min_speech_s=0.1, speech_pad_s=0.0)
    vad(samples[np.newaxis, :])
    return [(s.start, s.end) for s in vad.spans()[0]]


def _level(samples: np.ndarray, speech: Sequence[tuple[float, float]]) -> np.ndarray:
    parts = [samples[round(s * SAMPLE_RATE) : round(e * SAMPLE_RATE)] for s, e in speech] or [samples]
    rms = float(np.sqrt(np.mean(np.square(np.concatenate(parts), dtype=np.float64)))) or 1e-9
    gain_db = min(MAX_GAIN_DB, TARGET_DBFS - 20.0 * np.log10(rms))
    return (samples * 10.0 ** (gain_db / 20.0)).astype(np.float32)


def _cut(key: str, source: str, row: dict[str, Any], audio: np.ndarray, spans: Sequence[tuple[float, float]],
         lo: float, hi: float, text: str) -> Piece:  # fmt: skip
    lo, hi = max(0.0, lo), min(len(audio) / SAMPLE_RATE, hi)
    samples = audio[round(lo * SAMPLE_RATE) : round(hi * SAMPLE_RATE)]
    speech = tuple((round(max(s, lo) - lo, 3), round(min(e, hi) - lo, 3)) for s, e in spans if e > lo and s < hi)
    return Piece(key, source, str(row["lang"]), text, _level(samples, speech), speech, str(row["reference_quality"]))


def source_key(file: str) -> str:
    """``audio/zh_aishell1_BAC009S0764W0121.wav`` -> ``aishell1_BAC009S0764W0121`` (the stem without language)."""
    stem = Path(file).stem
    lang, _, rest = stem.partition("_")
    return rest if rest and len(lang) <= 3 else stem


def pieces_from_row(evalset: Path, row: dict[str, Any]) -> list[Piece]:
    """The pieces of one manifest row (see the module doc); empty when the file has no speech."""
    audio_file = decode(evalset / str(row["file"]))
    try:
        audio = np.mean([audio_file.read_frames(ch) for ch in range(audio_file.channels)], axis=0)
    finally:
        audio_file.close()
    audio = audio.astype(np.float32)
    spans = _speech_spans(audio)
    if not spans:
        return []
    key, text = source_key(str(row["file"])), str(row["text"]).strip()
    pieces = [_cut(key, key, row, audio, spans, spans[0][0] - PIECE_PAD_S, spans[-1][1] + PIECE_PAD_S, text)]
    first, rest = spans[0], spans[1:]
    if (
        len(text) > 2
        and text[0] in INTERJECTIONS
        and text[1] in PUNCT
        and rest
        and first[1] - first[0] <= MAX_BACKCHANNEL_S
        and rest[0][0] - first[1] >= SPLIT_SILENCE_S
    ):
        mid = (first[1] + rest[0][0]) / 2
        pad = min(PIECE_PAD_S, mid - first[1])
        pieces.append(_cut(f"{key}:bc", key, row, audio, spans, first[0] - PIECE_PAD_S, first[1] + pad, text[0]))
        rest_text = text[1:].lstrip(PUNCT)
        pieces.append(_cut(f"{key}:rest", key, row, audio, spans, rest[0][0] - pad, rest[-1][1] + PIECE_PAD_S,
                           rest_text))  # fmt: skip
    return pieces


def load_pieces(evalset: str | Path, langs: Iterable[str] = ("zh", "en")) -> dict[str, Piece]:
    """Every usable piece of evalset-dev by key: one-speaker rows with a ground-truth or test-assertion text."""
    evalset, langs = Path(evalset), tuple(langs)
    pieces: dict[str, Piece] = {}
    for line in (evalset / "manifest.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if (
            row.get("lang") in langs
            and row.get("speakers") == 1
            and row.get("text")
            and row.get("reference_quality") in QUALITIES
        ):
            for piece in pieces_from_row(evalset, row):
                pieces[piece.key] = piece
    return pieces


def resolve(name: str, pieces: dict[str, Piece]) -> Piece:
    """A piece by key, or by a substring that names exactly one whole-file piece (``jfk``, ``soulx:bc``)."""
    if name in pieces:
        return pieces[name]
    base, _, part = name.partition(":")
    hits = [k for k in pieces if ":" not in k and base in k]
    if len(hits) != 1:
        raise KeyError(f"piece {name!r} matches {len(hits)} sources ({', '.join(hits) or 'none'})")
    key = f"{hits[0]}:{part}" if part else hits[0]
    if key not in pieces:
        raise KeyError(f"piece {name!r}: {hits[0]} has no {part!r} part")
    return pieces[key]


def stretch(piece: Piece, rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """The piece with each of its own pauses widened to a draw from PAUSE_S (never narrowed)."""
    out: list[np.ndarray] = []
    speech: list[tuple[float, float]] = []
    cursor, shift = 0, 0.0
    for (s0, e0), (s1, _e1) in zip(piece.speech, piece.speech[1:], strict=False):
        gap = s1 - e0
        extra = max(0.0, float(rng.uniform(*PAUSE_S)) - gap)
        cut = round((e0 + gap / 2) * SAMPLE_RATE)
        out += [piece.audio[cursor:cut], np.zeros(round(extra * SAMPLE_RATE), np.float32)]
        speech.append((s0 + shift, e0 + shift))
        shift += round(extra * SAMPLE_RATE) / SAMPLE_RATE
        cursor = cut
    out.append(piece.audio[cursor:])
    if piece.speech:
        speech.append((piece.speech[-1][0] + shift, piece.speech[-1][1] + shift))
    return np.concatenate(out), speech


# -- assembling ---------------------------------------------------------------------------------------------
def _turn_audio(spec: TurnSpec, pieces: dict[str, Piece], rng: np.random.Generator
                ) -> tuple[np.ndarray, list[tuple[float, float]], list[Piece]]:  # fmt: skip
    used = [resolve(name, pieces) for name in spec.pieces]
    out: list[np.ndarray] = []
    speech: list[tuple[float, float]] = []
    t = 0.0
    for i, piece in enumerate(used):
        if i:
            pause = np.zeros(round(float(rng.uniform(*PAUSE_S)) * SAMPLE_RATE), np.float32)
            out.append(pause)
            t += len(pause) / SAMPLE_RATE
        audio, spans = stretch(piece, rng) if spec.stretch else (piece.audio, list(piece.speech))
        out.append(audio)
        speech += [(t + s, t + e) for s, e in spans]
        t += len(audio) / SAMPLE_RATE
    return np.concatenate(out), speech, used


def build_call(spec: CallSpec, pieces: dict[str, Piece], seed: int = DEFAULT_SEED) -> tuple[np.ndarray, CallRef]:
    """The call's samples, shaped ``(channels, n)`` at ``spec.sample_rate``, and its reference."""
    if spec.form not in ("mono", "stereo"):
        raise ValueError(f"{spec.id}: form must be mono or stereo, not {spec.form!r}")
    rng = np.random.default_rng([seed, zlib.crc32(spec.id.encode())])
    placed: list[tuple[str, int, np.ndarray]] = []  # party, first sample, audio
    turns: list[RefTurn] = []
    voices: dict[str, list[str]] = {p: [] for p in PARTIES}
    sources: dict[str, dict[str, str]] = {}
    t_end = prev_start = prev_end = 0.0
    for index, turn in enumerate(spec.turns):
        if turn.party not in PARTIES:
            raise ValueError(f"{spec.id}: party must be agent or customer, not {turn.party!r}")
        audio, speech, used = _turn_audio(turn, pieces, rng)
        if index == 0:
            start = float(rng.uniform(*LEAD_S))
        elif turn.overlap_s > 0:
            start = max(prev_start + 0.2, prev_end - turn.overlap_s)
        else:
            start = t_end + float(rng.uniform(*spec.gap_s))
        first = round(start * SAMPLE_RATE)
        start = first / SAMPLE_RATE
        placed.append((turn.party, first, audio))
        abs_speech = tuple((round(start + s, 3), round(start + e, 3)) for s, e in speech)
        channel = STEREO_CHANNEL[turn.party] if spec.form == "stereo" else 0
        turns.append(
            RefTurn(index, turn.party, channel, abs_speech[0][0], abs_speech[-1][1],
                    join_texts(p.text for p in used), spec.lang, tuple(p.key for p in used), abs_speech)
        )  # fmt: skip
        for p in used:
            if p.source not in voices[turn.party]:
                voices[turn.party].append(p.source)
            sources[p.key] = {"source": p.source, "reference_quality": p.quality, "text": p.text}
        prev_start, prev_end = start, start + len(audio) / SAMPLE_RATE
        t_end = max(t_end, prev_end)
    n16 = round((t_end + TAIL_S) * SAMPLE_RATE)
    tracks = {p: np.zeros(n16, np.float32) for p in PARTIES}
    for party, first, audio in placed:
        tracks[party][first : first + len(audio)] += audio
    rate = spec.sample_rate
    if rate != SAMPLE_RATE:
        tracks = {p: np.asarray(soxr.resample(x, SAMPLE_RATE, rate), np.float32) for p, x in tracks.items()}
    bleed_db = delay_ms = None
    if spec.form == "mono":
        mix = (tracks["agent"] + tracks["customer"])[np.newaxis, :]
    else:
        bleed_db = spec.bleed_db if spec.bleed_db is not None else round(float(rng.uniform(*BLEED_DB)), 1)
        delay_ms = spec.bleed_delay_ms
        if delay_ms is None:
            delay_ms = float(round(rng.uniform(*BLEED_DELAY_MS)))
        mix = np.stack([tracks["agent"], tracks["customer"]])
        mix = mix + bleed(mix[::-1], rate, bleed_db, delay_ms)
    if spec.noise_dbfs is not None:
        mix = mix + rng.standard_normal(mix.shape).astype(np.float32) * 10.0 ** (spec.noise_dbfs / 20.0)
    peak = float(np.max(np.abs(mix))) or 1.0
    if peak > PEAK:
        mix = mix * (PEAK / peak)
    ref = CallRef(
        id=spec.id, audio=f"{spec.id}.wav", lang=spec.lang, form=spec.form, sample_rate=rate,
        channels=int(mix.shape[0]), duration=round(mix.shape[1] / rate, 3), seed=seed, turns=tuple(turns),
        voices=voices, bleed_db=bleed_db, bleed_delay_ms=delay_ms, noise_dbfs=spec.noise_dbfs, note=spec.note,
        sources=sources,
    )  # fmt: skip
    return mix.astype(np.float32), ref


def bleed(other: np.ndarray, rate: int, level_db: float, delay_ms: float) -> np.ndarray:
    """``other`` (channels, n) attenuated by ``level_db`` and delayed by ``delay_ms``: the crosstalk it leaks."""
    shift = round(delay_ms / 1000.0 * rate)
    out = np.zeros_like(other)
    out[:, shift:] = other[:, : other.shape[1] - shift] * 10.0 ** (level_db / 20.0)
    return out


# -- files --------------------------------------------------------------------------------------------------
def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    """16-bit PCM WAV of ``(channels, n)`` or ``(n,)`` float samples."""
    data = np.atleast_2d(samples)
    pcm = (np.clip(data, -1.0, 1.0) * 32767.0).round().astype("<i2").T
    with wave.open(str(path), "wb") as w:
        w.setnchannels(data.shape[0])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def rttm_lines(ref: CallRef) -> list[str]:
    """One SPEAKER line per stretch of speech (a party's overlapping stretches merged), speakers by party."""
    lines = []
    for party in PARTIES:
        spans = sorted(s for t in ref.turns if t.party == party for s in t.speech)
        merged: list[list[float]] = []
        for s, e in spans:
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        lines += [f"SPEAKER {ref.id} 1 {s:.3f} {e - s:.3f} <NA> <NA> {party} <NA> <NA>" for s, e in merged]
    return sorted(lines, key=lambda line: float(line.split()[3]))


def write_call(spec: CallSpec, pieces: dict[str, Piece], out_dir: str | Path, seed: int = DEFAULT_SEED) -> BuiltCall:
    """Build one call and write ``calls/<id>.wav``, ``refs/<id>.json`` and ``refs/<id>.rttm`` under ``out_dir``."""
    out_dir = Path(out_dir)
    (out_dir / "calls").mkdir(parents=True, exist_ok=True)
    (out_dir / "refs").mkdir(parents=True, exist_ok=True)
    samples, ref = build_call(spec, pieces, seed)
    audio_path = out_dir / "calls" / ref.audio
    write_wav(audio_path, samples, ref.sample_rate)
    ref_path = out_dir / "refs" / f"{ref.id}.json"
    ref_path.write_text(json.dumps(ref.to_dict(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    rttm_path = out_dir / "refs" / f"{ref.id}.rttm"
    rttm_path.write_text("\n".join(rttm_lines(ref)) + "\n", encoding="utf-8")
    return BuiltCall(ref, audio_path, ref_path, rttm_path)


def build_calls(evalset: str | Path, out_dir: str | Path, specs: Sequence[CallSpec], seed: int = DEFAULT_SEED,
                pieces: dict[str, Piece] | None = None) -> list[BuiltCall]:  # fmt: skip
    """Write every call of ``specs`` whose pieces exist; a call that names a missing piece is skipped (logged)."""
    pieces = pieces if pieces is not None else load_pieces(evalset, {s.lang for s in specs})
    built = []
    for spec in specs:
        try:
            built.append(write_call(spec, pieces, out_dir, seed))
        except KeyError as exc:
            log.warning("call %s skipped: %s", spec.id, exc.args[0])
    return built


def write_alone(keys: Iterable[str], pieces: dict[str, Piece], rate: int, out_dir: str | Path) -> dict[str, Path]:
    """Each piece alone (as levelled for the calls, no stretch, no bleed, no noise) as a WAV at ``rate``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for key in sorted(set(keys)):
        piece = pieces[key]
        samples = piece.audio if rate == SAMPLE_RATE else np.asarray(soxr.resample(piece.audio, SAMPLE_RATE, rate))
        path = out_dir / (key.replace(":", "-") + ".wav")
        write_wav(path, samples, rate)
        written[key] = path
    return written
