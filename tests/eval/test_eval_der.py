"""DER/JER: equal to pyannote.metrics computed directly, on the evalset-dev RTTM files."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyannote.core import Annotation, Segment, Timeline
from pyannote.metrics.diarization import DiarizationErrorRate, JaccardErrorRate

from callscribe.eval.der import (
    DerTotals,
    RttmError,
    der,
    der_annotations,
    load_rttm,
    transcript_annotation,
)
from callscribe.model import CallInfo, Transcript, Utterance
from conftest import evalset_items


def _rttms(evalset: Path) -> list[Path]:
    paths = [evalset / r["rttm"] for r in evalset_items() if r["rttm"]]
    assert paths, "evalset-dev lists RTTM files"
    return paths


def _perturb(ref: Annotation, shift: float, swap: bool) -> Annotation:
    """Boundaries moved by ``shift`` (start later, end earlier on alternate turns) and two labels swapped."""
    labels = sorted(ref.labels())
    rename = {labels[0]: labels[1], labels[1]: labels[0]} if swap else {}
    out = Annotation(uri=ref.uri)
    for i, (seg, _, label) in enumerate(ref.itertracks(yield_label=True)):
        start, end = (seg.start + shift, seg.end) if i % 2 else (seg.start, seg.end - shift)
        if i % 5 == 3:
            label = labels[-1]  # relabel every fifth turn: speaker confusion
        out[Segment(start, end), i] = rename.get(label, label)
    out[Segment(ref.get_timeline().extent().end + 0.5, ref.get_timeline().extent().end + 1.5), "fa"] = "extra"
    return out


def _direct(ref: Annotation, hyp: Annotation) -> tuple[dict, dict]:
    uem = Timeline([(ref.get_timeline() | hyp.get_timeline()).extent()])
    d = DiarizationErrorRate(collar=0.0, skip_overlap=False)(ref, hyp, uem=uem, detailed=True)
    j = JaccardErrorRate(collar=0.0, skip_overlap=False)(ref, hyp, uem=uem, detailed=True)
    return d, j


def test_identical_turns_score_zero(evalset: Path) -> None:
    for path in _rttms(evalset):
        ref = load_rttm(path)
        score = der_annotations(ref, ref)
        assert score.der == 0.0 and score.jer == 0.0
        assert score.total == pytest.approx(sum(s.duration for s, _ in ref.itertracks()))


@pytest.mark.parametrize(("shift", "swap"), [(0.25, False), (0.4, True), (1.0, True)])
def test_perturbed_copy_equals_pyannote(evalset: Path, shift: float, swap: bool) -> None:
    for path in _rttms(evalset):
        ref = load_rttm(path)
        hyp = _perturb(ref, shift, swap)
        score = der_annotations(ref, hyp)
        d, j = _direct(ref, hyp)
        assert score.der == pytest.approx(d["diarization error rate"])
        assert score.confusion == pytest.approx(d["confusion"])
        assert score.missed == pytest.approx(d["missed detection"])
        assert score.false_alarm == pytest.approx(d["false alarm"])
        assert score.jer == pytest.approx(j["jaccard error rate"])
        assert score.der > 0 and score.confusion > 0 and score.missed > 0 and score.false_alarm > 0


def test_transcript_turns_scored_like_the_rttm(evalset: Path) -> None:
    """A transcript whose utterances are the reference turns, relabelled, scores 0; shifted ones match pyannote."""
    for path in _rttms(evalset):
        ref = load_rttm(path)
        turns = list(ref.itertracks(yield_label=True))
        utts = tuple(Utterance(s.start, s.end, 0, "text", speaker=f"spk{lab}") for s, _, lab in turns)
        call = CallInfo(path.stem, f"/calls/{path.stem}.wav", "", 30.0, 16000, 1)
        assert der(path, Transcript(call, utts, "test")).der == 0.0

        late = tuple(Utterance(u.start + 0.3, u.end + 0.3, 0, u.text, speaker=u.speaker) for u in utts)
        hyp = Annotation()
        for i, u in enumerate(late):
            hyp[Segment(u.start, u.end), i] = u.speaker
        d, _ = _direct(ref, hyp.support())
        assert der(path, Transcript(call, late, "test")).der == pytest.approx(d["diarization error rate"])


def test_channel_labels_when_speaker_is_empty() -> None:
    utts = (Utterance(0.0, 2.0, 0, "hello"), Utterance(2.5, 4.0, 1, "hi"), Utterance(1.0, 3.0, 0, "again"))
    ann = transcript_annotation(utts)
    assert sorted(ann.labels()) == ["ch0", "ch1"]
    assert ann.label_timeline("ch0").duration() == pytest.approx(3.0)  # same-speaker overlap merged


def test_corpus_totals_equal_pyannote_accumulated(evalset: Path) -> None:
    der_metric = DiarizationErrorRate(collar=0.0, skip_overlap=False)
    jer_metric = JaccardErrorRate(collar=0.0, skip_overlap=False)
    scores = []
    for path in _rttms(evalset):
        ref = load_rttm(path)
        hyp = _perturb(ref, 0.3, True)
        uem = Timeline([(ref.get_timeline() | hyp.get_timeline()).extent()])
        der_metric(ref, hyp, uem=uem)
        jer_metric(ref, hyp, uem=uem)
        scores.append(der_annotations(ref, hyp))
    totals = DerTotals.of(scores)
    assert totals.der == pytest.approx(abs(der_metric))
    assert totals.jer == pytest.approx(abs(jer_metric))


def test_bad_rttm_is_named(tmp_path: Path) -> None:
    with pytest.raises(RttmError, match=r"missing\.rttm: no such RTTM file"):
        load_rttm(tmp_path / "missing.rttm")
    two = tmp_path / "two.rttm"
    two.write_text(
        "SPEAKER a 1 0.0 1.0 <NA> <NA> x <NA> <NA>\nSPEAKER b 1 0.0 1.0 <NA> <NA> y <NA> <NA>\n", encoding="utf-8"
    )
    assert load_rttm(two, uri="b").labels() == ["y"]
    with pytest.raises(RttmError, match=r"two\.rttm: no recording 'c'"):
        load_rttm(two, uri="c")
