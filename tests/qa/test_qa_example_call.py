"""QA through the pipeline on the English example call: real decoding, VAD, diarization and roles, with recognition
replaced by the call's reference text, so the verdicts cannot depend on how an engine hears espeak speech."""

from __future__ import annotations

from pathlib import Path

import pytest
from speakers_calls import ReferenceEngine, example_turns

import callscribe
from callscribe.qa import run_qa


@pytest.mark.slow
def test_example_call_scores_through_the_pipeline(examples_dir: Path) -> None:
    audio = examples_dir / "en_broadband_mono.mp3"
    if not audio.exists():
        pytest.skip("examples/calls/en_broadband_mono.mp3 is not present")
    engine = ReferenceEngine(example_turns(examples_dir, audio.name))
    t = callscribe.Pipeline({"language": "en"}, engine=engine).transcribe(audio)
    result = run_qa(t)
    rules = {r.id: r for r in result.rules}
    assert result.scorecard == "en_default"
    # the script greets, offers help, apologises for the double charge and closes (see examples/calls/README.md)
    for rid in ("greeting", "closing", "no_forbidden_phrases", "no_long_silence"):
        assert rules[rid].passed, (rid, rules[rid].detail, [u.text for u in t.utterances])
    assert not rules["escalation_risk"].hits
    assert result.metrics["duration"] == pytest.approx(29.9, abs=0.1)
    assert {"agent", "customer"} <= set(result.metrics["parties"])
    assert result.metrics["parties"]["agent"]["words_per_minute"] > 60
