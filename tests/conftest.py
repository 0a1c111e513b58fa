"""Shared test fixtures: where the real speech lives, and markers."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EVALSET = ROOT.parent / "shared" / "evalset-dev"
EXAMPLES = ROOT / "examples" / "calls"

# scripts/ holds the speech synthesiser that made the example calls; tests build calls with it too.
sys.path.insert(0, str(ROOT / "scripts"))
# tests/speakers/speakers_calls.py holds the synthetic calls and the reference-text engine other folders use too.
sys.path.insert(0, str(ROOT / "tests" / "speakers"))


def evalset_items(lang: str | None = None, quality: str | None = None) -> list[dict]:
    """Manifest rows of ../shared/evalset-dev (empty when it is absent)."""
    manifest = EVALSET / "manifest.jsonl"
    if not manifest.exists():
        return []
    rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [
        r
        for r in rows
        if (lang is None or r["lang"] == lang) and (quality is None or r["reference_quality"] == quality)
    ]


@pytest.fixture(scope="session")
def evalset() -> Path:
    """The evalset-dev folder; tests that need it skip cleanly when it is absent."""
    if not (EVALSET / "manifest.jsonl").exists():
        pytest.skip("../shared/evalset-dev is not present")
    return EVALSET


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return EXAMPLES
