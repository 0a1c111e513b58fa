"""Fixture loading shared by the QA tests."""

from __future__ import annotations

from pathlib import Path

from callscribe.model import Transcript

DATA = Path(__file__).parent / "data"


def load(name: str) -> Transcript:
    return Transcript.from_json((DATA / f"{name}.json").read_text(encoding="utf-8"))
