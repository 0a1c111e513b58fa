"""Scoring transcripts against references: CER/WER/mixed error rate, DER/JER, hotword recall.

The command line is ``callscribe eval`` (:func:`callscribe.eval.cli.register` adds it to the main app).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from callscribe.eval.der import DerScore, DerTotals, der, der_annotations, load_rttm, transcript_annotation
    from callscribe.eval.hotwords import HotwordScore, TermCount, hotword_recall, load_glossary, parse_glossary
    from callscribe.eval.normalize import DEFAULT_STEPS, STEP_ORDER, Normalizer, normalize
    from callscribe.eval.refs import (
        EvalInputError,
        Hypothesis,
        Reference,
        load_hypotheses,
        load_references,
    )
    from callscribe.eval.report import (
        EvalReport,
        EvalSettings,
        FileScore,
        Totals,
        score_dir,
        score_file,
        summarize,
        write_json,
    )
    from callscribe.eval.score import AlignedOp, ErrorCounts, TextScore, choose_metric, score_text, tokenize

# Heavy scoring libraries (jiwer, pyannote, opencc) load only when a name is used, so `callscribe --help`
# and `callscribe transcribe` work on an install without the [eval] extra.
_EXPORTS = {
    "DerScore": "der",
    "DerTotals": "der",
    "der": "der",
    "der_annotations": "der",
    "load_rttm": "der",
    "transcript_annotation": "der",
    "HotwordScore": "hotwords",
    "TermCount": "hotwords",
    "hotword_recall": "hotwords",
    "load_glossary": "hotwords",
    "parse_glossary": "hotwords",
    "DEFAULT_STEPS": "normalize",
    "STEP_ORDER": "normalize",
    "Normalizer": "normalize",
    "normalize": "normalize",
    "EvalInputError": "refs",
    "Hypothesis": "refs",
    "Reference": "refs",
    "load_hypotheses": "refs",
    "load_references": "refs",
    "EvalReport": "report",
    "EvalSettings": "report",
    "FileScore": "report",
    "Totals": "report",
    "score_dir": "report",
    "score_file": "report",
    "summarize": "report",
    "write_json": "report",
    "AlignedOp": "score",
    "ErrorCounts": "score",
    "TextScore": "score",
    "choose_metric": "score",
    "score_text": "score",
    "tokenize": "score",
}

__all__ = [
    "DEFAULT_STEPS",
    "STEP_ORDER",
    "AlignedOp",
    "DerScore",
    "DerTotals",
    "ErrorCounts",
    "EvalInputError",
    "EvalReport",
    "EvalSettings",
    "FileScore",
    "HotwordScore",
    "Hypothesis",
    "Normalizer",
    "Reference",
    "TermCount",
    "TextScore",
    "Totals",
    "choose_metric",
    "der",
    "der_annotations",
    "hotword_recall",
    "load_glossary",
    "load_hypotheses",
    "load_references",
    "load_rttm",
    "normalize",
    "parse_glossary",
    "score_dir",
    "score_file",
    "score_text",
    "summarize",
    "tokenize",
    "transcript_annotation",
    "write_json",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
