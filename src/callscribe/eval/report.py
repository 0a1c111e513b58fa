"""Scoring a folder of hypotheses against references: per-file scores and corpus totals.

Totals are corpus level: errors summed over files divided by reference tokens (or seconds) summed over files,
never an average of per-file ratios.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from callscribe.eval.der import DerScore, DerTotals, der_annotations, load_rttm, transcript_annotation
from callscribe.eval.hotwords import HotwordScore, hotword_recall, load_glossary
from callscribe.eval.normalize import Normalizer
from callscribe.eval.refs import Hypothesis, Reference, load_hypotheses, load_references
from callscribe.eval.score import METRICS, ErrorCounts, TextScore, score_text

logger = logging.getLogger("callscribe")

REPORT_VERSION = 1


@dataclass(frozen=True)
class FileScore:
    """Everything scored for one recording; parts that do not apply are ``None``."""

    id: str
    lang: str | None
    quality: str | None
    hypothesis: str | None
    missing: bool
    text: TextScore | None = None
    diarization: DerScore | None = None
    hotwords: HotwordScore | None = None


@dataclass(frozen=True)
class Totals:
    """Corpus-level numbers. Rates are fractions (0.052 = 5.2 %), ``None`` when nothing was scored.

    ``cer`` covers the files scored by characters, ``wer`` those scored by words, ``mer`` every file with a
    text reference (each tokenised by its own metric: CJK characters and Latin words, the mixed error rate).
    """

    files: int
    missing: int
    cer: float | None
    wer: float | None
    mer: float | None
    der: float | None
    jer: float | None
    hotword_recall: float | None
    text: ErrorCounts
    by_metric: dict[str, ErrorCounts]
    diarization: DerTotals
    hotwords: HotwordScore | None = None


@dataclass(frozen=True)
class EvalSettings:
    """How the scores were made, kept with them."""

    refs: str
    hyp: str
    normalize_steps: tuple[str, ...]
    rttm_dir: str | None = None
    glossary: str | None = None
    count_missing: bool = True


@dataclass(frozen=True)
class EvalReport:
    total: Totals
    files: tuple[FileScore, ...]
    unmatched_hypotheses: tuple[str, ...] = ()
    settings: EvalSettings | None = None
    version: int = field(default=REPORT_VERSION)

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = json.loads(json.dumps(asdict(self), ensure_ascii=False))
        return data

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)


def write_json(report: EvalReport, path: str | Path) -> Path:
    """Write the report as JSON atomically (a temp file in the same folder, then ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(report.to_json())
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def score_file(
    ref: Reference,
    hyp: Hypothesis | None,
    *,
    normalizer: Normalizer | None,
    align: bool = False,
    terms: Iterable[str] = (),
) -> FileScore:
    """Score one recording; a missing hypothesis counts as empty (all deletions, all speech missed)."""
    from pyannote.core import Annotation

    norm: bool | Normalizer = normalizer if normalizer is not None else False
    hyp_text = hyp.text if hyp else ""
    text = hotwords = diarization = None
    if ref.text is not None:
        text = score_text(ref.text, hyp_text, ref.lang, normalize=norm, align=align)
        terms = tuple(terms)
        if terms:
            hotwords = hotword_recall(terms, ref.text, hyp_text, normalize=norm)
    if ref.rttm is not None and (hyp is None or hyp.transcript is not None):
        reference = load_rttm(ref.rttm, uri=ref.id)
        hypothesis = transcript_annotation(hyp.transcript.utterances) if hyp and hyp.transcript else Annotation()
        diarization = der_annotations(reference, hypothesis)
    return FileScore(
        id=ref.id,
        lang=ref.lang,
        quality=ref.quality,
        hypothesis=str(hyp.path) if hyp else None,
        missing=hyp is None,
        text=text,
        diarization=diarization,
        hotwords=hotwords,
    )


def summarize(files: Iterable[FileScore]) -> Totals:
    """Corpus totals of per-file scores."""
    files = tuple(files)
    texts = [f.text for f in files if f.text is not None]
    by_metric = {m: ErrorCounts.total(t for t in texts if t.metric == m) for m in METRICS}
    diarization = DerTotals.of(f.diarization for f in files if f.diarization is not None)
    hot = [f.hotwords for f in files if f.hotwords is not None]
    hotwords = HotwordScore.merge(hot) if hot else None
    return Totals(
        files=len(files),
        missing=sum(f.missing for f in files),
        cer=by_metric["cer"].rate,
        wer=by_metric["wer"].rate,
        mer=ErrorCounts.total(texts).rate,
        der=diarization.der,
        jer=diarization.jer,
        hotword_recall=hotwords.recall if hotwords else None,
        text=ErrorCounts.total(texts),
        by_metric=by_metric,
        diarization=diarization,
        hotwords=hotwords,
    )


def score_dir(
    refs: str | Path | Mapping[str, Reference],
    hyp_dir: str | Path,
    *,
    normalize: bool | Normalizer = True,
    align: bool = False,
    rttm_dir: str | Path | None = None,
    glossary: str | Path | Iterable[str] | None = None,
    count_missing: bool = True,
) -> EvalReport:
    """Score every reference against the hypothesis of the same stem in ``hyp_dir``.

    ``refs`` is a manifest JSONL, a folder of ``.txt`` files, a Kaldi ``text`` file, or references already
    loaded. ``glossary`` is a glossary file or the terms themselves. A reference without a hypothesis counts as
    an empty hypothesis when ``count_missing`` (the honest default), and is left out otherwise.
    """
    references = dict(refs) if isinstance(refs, Mapping) else load_references(refs, rttm_dir)
    hypotheses = load_hypotheses(hyp_dir)
    if isinstance(normalize, Normalizer):
        normalizer: Normalizer | None = normalize
    else:
        normalizer = Normalizer() if normalize else None
    if glossary is None:
        terms: tuple[str, ...] = ()
    elif isinstance(glossary, (str, Path)):
        terms = load_glossary(glossary)
    else:
        terms = tuple(glossary)
    missing = [ref_id for ref_id in references if ref_id not in hypotheses]
    if missing:
        logger.warning(
            "%d reference(s) have no hypothesis in %s (%s): %s",
            len(missing),
            hyp_dir,
            "scored as empty" if count_missing else "left out",
            ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else ""),
        )
    scores = [
        score_file(ref, hypotheses.get(ref_id), normalizer=normalizer, align=align, terms=terms)
        for ref_id, ref in references.items()
        if count_missing or ref_id in hypotheses
    ]
    used = {h.path for rid, h in hypotheses.items() if rid in references}
    unmatched = tuple(sorted({str(h.path) for h in hypotheses.values() if h.path not in used}))
    settings = EvalSettings(
        refs="<loaded>" if isinstance(refs, Mapping) else str(refs),
        hyp=str(hyp_dir),
        normalize_steps=normalizer.steps if normalizer else (),
        rttm_dir=str(rttm_dir) if rttm_dir is not None else None,
        glossary=str(glossary) if isinstance(glossary, (str, Path)) else None,
        count_missing=count_missing,
    )
    return EvalReport(summarize(scores), tuple(scores), unmatched, settings)
