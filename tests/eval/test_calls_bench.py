"""The call builder (real evalset-dev speech) and the call metrics (hand-made transcripts)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from callscribe.eval.calls import (
    GAP_S,
    PAUSE_S,
    PIECE_PAD_S,
    CallSpec,
    Piece,
    TurnSpec,
    build_call,
    load_pieces,
    write_call,
)
from callscribe.eval.calls_score import (
    CallRef,
    RefTurn,
    check_glossary,
    score_alone,
    score_call,
    uncovered_seconds,
)
from callscribe.model import CallInfo, Transcript, Utterance


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        rate, channels = w.getframerate(), w.getnchannels()
        data = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768.0
    return data.reshape(-1, channels).T, rate


def rms_db(x: np.ndarray) -> float:
    return 20.0 * float(np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-12))


def window(samples: np.ndarray, rate: int, start: float, end: float) -> np.ndarray:
    return samples[..., round(start * rate) : round(end * rate)]


@pytest.fixture(scope="module")
def pieces(evalset: Path) -> dict[str, Piece]:
    return load_pieces(evalset, ("zh",))


# -- builder --------------------------------------------------------------------------------------------------
@pytest.mark.evalset
def test_mono_call_matches_its_reference(pieces: dict[str, Piece], tmp_path: Path) -> None:
    turns = (TurnSpec("agent", ("cosyvoice",)), TurnSpec("customer", ("aishell1",)), TurnSpec("agent", ("wenet",)))
    built = write_call(CallSpec("t_mono", "zh", "mono", 16000, turns, noise_dbfs=None), pieces, tmp_path)
    samples, rate = read_wav(built.audio_path)
    ref = built.ref
    assert (samples.shape[0], rate) == (1, 16000) == (ref.channels, ref.sample_rate)
    assert samples.shape[1] / rate == pytest.approx(ref.duration, abs=1e-3)
    assert CallRef.load(built.ref_path) == ref
    assert [t.party for t in ref.turns] == ["agent", "customer", "agent"]
    assert [t.text for t in ref.turns] == [pieces[t.pieces[0]].text for t in ref.turns]
    for prev, turn in zip(ref.turns, ref.turns[1:], strict=False):
        gap = turn.start - prev.end
        assert GAP_S[0] <= gap <= GAP_S[1] + 2 * PIECE_PAD_S + 0.01
    # Speech where the reference says, digital silence everywhere else (no noise floor asked for).
    for turn in ref.turns:
        for s, e in turn.speech:
            assert rms_db(window(samples, rate, s, e)) > -30.0
    silence = np.ones(samples.shape[1], bool)
    for turn in ref.turns:
        margin = PIECE_PAD_S + 0.01  # pieces keep 0.1 s of audio either side of their speech (times to 1 ms)
        silence[round((turn.start - margin) * rate) : round((turn.end + margin) * rate)] = False
    assert silence.sum() > rate  # lead-in, gaps and tail
    assert np.max(np.abs(samples[0, silence])) < 1e-3
    rttm = built.rttm_path.read_text(encoding="utf-8").splitlines()
    assert len(rttm) == 3 and {line.split()[7] for line in rttm} == {"agent", "customer"}


@pytest.mark.evalset
def test_stereo_call_has_bleed_at_the_asked_level(pieces: dict[str, Piece], tmp_path: Path) -> None:
    turns = (
        TurnSpec("customer", ("wenet",)),
        TurnSpec("agent", ("cosyvoice",)),
        TurnSpec("customer", ("aishell1",)),
    )
    spec = CallSpec("t_stereo", "zh", "stereo", 8000, turns, bleed_db=-24.0, bleed_delay_ms=20.0, noise_dbfs=None)
    built = write_call(spec, pieces, tmp_path)
    samples, rate = read_wav(built.audio_path)
    ref = built.ref
    assert (samples.shape[0], rate) == (2, 8000)
    assert ref.turns[0].party == "customer"
    assert [t.channel for t in ref.turns] == [1, 0, 1]
    for turn in ref.turns:
        own = window(samples[turn.channel], rate, turn.start - 0.05, turn.end + 0.1)
        other = window(samples[1 - turn.channel], rate, turn.start - 0.05, turn.end + 0.1)
        assert rms_db(other) - rms_db(own) == pytest.approx(-24.0, abs=2.0)
    # The bleed is late by the asked delay: the other channel is silent for its first 20 ms.
    first = ref.turns[0]
    onset = round((first.speech[0][0] - PIECE_PAD_S) * rate)
    assert np.max(np.abs(samples[0, onset : onset + round(0.015 * rate)])) < 1e-3


@pytest.mark.evalset
def test_long_turn_pauses_and_reproducibility(pieces: dict[str, Piece]) -> None:
    spec = CallSpec(
        "t_long", "zh", "mono", 8000, (TurnSpec("customer", ("soulx", "soulx")), TurnSpec("agent", ("aishell2",)))
    )
    samples, ref = build_call(spec, pieces, seed=1)
    long_turn = ref.turns[0]
    assert long_turn.text == pieces[long_turn.pieces[0]].text * 2
    assert len(long_turn.speech) == 2 * len(pieces[long_turn.pieces[0]].speech)
    pause = long_turn.speech[len(long_turn.speech) // 2][0] - long_turn.speech[len(long_turn.speech) // 2 - 1][1]
    assert PAUSE_S[0] <= pause <= PAUSE_S[1] + 2 * PIECE_PAD_S + 0.01
    again, ref_again = build_call(spec, pieces, seed=1)
    assert np.array_equal(samples, again) and ref_again == ref
    other, _ = build_call(spec, pieces, seed=2)
    assert other.shape != samples.shape or not np.array_equal(other, samples)


# -- metrics --------------------------------------------------------------------------------------------------
TEXTS = ("您好请问有什么可以帮您", "我的话费多扣了五十块", "好的我帮您查一下")


def hand_ref(form: str = "mono") -> CallRef:
    times = ((0.5, 3.0), (3.6, 6.0), (6.8, 9.0))
    parties = ("agent", "customer", "agent")
    turns = tuple(
        RefTurn(i, p, (0 if p == "agent" else 1) if form == "stereo" else 0, s, e, text, "zh", (f"p{i}",), ((s, e),))
        for i, ((s, e), p, text) in enumerate(zip(times, parties, TEXTS, strict=True))
    )
    sources = {f"p{i}": {"source": f"v{i}", "text": t} for i, t in enumerate(TEXTS)}
    channels = 2 if form == "stereo" else 1
    return CallRef("hand", "hand.wav", "zh", form, 8000, channels, 9.5, 0, turns, {}, sources=sources)


def transcript(ref: CallRef, utterances: list[Utterance]) -> Transcript:
    info = CallInfo("hand", "hand.wav", "", ref.duration, ref.sample_rate, ref.channels)
    return Transcript(info, tuple(utterances), "test")


def perfect(ref: CallRef) -> list[Utterance]:
    return [Utterance(t.start, t.end, t.channel, t.text, speaker=t.party, role=t.party) for t in ref.turns]


@pytest.mark.parametrize("form", ["mono", "stereo"])
def test_perfect_transcript_scores_zero(form: str) -> None:
    ref = hand_ref(form)
    score = score_call(ref, transcript(ref, perfect(ref)))
    assert score.rate == 0.0 and score.deletion_rate == 0.0 and score.insertion_rate == 0.0
    assert score.uncovered_s == 0.0 and score.turns_lost == 0 and score.worst_turn_loss == 0.0
    assert score.role_accuracy == 1.0 and score.roles_scored == 3
    assert score.der == pytest.approx(0.0)


def test_missing_turn_is_lost_and_uncovered() -> None:
    ref = hand_ref()
    utts = perfect(ref)
    del utts[1]
    score = score_call(ref, transcript(ref, utts))
    lost = score.turns[1]
    assert lost.loss == 1.0 and lost.lost and lost.uncovered_s == pytest.approx(2.4)
    assert score.turns_lost == 1 and score.worst_turn_loss == 1.0
    assert score.uncovered_s == pytest.approx(2.4)
    assert score.deletion_rate == pytest.approx(len(TEXTS[1]) / sum(map(len, TEXTS)))
    assert score.der == pytest.approx(2.4 / 7.1, abs=1e-3)
    assert [t.lost for t in score.turns] == [False, True, False]


def test_dropped_text_under_a_neighbours_timestamps_is_still_lost() -> None:
    # One utterance spans turns 0 and 1 in time but carries only turn 0's words: nothing is uncovered,
    # yet turn 1's words are gone.
    ref = hand_ref()
    utts = [Utterance(0.5, 6.0, 0, TEXTS[0], role="agent"), perfect(ref)[2]]
    score = score_call(ref, transcript(ref, utts))
    assert score.uncovered_s == 0.0
    assert score.turns[1].loss == 1.0 and score.turns_lost == 1
    assert score.turns[0].loss == 0.0


def test_stereo_turn_heard_only_as_bleed_is_lost() -> None:
    ref = hand_ref("stereo")
    utts = perfect(ref)
    utts[1] = Utterance(3.6, 6.0, 0, TEXTS[1], role="agent")  # the customer's words on the agent channel
    score = score_call(ref, transcript(ref, utts))
    assert score.turns[1].lost and score.turns[1].uncovered_s == pytest.approx(2.4)
    assert score.deletion_rate == 0.0  # the whole text has every word: only the turn view shows the loss


def test_role_accuracy_counts_wrong_roles() -> None:
    ref = hand_ref()
    utts = perfect(ref)
    utts[2] = Utterance(6.8, 9.0, 0, TEXTS[2], speaker="customer", role="customer")
    score = score_call(ref, transcript(ref, utts))
    assert score.role_accuracy == pytest.approx(2 / 3)
    assert score.der == pytest.approx(2.2 / 7.1, abs=1e-3)


def test_alone_baseline_and_turn_alone_loss() -> None:
    ref = hand_ref()
    alone = {"p0": TEXTS[0], "p1": TEXTS[1][:5], "p2": TEXTS[2]}
    base = score_alone(ref, alone)
    assert base is not None and base.deletions == len(TEXTS[1]) - 5
    assert score_alone(ref, {"p0": TEXTS[0]}) is None
    score = score_call(ref, transcript(ref, perfect(ref)), alone=alone)
    assert score.turns[1].alone_loss == pytest.approx(1 - 5 / len(TEXTS[1]))
    assert score.turns_lost_vs_alone == 0


def test_uncovered_seconds() -> None:
    assert uncovered_seconds([(0.0, 2.0), (3.0, 4.0)], [(0.5, 1.0), (0.8, 1.5), (3.5, 9.0)]) == pytest.approx(1.5)
    assert uncovered_seconds([(0.0, 1.0)], []) == pytest.approx(1.0)


def test_glossary_check_finds_invented_terms() -> None:
    check = check_glossary(["话费"], ["宽带套餐"], TEXTS[1], "我的话费多扣了五十块宽带套餐")
    assert check.spoken.recall == 1.0 and check.invented == ("宽带套餐",)
    assert check_glossary(["话费"], ["宽带套餐"], TEXTS[1], "我的多扣了").spoken.recall == 0.0
