"""Speech spans -> clips an engine can take (at most ``max_clip_s`` long, 16 kHz mono float32).

Per channel, consecutive spans (with the same speaker label, when labels are given) are merged while the
clip stays short enough and the silence between them stays under ``max_gap_s``; a span too long for one clip
is cut at its quietest stretch (lowest smoothed frame energy). Every speech sample lands in exactly one clip
core; padding of ``pad_s`` is added around each core, but never more than half the gap to the neighbouring
clip of the same channel and never beyond the audio.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from callscribe.audio.decode import SAMPLE_RATE, DecodedAudio
from callscribe.audio.enhance import denoise as denoise_samples
from callscribe.audio.enhance import normalize_loudness
from callscribe.engines.base import Clip
from callscribe.model import Span

MAX_CLIP_S = 30.0
PAD_S = 0.2
MAX_MERGE_GAP_S = 2.0  # longer silences end a clip: engines do better without long silent stretches
ENERGY_FRAME_S = 0.01
MIN_PIECE_SHARE = 0.25  # a cut leaves pieces of at least this share of the longest clip core
ENERGY_SMOOTH_S = 0.2  # cuts go where the energy averaged over this long is lowest: inside a pause
QUIET_DB = 3.0  # averages this close to the lowest count as the same pause
ENERGY_FLOOR = 1e-10  # -100 dBFS: digital silence and near-silence are equally quiet


@dataclass(frozen=True)
class ClipPlan:
    """Where one clip goes: its speech core, the speech spans inside it, and the padded cut."""

    channel: int
    core: Span
    spans: tuple[Span, ...]
    start: float
    end: float
    speaker: str | None = None


def _quietest(audio: DecodedAudio, channel: int, lo: float, hi: float) -> float:
    """The middle of the longest quiet stretch of ``channel`` in ``[lo, hi]``.

    Quiet: frame energy averaged over ``ENERGY_SMOOTH_S`` within ``QUIET_DB`` of the quietest such average.
    """
    frame = round(ENERGY_FRAME_S * SAMPLE_RATE)
    first = round(lo * SAMPLE_RATE)
    samples = audio.read_frames(channel, first, round(hi * SAMPLE_RATE))
    count = len(samples) // frame
    if count < 2:
        return (lo + hi) / 2
    energy = np.mean(np.square(samples[: count * frame].reshape(count, frame), dtype=np.float64), axis=1)
    kernel = np.ones(max(1, round(ENERGY_SMOOTH_S / ENERGY_FRAME_S)))
    # Divide by how many frames each average really covers, so the edges are not made to look quiet.
    smoothed = np.convolve(energy, kernel, mode="same") / np.convolve(np.ones(count), kernel, mode="same")
    level = 10.0 * np.log10(smoothed + ENERGY_FLOOR)
    quiet = np.concatenate([[False], level <= level.min() + QUIET_DB, [False]])
    edges = np.flatnonzero(np.diff(quiet.astype(np.int8)))
    starts, stops = edges[::2], edges[1::2]
    longest = int(np.argmax(stops - starts))
    middle = (starts[longest] + stops[longest] - 1) / 2
    return min(hi, max(lo, (first + middle * frame + frame / 2) / SAMPLE_RATE))


def _split(audio: DecodedAudio, channel: int, span: Span, max_core: float) -> list[Span]:
    """Cut ``span`` into pieces of ``max_core / 4`` to ``max_core`` seconds, each at the quietest point allowed."""
    min_piece = max_core * MIN_PIECE_SHARE
    pieces: list[Span] = []
    rest = span
    while rest.duration > max_core:
        lo = rest.start + min_piece
        hi = rest.start + min(max_core, rest.duration - min_piece)
        cut = _quietest(audio, channel, lo, hi)
        pieces.append(Span(rest.start, cut))
        rest = Span(cut, rest.end)
    pieces.append(rest)
    return pieces


def _normalised_spans(spans: list[Span], labels: list[str | None] | None) -> list[tuple[Span, str | None]]:
    """Sort spans and merge overlapping ones that share a label."""
    tagged = sorted(
        zip(spans, labels if labels is not None else [None] * len(spans), strict=True),
        key=lambda t: (t[0].start, t[0].end),
    )
    out: list[tuple[Span, str | None]] = []
    for span, label in tagged:
        if span.duration <= 0:
            continue
        if out and out[-1][1] == label and span.start <= out[-1][0].end:
            out[-1] = (out[-1][0].union(span), label)
        else:
            out.append((span, label))
    return out


def plan_clips(
    audio: DecodedAudio,
    speech: dict[int, list[Span]],
    *,
    max_clip_s: float = MAX_CLIP_S,
    pad_s: float = PAD_S,
    max_gap_s: float = MAX_MERGE_GAP_S,
    labels: dict[int, list[str | None]] | None = None,
) -> list[ClipPlan]:
    """Decide the clips; only spans too long for one clip are read, to find their quietest point."""
    if max_clip_s <= 2 * pad_s:
        raise ValueError(f"max_clip_s ({max_clip_s}) must be longer than twice pad_s ({pad_s})")
    max_core = max_clip_s - 2 * pad_s
    plans: list[ClipPlan] = []
    for channel in sorted(speech):
        if not 0 <= channel < audio.channels:
            raise ValueError(f"{audio.path}: speech given for channel {channel}, call has {audio.channels}")
        channel_labels = labels.get(channel) if labels is not None else None
        pieces: list[tuple[Span, str | None]] = []
        for span, label in _normalised_spans(speech[channel], channel_labels):
            clamped = Span(max(0.0, span.start), min(audio.duration, span.end))
            if clamped.duration > 0:
                pieces.extend((p, label) for p in _split(audio, channel, clamped, max_core))
        groups: list[tuple[list[Span], str | None]] = []
        for piece, label in pieces:
            if groups:
                members, group_label = groups[-1]
                fits = piece.end - members[0].start <= max_core
                near = piece.start - members[-1].end <= max_gap_s
                if group_label == label and fits and near and piece.start >= members[-1].end:
                    members.append(piece)
                    continue
            groups.append(([piece], label))
        cores = [Span(members[0].start, members[-1].end) for members, _ in groups]
        for i, (members, label) in enumerate(groups):
            core = cores[i]
            before = core.start if i == 0 else max(0.0, core.start - cores[i - 1].end) / 2
            after = audio.duration - core.end if i == len(cores) - 1 else max(0.0, cores[i + 1].start - core.end) / 2
            start = core.start - min(pad_s, before)
            end = core.end + min(pad_s, after)
            plans.append(ClipPlan(channel, core, tuple(members), start, end, label))
    plans.sort(key=lambda p: (p.start, p.channel))
    return plans


def clip_audio(audio: DecodedAudio, plan: ClipPlan, *, normalize: bool = True, denoise: bool = False) -> Clip:
    """Read one planned clip's samples and clean them up; ``index`` is left at 0 for the caller to set."""
    first = round(plan.start * SAMPLE_RATE)
    last = min(round(plan.end * SAMPLE_RATE), first + round((plan.end - plan.start) * SAMPLE_RATE))
    samples = audio.read_frames(plan.channel, first, last)
    if denoise:
        samples = denoise_samples(samples)
    if normalize:
        speech = [
            samples[max(0, round(s.start * SAMPLE_RATE) - first) : round(s.end * SAMPLE_RATE) - first]
            for s in plan.spans
        ]
        samples = normalize_loudness(samples, np.concatenate(speech) if speech else None)
    return Clip(
        call_id="",
        channel=plan.channel,
        start=first / SAMPLE_RATE,
        audio=samples,
        speaker=plan.speaker,
        speech=plan.spans,
    )


def iter_clips(
    audio: DecodedAudio,
    speech: dict[int, list[Span]],
    *,
    call_id: str,
    max_clip_s: float = MAX_CLIP_S,
    pad_s: float = PAD_S,
    normalize: bool = True,
    denoise: bool = False,
    labels: dict[int, list[str | None]] | None = None,
    max_gap_s: float = MAX_MERGE_GAP_S,
) -> Iterator[Clip]:
    """Cut the call into clips ordered by start time, reading each clip's samples only when it is asked for.

    ``clip.start`` is the padded start in the call. A long call never holds more than the clip at hand.
    """
    plans = plan_clips(audio, speech, max_clip_s=max_clip_s, pad_s=pad_s, max_gap_s=max_gap_s, labels=labels)
    for index, plan in enumerate(plans):
        clip = clip_audio(audio, plan, normalize=normalize, denoise=denoise)
        clip.call_id, clip.index = call_id, index
        yield clip
