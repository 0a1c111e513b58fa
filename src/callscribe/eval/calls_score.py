"""A built call's reference (:class:`CallRef`) and how a callscribe transcript is scored against it.

Per call: the error rate (CER for Mandarin, WER for English, from :func:`callscribe.eval.score.score_text` with
the default normaliser) with deletions and insertions per reference token, and then what whole-text rates hide:

- *uncovered speech*: seconds of each turn's speech that no utterance overlaps (on a stereo call only utterances
  on the turn's channel count, so the other channel transcribing the bleed does not hide a lost turn);
- *turn loss*: each turn's text aligned (jiwer) with the text of the utterances overlapping the turn in time,
  give or take ``TEXT_SLACK_S`` (same channel on stereo); loss = reference tokens not matched / reference
  tokens, i.e. (S + D) / N: when a turn's speech is dropped but a neighbour's text overlaps it in time, the
  aligner pairs the two as substitutions, so deletions alone would miss the loss. A misheard character counts
  too, so a turn is *lost* above ``LOST_SHARE``, and ``lost_vs_alone`` counts turns whose loss exceeds the same
  pieces heard alone by more than ``LOST_SHARE``;
- *role accuracy*: of the turns some utterance overlaps, the share whose utterances (weighted by overlap
  seconds) carry the turn's party as ``Utterance.role``;
- *DER*: pyannote's, collar 0, overlap scored (:func:`callscribe.eval.der.der_annotations`), on the turns'
  speech stretches labelled by party.

The *alone* baseline scores the same engine's text for each piece heard on its own, summed over every piece a
call plays (a piece said twice counts twice), so a call line can be set next to "each utterance alone".
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from callscribe.eval.hotwords import HotwordScore, count_occurrences, hotword_recall
from callscribe.eval.normalize import Normalizer
from callscribe.eval.score import ErrorCounts, TextScore, score_text, tokenize
from callscribe.model import Transcript, Utterance, join_texts

LOST_SHARE = 0.15
# A turn's text is looked for in utterances within this many seconds of it: segment timestamps inside a long
# clip drift, and a neighbour's text picked up this way shows as insertions, never as loss.
TEXT_SLACK_S = 0.5


@dataclass(frozen=True)
class RefTurn:
    """One turn of a built call: ``speech`` are the stretches with speech (call time, seconds)."""

    index: int
    party: str
    channel: int
    start: float
    end: float
    text: str
    lang: str
    pieces: tuple[str, ...]
    speech: tuple[tuple[float, float], ...]

    @property
    def speech_s(self) -> float:
        return sum(e - s for s, e in self.speech)


@dataclass(frozen=True)
class CallRef:
    """What a built call contains: turns with party, channel, times and text, plus how it was made.

    ``sources`` maps each piece key to its source file key, reference quality and text.
    """

    id: str
    audio: str
    lang: str
    form: str
    sample_rate: int
    channels: int
    duration: float
    seed: int
    turns: tuple[RefTurn, ...]
    voices: dict[str, list[str]]
    bleed_db: float | None = None
    bleed_delay_ms: float | None = None
    noise_dbfs: float | None = None
    note: str = ""
    sources: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return join_texts(t.text for t in sorted(self.turns, key=lambda t: (t.start, t.index)))

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), ensure_ascii=False))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CallRef:
        d = dict(d)
        d["turns"] = tuple(
            RefTurn(**{**t, "pieces": tuple(t["pieces"]), "speech": tuple(tuple(s) for s in t["speech"])})
            for t in d["turns"]
        )
        return cls(**d)

    @classmethod
    def load(cls, path: str | Path) -> CallRef:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


@dataclass(frozen=True)
class TurnScore:
    index: int
    party: str
    start: float
    end: float
    ref_tokens: int
    deletions: int
    loss: float | None  # (substitutions + deletions) / ref_tokens; None for a turn with no scorable tokens
    alone_loss: float | None  # the same for the turn's pieces heard alone (None: not given)
    speech_s: float
    uncovered_s: float
    role: str | None  # the role its utterances carry (None: no utterance, or none with a role)
    hyp_text: str

    @property
    def lost(self) -> bool:
        return self.loss is not None and self.loss > LOST_SHARE

    @property
    def lost_vs_alone(self) -> bool:
        return self.loss is not None and self.loss - (self.alone_loss or 0.0) > LOST_SHARE


@dataclass(frozen=True)
class CallScore:
    call_id: str
    metric: str
    text: ErrorCounts
    speech_s: float
    uncovered_s: float
    turns: tuple[TurnScore, ...]
    role_accuracy: float | None
    roles_scored: int
    der: float | None
    der_detail: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float | None:
        return self.text.rate

    @property
    def deletion_rate(self) -> float | None:
        return self.text.deletions / self.text.ref_tokens if self.text.ref_tokens else None

    @property
    def insertion_rate(self) -> float | None:
        return self.text.insertions / self.text.ref_tokens if self.text.ref_tokens else None

    @property
    def turns_lost(self) -> int:
        return sum(t.lost for t in self.turns)

    @property
    def turns_lost_vs_alone(self) -> int:
        return sum(t.lost_vs_alone for t in self.turns)

    @property
    def worst_turn_loss(self) -> float | None:
        losses = [t.loss for t in self.turns if t.loss is not None]
        return max(losses) if losses else None

    def to_dict(self) -> dict[str, Any]:
        d = json.loads(json.dumps(asdict(self), ensure_ascii=False))
        d.update(
            rate=self.rate,
            deletion_rate=self.deletion_rate,
            insertion_rate=self.insertion_rate,
            turns_lost=self.turns_lost,
            turns_lost_vs_alone=self.turns_lost_vs_alone,
            worst_turn_loss=self.worst_turn_loss,
        )
        return d


def call_metric(ref: CallRef) -> str:
    """``cer``, ``wer`` or ``mer``: chosen once from the whole reference, then used for every turn and piece."""
    return score_text(ref.text, "", ref.lang).metric


def uncovered_seconds(speech: Iterable[tuple[float, float]], covered: Iterable[tuple[float, float]]) -> float:
    """Seconds of ``speech`` outside every ``covered`` span."""
    cover = _merge(covered)
    total = 0.0
    for s, e in _merge(speech):
        inside = sum(max(0.0, min(e, ce) - max(s, cs)) for cs, ce in cover)
        total += (e - s) - inside
    return max(0.0, total)


def _merge(spans: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        elif e > s:
            out.append((s, e))
    return out


def heard(turn: RefTurn, utterances: Sequence[Utterance], stereo: bool, slack: float = 0.0) -> list[Utterance]:
    """The utterances overlapping the turn widened by ``slack`` s (and on its channel, on a stereo call)."""
    lo, hi = turn.start - slack, turn.end + slack
    return [u for u in utterances if u.start < hi and lo < u.end and (not stereo or u.channel == turn.channel)]


def majority_role(turn: RefTurn, utterances: Sequence[Utterance]) -> str | None:
    weight: dict[str, float] = {}
    for u in utterances:
        if u.role:
            overlap = max(0.0, min(turn.end, u.end) - max(turn.start, u.start))
            weight[u.role] = weight.get(u.role, 0.0) + overlap
    return max(weight, key=lambda r: weight[r]) if weight else None


def _missing(score: TextScore) -> float | None:
    return (score.substitutions + score.deletions) / score.ref_tokens if score.ref_tokens else None


def score_turn(
    turn: RefTurn, utterances: Sequence[Utterance], metric: str, stereo: bool, alone_text: str | None = None
) -> TurnScore:
    """One turn against the utterances that overlap it; ``alone_text``: its pieces' texts heard alone."""
    mine = heard(turn, utterances, stereo)
    hyp_text = join_texts(u.text for u in heard(turn, utterances, stereo, TEXT_SLACK_S))
    s = score_text(turn.text, hyp_text, turn.lang, metric=metric)
    alone = None if alone_text is None else score_text(turn.text, alone_text, turn.lang, metric=metric)
    return TurnScore(
        index=turn.index,
        party=turn.party,
        start=turn.start,
        end=turn.end,
        ref_tokens=s.ref_tokens,
        deletions=s.deletions,
        loss=_missing(s),
        alone_loss=None if alone is None else _missing(alone),
        speech_s=round(turn.speech_s, 3),
        uncovered_s=round(uncovered_seconds(turn.speech, [(u.start, u.end) for u in mine]), 3),
        role=majority_role(turn, mine),
        hyp_text=hyp_text,
    )


def reference_annotation(ref: CallRef) -> Any:
    """The turns' speech stretches as a pyannote Annotation labelled ``agent`` / ``customer``."""
    from pyannote.core import Annotation, Segment

    annotation = Annotation(uri=ref.id)
    for turn in ref.turns:
        for i, (s, e) in enumerate(turn.speech):
            annotation[Segment(s, e), f"{turn.index}.{i}"] = turn.party
    return annotation.support()


def score_call(
    ref: CallRef, transcript: Transcript, *, alone: Mapping[str, str] | None = None, with_der: bool = True
) -> CallScore:
    """Every call-level metric of one transcript against its built call.

    ``alone`` (piece key -> the engine's text for that piece heard alone) adds each turn's ``alone_loss``.
    """
    utterances = sorted(transcript.utterances, key=lambda u: (u.start, u.channel))
    stereo = ref.form == "stereo" and transcript.call.channels > 1
    metric = call_metric(ref)
    total = score_text(ref.text, join_texts(u.text for u in utterances), ref.lang, metric=metric)
    turns = tuple(score_turn(t, utterances, metric, stereo, _alone_text(t, alone)) for t in ref.turns)
    with_role = [t for t in turns if t.role is not None]
    role_acc = sum(t.role == t.party for t in with_role) / len(with_role) if with_role else None
    der_value: float | None = None
    detail: dict[str, float] = {}
    if with_der:
        from callscribe.eval.der import der_annotations, transcript_annotation

        d = der_annotations(reference_annotation(ref), transcript_annotation(utterances, uri=ref.id))
        der_value = d.der
        detail = {"missed": d.missed, "false_alarm": d.false_alarm, "confusion": d.confusion, "total": d.total}
    return CallScore(
        call_id=ref.id,
        metric=metric,
        text=ErrorCounts(total.hits, total.substitutions, total.deletions, total.insertions),
        speech_s=round(sum(t.speech_s for t in turns), 3),
        uncovered_s=round(sum(t.uncovered_s for t in turns), 3),
        turns=turns,
        role_accuracy=role_acc,
        roles_scored=len(with_role),
        der=der_value,
        der_detail={k: round(v, 3) for k, v in detail.items()},
    )


def _alone_text(turn: RefTurn, alone: Mapping[str, str] | None) -> str | None:
    if alone is None or any(k not in alone for k in turn.pieces):
        return None
    return join_texts(alone[k] for k in turn.pieces)


def piece_texts(ref: CallRef) -> list[tuple[str, str]]:
    """``(piece key, reference text)`` for every piece the call plays, repeats included, in turn order."""
    return [(key, ref.sources[key]["text"]) for turn in ref.turns for key in turn.pieces]


def score_alone(ref: CallRef, alone: Mapping[str, str]) -> ErrorCounts | None:
    """The engine's text for each piece heard alone (``alone[piece key]``), scored like the call and summed;
    ``None`` when a piece has no alone text."""
    metric = call_metric(ref)
    scores: list[TextScore] = []
    for key, text in piece_texts(ref):
        if key not in alone:
            return None
        scores.append(score_text(text, alone[key], ref.lang, metric=metric))
    return ErrorCounts.total(scores)


@dataclass(frozen=True)
class GlossaryCheck:
    """Spoken glossary terms recognised (recall), and unspoken ones that appeared in the text anyway."""

    spoken: HotwordScore
    invented: tuple[str, ...]


def check_glossary(spoken: Sequence[str], unspoken: Sequence[str], ref_text: str, hyp_text: str) -> GlossaryCheck:
    normalizer = Normalizer()
    hyp_tokens = tokenize(normalizer(hyp_text), "mer")
    invented = tuple(t for t in unspoken if count_occurrences(hyp_tokens, tokenize(normalizer(t), "mer")))
    return GlossaryCheck(hotword_recall(spoken, ref_text, hyp_text), invented)
