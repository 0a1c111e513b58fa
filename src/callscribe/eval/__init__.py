"""Scoring transcripts against references: CER/WER/mixed error rate, DER/JER, hotword recall.

The command line is ``callscribe eval`` (:func:`callscribe.eval.cli.register` adds it to the main app).
"""

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
