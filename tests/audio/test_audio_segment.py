"""Clip cutting: every speech sample in exactly one clip core, clips bounded, long speech cut at a pause."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from audio_samples import real_speech

from callscribe.audio import (
    SAMPLE_RATE,
    ClipPlan,
    from_array,
    iter_clips,
    plan_clips,
    prepare_array,
)
from callscribe.audio.enhance import denoise, normalize_loudness, rms_dbfs
from callscribe.model import Span
from callscribe.options import Options

FRAME = 160  # 10 ms: the grid the coverage check counts on


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return real_speech()


def _stereo_call(speech: np.ndarray, seed: int = 5, turns: int = 16) -> np.ndarray:
    """Two parties taking turns with pieces of real speech and pauses from 0.1 s to 4 s."""
    rng = np.random.default_rng(seed)
    parts: list[np.ndarray] = []
    for turn in range(turns):
        length = int(rng.uniform(1.0, 6.0) * SAMPLE_RATE)
        offset = int(rng.integers(0, len(speech) - length))
        piece = np.zeros((2, length), dtype=np.float32)
        piece[turn % 2] = speech[offset : offset + length]
        parts.append(piece)
        parts.append(np.zeros((2, int(rng.uniform(0.1, 4.0) * SAMPLE_RATE)), dtype=np.float32))
    return np.concatenate(parts, axis=1)


def _mask(spans: list[Span], frames: int) -> np.ndarray:
    counts = np.zeros(frames, dtype=np.int32)
    for span in spans:
        counts[round(span.start * SAMPLE_RATE / FRAME) : round(span.end * SAMPLE_RATE / FRAME)] += 1
    return counts


def _merged(spans: list[Span]) -> list[tuple[float, float]]:
    out: list[list[float]] = []
    for span in sorted(spans):
        if out and span.start <= out[-1][1] + 1e-9:
            out[-1][1] = max(out[-1][1], span.end)
        else:
            out.append([span.start, span.end])
    return [(round(a, 6), round(b, 6)) for a, b in out]


def _check_plans(
    plans: list[ClipPlan], speech: dict[int, list[Span]], duration: float, max_clip_s: float, pad_s: float
) -> None:
    frames = int(duration * SAMPLE_RATE / FRAME) + 2
    for channel, spans in speech.items():
        mine = [p for p in plans if p.channel == channel]
        cores = [p.core for p in mine]
        # Every speech frame is in exactly one core; cores never overlap.
        speech_mask = _mask(spans, frames) > 0
        core_counts = _mask(cores, frames)
        assert np.all(core_counts[speech_mask] == 1)
        assert core_counts.max(initial=0) <= 1
        assert all(a.end <= b.start for a, b in itertools.pairwise(cores))
        # The speech inside the cores is exactly the speech that was found.
        assert _merged([s for p in mine for s in p.spans]) == _merged(spans)
        for i, plan in enumerate(mine):
            assert plan.core == Span(plan.spans[0].start, plan.spans[-1].end)
            assert plan.end - plan.start <= max_clip_s + 1e-6
            assert 0.0 <= plan.start <= plan.core.start and plan.core.end <= plan.end <= duration
            assert plan.core.start - plan.start <= pad_s + 1e-9 and plan.end - plan.core.end <= pad_s + 1e-9
            if i + 1 < len(mine):
                middle = (plan.core.end + mine[i + 1].core.start) / 2
                assert plan.end <= middle + 1e-9 <= mine[i + 1].start + 2e-9


@pytest.mark.parametrize("max_clip_s", [4.0, 10.0, 30.0])
def test_every_speech_frame_in_exactly_one_clip(speech: np.ndarray, max_clip_s: float) -> None:
    call = _stereo_call(speech)
    prepared = prepare_array(call, SAMPLE_RATE, Options())
    assert prepared.speech[0] and prepared.speech[1]
    plans = plan_clips(prepared.audio, prepared.speech, max_clip_s=max_clip_s, pad_s=0.2)
    _check_plans(plans, prepared.speech, prepared.audio.duration, max_clip_s, 0.2)

    clips = list(iter_clips(prepared.audio, prepared.speech, call_id="call-1", max_clip_s=max_clip_s))
    assert len(clips) == len(plans)
    assert [c.index for c in clips] == list(range(len(clips)))
    assert [c.start for c in clips] == sorted(c.start for c in clips)
    for clip, plan in zip(clips, plans, strict=True):
        assert clip.call_id == "call-1" and clip.channel == plan.channel
        assert clip.audio.dtype == np.float32 and clip.audio.ndim == 1
        assert clip.duration <= max_clip_s + 1e-6
        assert clip.start == pytest.approx(plan.start, abs=1 / SAMPLE_RATE)
        assert clip.end == pytest.approx(plan.end, abs=1 / SAMPLE_RATE)
    lazy = iter_clips(prepared.audio, prepared.speech, call_id="call-1", max_clip_s=max_clip_s)
    for eager, one in zip(clips, lazy, strict=True):
        assert (eager.start, eager.index, eager.channel) == (one.start, one.index, one.channel)
        np.testing.assert_array_equal(eager.audio, one.audio)


def test_long_monologue_is_cut_inside_its_pauses(speech: np.ndarray) -> None:
    dip = np.zeros(round(0.3 * SAMPLE_RATE), dtype=np.float32)
    pieces = []
    for i in range(9):  # 4.2 s of speech then a 0.3 s pause, nine times
        pieces += [speech[i * 8_000 % 40_000 : i * 8_000 % 40_000 + round(4.2 * SAMPLE_RATE)], dip]
    audio = from_array(np.concatenate(pieces), SAMPLE_RATE)
    whole = Span(0.0, audio.duration)
    plans = plan_clips(audio, {0: [whole]}, max_clip_s=12.0, pad_s=0.2)
    _check_plans(plans, {0: [whole]}, audio.duration, 12.0, 0.2)
    assert len(plans) >= 4
    level = np.sqrt(np.mean(audio.read(0) ** 2))
    for plan in plans[:-1]:
        cut = plan.core.end
        around = audio.read(0, cut - 0.05, cut + 0.05)
        assert np.sqrt(np.mean(around**2)) < 0.05 * level, f"cut at {cut:.3f} s is not in a pause"


def test_speaker_labels_keep_clips_apart(speech: np.ndarray) -> None:
    audio = from_array(speech, SAMPLE_RATE)
    spans = [Span(0.0, 2.0), Span(2.4, 4.0), Span(4.3, 6.0), Span(6.2, 8.0)]
    labelled = list(iter_clips(audio, {0: spans}, call_id="c", labels={0: ["A", "B", "B", "A"]}))
    assert [c.speaker for c in labelled] == ["A", "B", "A"]
    unlabelled = list(iter_clips(audio, {0: spans}, call_id="c"))
    assert len(unlabelled) == 1 and unlabelled[0].speaker is None


def test_long_silences_end_a_clip(speech: np.ndarray) -> None:
    audio = from_array(np.concatenate([speech, np.zeros(10 * SAMPLE_RATE, dtype=np.float32)]), SAMPLE_RATE)
    plans = plan_clips(audio, {0: [Span(0.0, 1.0), Span(1.5, 2.5), Span(6.0, 7.0)]}, max_gap_s=2.0)
    assert [p.spans for p in plans] == [(Span(0.0, 1.0), Span(1.5, 2.5)), (Span(6.0, 7.0),)]


def test_silence_only_gives_no_clips() -> None:
    prepared = prepare_array(np.zeros(20 * SAMPLE_RATE, dtype=np.float32), 8_000, Options())
    assert prepared.speech == {0: []}
    assert list(iter_clips(prepared.audio, prepared.speech, call_id="quiet")) == []


def test_clips_are_loudness_normalised(speech: np.ndarray) -> None:
    quiet = speech / np.max(np.abs(speech)) * 0.05
    audio = from_array(quiet, SAMPLE_RATE)
    spans = {0: [Span(0.5, 4.0)]}
    raw = next(iter_clips(audio, spans, call_id="c", normalize=False))
    np.testing.assert_array_equal(raw.audio, audio.read(0, raw.start, raw.end))
    loud = next(iter_clips(audio, spans, call_id="c"))
    assert rms_dbfs(raw.audio) < -35
    peak_dbfs = 20 * np.log10(np.max(np.abs(loud.audio)))
    assert peak_dbfs <= -1.0 + 1e-4
    # Brought to about -20 dBFS, unless the peak limit stopped the gain first.
    assert -24.0 < rms_dbfs(loud.audio) < -19.0 or peak_dbfs > -1.1
    # A clip of digital silence is left as it is.
    silent = from_array(np.zeros(SAMPLE_RATE * 3, dtype=np.float32), SAMPLE_RATE)
    clip = next(iter_clips(silent, {0: [Span(1.0, 2.0)]}, call_id="c"))
    assert not clip.audio.any()


def test_normalisation_turns_loud_speech_down() -> None:
    loud = np.clip(np.random.default_rng(2).standard_normal(SAMPLE_RATE) * 0.5, -1, 1).astype(np.float32)
    assert rms_dbfs(normalize_loudness(loud)) == pytest.approx(-20.0, abs=0.5)


def test_denoise_raises_snr_and_leaves_clean_speech_nearly_alone(speech: np.ndarray) -> None:
    noise = (0.02 * np.random.default_rng(9).standard_normal(len(speech))).astype(np.float32)
    cleaned = denoise(speech + noise)
    assert cleaned.shape == speech.shape and cleaned.dtype == np.float32

    def snr(x: np.ndarray) -> float:
        return 10 * np.log10(np.sum(speech**2) / np.sum((x - speech) ** 2))

    assert snr(cleaned) > snr(speech + noise) + 1.5
    assert snr(denoise(speech)) > 20.0
    audio = from_array(speech + noise, SAMPLE_RATE)
    clips = list(iter_clips(audio, {0: [Span(0.5, 5.0)]}, call_id="c", denoise=True, normalize=False))
    plain = list(iter_clips(audio, {0: [Span(0.5, 5.0)]}, call_id="c", normalize=False))
    assert len(clips[0].audio) == len(plain[0].audio)
    assert not np.allclose(clips[0].audio, plain[0].audio)


def test_bad_arguments_are_refused(speech: np.ndarray) -> None:
    audio = from_array(speech, SAMPLE_RATE)
    with pytest.raises(ValueError, match="max_clip_s"):
        plan_clips(audio, {0: [Span(0, 1)]}, max_clip_s=0.3, pad_s=0.2)
    with pytest.raises(ValueError, match="channel 3"):
        plan_clips(audio, {3: [Span(0, 1)]})
