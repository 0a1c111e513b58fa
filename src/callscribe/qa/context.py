"""What conditions see of a call: its utterances by scope, metrics, sentiment, and evidence with confidence."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

from callscribe.model import Transcript, Utterance, Word
from callscribe.qa.metrics import CallMetrics, Gap, silences, turns
from callscribe.qa.sentiment import SentimentReport

WORD_PROBABILITY_MIN = 0.5  # a deciding word below this is low-confidence
UTTERANCE_CONFIDENCE_MIN = 0.5  # a deciding utterance below this is low-confidence
PARTY_ROLES = ("agent", "customer")
UNSURE_MARK = "unsure:"  # how the speakers stage starts the evidence line of an unsure role decision


@dataclass(frozen=True)
class Scope:
    """Which utterances a text condition reads: a role (``None`` = anyone) and at most one time window.

    ``first_s``/``last_s``: utterances starting within the first N seconds of the call / ending within its last
    N seconds. ``first_turns``/``last_turns``: utterances in the first/last N turns of that role (of the call
    when the role is ``None``).
    """

    role: str | None = None
    first_s: float | None = None
    last_s: float | None = None
    first_turns: int | None = None
    last_turns: int | None = None

    def under(self, outer: Scope) -> Scope:
        """This scope with anything it leaves open taken from ``outer``."""
        fields = [f.name for f in dataclasses.fields(self)]
        return Scope(**{k: getattr(self, k) if getattr(self, k) is not None else getattr(outer, k) for k in fields})


@dataclass(frozen=True)
class Evidence:
    """A place a condition points at; ``min_probability`` is the lowest word probability inside it."""

    utterance: int | None
    start: float
    end: float
    text: str
    low_confidence: bool = False
    min_probability: float | None = None
    note: str = ""
    utterance_confidence: float | None = None


class Context:
    """One call, ready to be checked against rules."""

    def __init__(
        self,
        transcript: Transcript,
        metrics: CallMetrics,
        sentiment: SentimentReport,
        word_probability_min: float = WORD_PROBABILITY_MIN,
        utterance_confidence_min: float = UTTERANCE_CONFIDENCE_MIN,
    ) -> None:
        self.transcript = transcript
        self.metrics = metrics
        self.sentiment = sentiment
        self.word_probability_min = word_probability_min
        self.utterance_confidence_min = utterance_confidence_min
        self._metric_tree = dataclasses.asdict(metrics)
        self._turns = turns(transcript)

    @functools.cache  # noqa: B019 - one Context per call, dropped with it
    def select(self, scope: Scope) -> tuple[int, ...]:
        utts = self.transcript.utterances
        idx = [i for i, u in enumerate(utts) if scope.role is None or u.role == scope.role]
        if scope.first_s is not None:
            idx = [i for i in idx if utts[i].start < scope.first_s]
        if scope.last_s is not None:
            idx = [i for i in idx if utts[i].end > self.metrics.duration - scope.last_s]
        if scope.first_turns is not None or scope.last_turns is not None:
            mine = [t for t in self._turns if scope.role is None or t.party == scope.role]
            if scope.first_turns is not None:
                mine = mine[: scope.first_turns]
            if scope.last_turns is not None:
                mine = mine[-scope.last_turns :] if scope.last_turns > 0 else []
            keep = {i for t in mine for i in t.utterances}
            idx = [i for i in idx if i in keep]
        return tuple(sorted(idx, key=lambda i: (utts[i].start, i)))

    def silences(self, over_s: float) -> list[Gap]:
        return silences(self.transcript, over_s)

    def metric(self, path: str) -> float | None:
        """A metric by dotted path (``longest_gap``, ``interruptions_by.agent``); ``agent.x`` = ``parties.agent.x``."""
        node: Any = self._metric_tree
        parts = path.split(".")
        if parts[0] not in node and parts[0] in node["parties"]:
            node = node["parties"]
        for k, part in enumerate(parts):
            if not isinstance(node, dict):
                return None
            if part not in node:
                # a party that never interrupted has a count of 0, not "unknown"
                return 0.0 if k == len(parts) - 1 and parts[0] == "interruptions_by" else None
            node = node[part]
        return float(node) if isinstance(node, int | float) and not isinstance(node, bool) else None

    def _low(self, u: Utterance, min_p: float | None) -> bool:
        return (min_p is not None and min_p < self.word_probability_min) or (
            u.confidence is not None and u.confidence < self.utterance_confidence_min
        )

    def evidence(self, index: int, begin: int, end: int, note: str = "") -> Evidence:
        """Evidence for characters ``begin:end`` of utterance ``index``, timed by its words when it has them."""
        u = self.transcript.utterances[index]
        words = _word_spans(u)
        start, stop, min_p = u.start, u.end, None
        if words:
            if all(span is not None for _, span in words):
                inside = [w for w, span in words if span is not None and span[0] < end and begin < span[1]]
            else:  # words do not spell the text out: pick them by the matched share of the utterance's time
                n = max(1, len(u.text))
                t0, t1 = u.start + u.duration * begin / n, u.start + u.duration * end / n
                inside = [w for w, _ in words if w.start < t1 and t0 < w.end]
            if inside:
                start, stop = inside[0].start, inside[-1].end
                probs = [w.probability for w in inside if w.probability is not None]
                min_p = min(probs) if probs else None
        return Evidence(index, start, stop, u.text[begin:end], self._low(u, min_p), min_p, note, u.confidence)

    def whole(self, index: int, note: str = "") -> Evidence:
        return self.evidence(index, 0, len(self.transcript.utterances[index].text), note)


def role_doubt(t: Transcript, min_confidence: float) -> str | None:
    """Why the call's agent/customer roles cannot be trusted for grading; ``None`` when they can.

    A speaker with an agent/customer role is unsure when its ``role_confidence`` is below ``min_confidence`` or
    the speakers stage marked the decision unsure. Roles given without a confidence (hand-made transcripts) are
    trusted.
    """
    if t.utterances and not any(u.role in PARTY_ROLES for u in t.utterances):
        return "no agent/customer roles in the transcript"
    shaky = [
        s
        for s in t.speakers
        if s.role in PARTY_ROLES
        and (
            (s.role_confidence is not None and s.role_confidence < min_confidence)
            or any(e.startswith(UNSURE_MARK) for e in s.evidence)
        )
    ]
    if not shaky:
        return None
    who = ", ".join(
        f"{s.id} {s.role}" + (f" {s.role_confidence:.2f}" if s.role_confidence is not None else "") for s in shaky
    )
    marks = [e.removeprefix(UNSURE_MARK).strip() for s in shaky for e in s.evidence if e.startswith(UNSURE_MARK)]
    why = marks[0] if marks else ""
    return f"roles unsure ({who}): " + (why or f"confidence below {min_confidence:.2f}")


def _word_spans(u: Utterance) -> list[tuple[Word, tuple[int, int] | None]]:
    """Each word with its character span in the utterance text (``None`` where it cannot be found)."""
    lowered = u.text.lower()
    cursor = 0
    out: list[tuple[Word, tuple[int, int] | None]] = []
    for w in u.words:
        piece = w.text.strip().lower()
        pos = lowered.find(piece, cursor) if piece else -1
        if pos < 0:
            out.append((w, None))
            continue
        out.append((w, (pos, pos + len(piece))))
        cursor = pos + len(piece)
    return out
