"""callscribe: who said what, when, in customer-service calls — and whether service met the standard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from callscribe.model import (
    SCHEMA_VERSION,
    CallInfo,
    QAResult,
    RuleHit,
    RuleResult,
    Span,
    Speaker,
    Transcript,
    Utterance,
    Word,
)
from callscribe.options import Options
from callscribe.pipeline import Pipeline

__version__ = "0.1.0"

__all__ = [
    "SCHEMA_VERSION",
    "CallInfo",
    "Options",
    "Pipeline",
    "QAResult",
    "RuleHit",
    "RuleResult",
    "Span",
    "Speaker",
    "Transcript",
    "Utterance",
    "Word",
    "transcribe",
]


def transcribe(
    source: str | Path | np.ndarray,
    options: Options | dict[str, Any] | None = None,
    *,
    sample_rate: int | None = None,
    **overrides: Any,
) -> Transcript:
    """Transcribe one recording (a path, or an array with ``sample_rate``) and return its Transcript.

    Options come as an :class:`Options`, a dict, or keyword arguments (``language="zh"``, ``engine="whisper"``...).
    """
    pipeline = Pipeline(Options.build(options, **overrides))
    return pipeline.transcribe(source, sample_rate=sample_rate)
