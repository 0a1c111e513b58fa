"""Diarization scoring: DER and JER through pyannote.metrics.

The hypothesis is a transcript's utterances: one segment per utterance, labelled with its ``speaker`` (or
``ch<channel>`` when the speaker is empty). Scoring uses no collar and keeps overlapped speech
(``DiarizationErrorRate(collar=0.0, skip_overlap=False)``), the strict setting. The scored region is the
extent of reference and hypothesis together unless a UEM span is given; silence outside both cannot add
errors, so this equals scoring the whole recording.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from callscribe.eval.refs import EvalInputError
from callscribe.model import Span, Transcript, Utterance

if TYPE_CHECKING:
    from pyannote.core import Annotation, Timeline

COLLAR = 0.0
SKIP_OVERLAP = False


class RttmError(EvalInputError):
    """An RTTM file that cannot be read."""


@dataclass(frozen=True)
class DerScore:
    """Diarization errors in seconds of reference speech, and the rates.

    ``der = (confusion + missed + false_alarm) / total``; ``jer`` is the Jaccard error rate (mean over
    reference speakers of 1 - intersection/union with the mapped hypothesis speaker).
    """

    der: float
    jer: float
    total: float
    confusion: float
    missed: float
    false_alarm: float
    speaker_count: int
    speaker_error: float
    mapping: dict[str, str] = field(default_factory=dict)


def load_rttm(path: str | Path, uri: str | None = None) -> Annotation:
    """The reference turns of one recording from an RTTM file.

    A file with one recording gives it whatever its name; with several, ``uri`` picks one (by default the
    file's stem).
    """
    from pyannote.database.util import load_rttm as pyannote_load_rttm

    path = Path(path)
    try:
        by_uri = pyannote_load_rttm(path)
    except FileNotFoundError as exc:
        raise RttmError(f"{path}: no such RTTM file") from exc
    except Exception as exc:
        raise RttmError(f"{path}: not a readable RTTM file ({exc})") from exc
    if not by_uri:
        raise RttmError(f"{path}: no SPEAKER lines")
    key = uri or path.stem
    if key in by_uri:
        return by_uri[key]
    if len(by_uri) == 1:
        return next(iter(by_uri.values()))
    raise RttmError(f"{path}: no recording {key!r} (has {sorted(by_uri)})")


def speaker_label(utterance: Utterance) -> str:
    """The label an utterance is scored under: its speaker, or its channel when it has none."""
    return utterance.speaker or f"ch{utterance.channel}"


def transcript_annotation(utterances: Iterable[Utterance], uri: str = "hyp") -> Annotation:
    """A pyannote Annotation of the utterances (same-speaker overlaps merged)."""
    from pyannote.core import Annotation, Segment

    annotation = Annotation(uri=uri)
    for i, utt in enumerate(utterances):
        if utt.end > utt.start:
            annotation[Segment(utt.start, utt.end), i] = speaker_label(utt)
    return annotation.support()


def _uem(reference: Annotation, hypothesis: Annotation, span: Span | None) -> Timeline:
    from pyannote.core import Segment, Timeline

    if span is not None:
        return Timeline([Segment(span.start, span.end)])
    extent = reference.get_timeline().union(hypothesis.get_timeline()).extent()
    return Timeline([extent])


def der_annotations(reference: Annotation, hypothesis: Annotation, uem: Span | None = None) -> DerScore:
    """DER and JER of a hypothesis Annotation against a reference Annotation."""
    from pyannote.metrics.diarization import DiarizationErrorRate, JaccardErrorRate

    if not reference.labels() and not hypothesis.labels():
        return DerScore(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, 0.0)
    region = _uem(reference, hypothesis, uem)
    der_metric = DiarizationErrorRate(collar=COLLAR, skip_overlap=SKIP_OVERLAP)
    jer_metric = JaccardErrorRate(collar=COLLAR, skip_overlap=SKIP_OVERLAP)
    d = der_metric(reference, hypothesis, uem=region, detailed=True)
    j = jer_metric(reference, hypothesis, uem=region, detailed=True)
    mapping = der_metric.optimal_mapping(reference, hypothesis, uem=region)
    return DerScore(
        der=float(d["diarization error rate"]),
        jer=float(j["jaccard error rate"]),
        total=float(d["total"]),
        confusion=float(d["confusion"]),
        missed=float(d["missed detection"]),
        false_alarm=float(d["false alarm"]),
        speaker_count=int(j["speaker count"]),
        speaker_error=float(j["speaker error"]),
        mapping={str(h): str(r) for h, r in mapping.items()},
    )


def der(reference: str | Path | Annotation, transcript: Transcript, uem: Span | None = None) -> DerScore:
    """DER and JER of a transcript's speaker turns against a reference (an RTTM path or an Annotation)."""
    if isinstance(reference, (str, Path)):
        reference = load_rttm(reference, uri=Path(transcript.call.path).stem or None)
    return der_annotations(reference, transcript_annotation(transcript.utterances), uem)


@dataclass(frozen=True)
class DerTotals:
    """Corpus-level diarization: seconds summed over files, rates from the sums."""

    total: float = 0.0
    confusion: float = 0.0
    missed: float = 0.0
    false_alarm: float = 0.0
    speaker_count: int = 0
    speaker_error: float = 0.0

    der: float | None = field(init=False)
    jer: float | None = field(init=False)

    def __post_init__(self) -> None:
        errors = self.confusion + self.missed + self.false_alarm
        object.__setattr__(self, "der", errors / self.total if self.total else None)
        jer = self.speaker_error / self.speaker_count if self.speaker_count else None
        object.__setattr__(self, "jer", jer)

    @classmethod
    def of(cls, scores: Iterable[DerScore]) -> DerTotals:
        scores = list(scores)
        return cls(
            total=sum(s.total for s in scores),
            confusion=sum(s.confusion for s in scores),
            missed=sum(s.missed for s in scores),
            false_alarm=sum(s.false_alarm for s in scores),
            speaker_count=sum(s.speaker_count for s in scores),
            speaker_error=sum(s.speaker_error for s in scores),
        )
