"""A reviewer without the pii scope reads a stored call masked, whatever was stored: the transcript and the QA
strings that quote speech (what ``GET /v1/calls/{id}`` returns to such a key)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from speakers_calls import ReferenceEngine, example_turns

import callscribe
from callscribe.qa import run_qa
from callscribe.server.routes_calls import _masked

EXAMPLE = "zh_billing_stereo_8k.wav"
LONG_DIGITS = re.compile(r"\d[\d\s-]{9,}\d")  # a phone number written in digits, however it is spaced
SPOKEN = "一三八，零零一二，三四五六"  # the customer reads a mobile number digit by digit


def test_a_call_stored_unredacted_is_read_masked(examples_dir: Path) -> None:
    turns = example_turns(examples_dir, EXAMPLE)
    pipeline = callscribe.Pipeline(
        {"language": "zh", "channel_roles": ("agent", "customer")}, engine=ReferenceEngine(turns)
    )
    transcript = pipeline.transcribe(examples_dir / EXAMPLE)  # stored as heard: no --redact
    stored = transcript.to_dict()
    qa = run_qa(transcript).to_dict()
    qa["review_reasons"] = [*qa.get("review_reasons", []), "customer read 13800138000 aloud"]
    assert SPOKEN in json.dumps(stored, ensure_ascii=False), "the example call speaks a phone number"

    shown, shown_qa = _masked(stored, qa)

    assert SPOKEN not in json.dumps(shown, ensure_ascii=False)
    assert "一三八" not in json.dumps(shown, ensure_ascii=False)
    assert not LONG_DIGITS.search(json.dumps(shown_qa, ensure_ascii=False))
    assert "[PHONE]" in json.dumps(shown, ensure_ascii=False)
    assert len(shown["utterances"]) == len(stored["utterances"])  # masked, not dropped
    assert [u["start"] for u in shown["utterances"]] == [u["start"] for u in stored["utterances"]]
    assert shown_qa["score"] == qa["score"] and len(shown_qa["rules"]) == len(qa["rules"])
