"""Live quality checks on each final: the scorecard's phrase rules, personal data spoken, the customer's mood.

From the call's scorecard (the server's ``--scorecard``, else the built-in one for the stream's language) the phrase
and regex checks that can be judged one utterance at a time become live rules:

- a ``flag`` rule's phrases ("lawyer", "投诉") alert when said (severity ``high``);
- a scoring rule's forbidden phrases (``mode: none``, or under ``not``) alert when said (severity ``medium``).

A rule's role and its ``first_s`` / ``first_turns`` window apply; checks that need the whole call (``last_s``,
``follow``, silences, metrics) are left to the QA run when the call ends. Personal data in a final alerts ``pii``
(severity ``low``; the evidence is masked when redaction is on). The customer's sentiment (the scorecard's method)
alerts ``customer_negative`` (``medium``) when the mean of their last ``SENTIMENT_SPAN`` finals turns negative, once
until it recovers. Role-based checks need roles: on a mono stream without roles only ``any``-role rules run.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from callscribe.model import Utterance
from callscribe.qa import conditions as c
from callscribe.qa.context import Scope
from callscribe.qa.fuzzy import find
from callscribe.qa.rules import Scorecard, load_scorecard
from callscribe.qa.sentiment import get_method, label, language_of
from callscribe.text.pii import find_pii

log = logging.getLogger("callscribe.streaming")

SENTIMENT_SPAN = 2
MAX_EVIDENCE_CHARS = 200


@dataclass(frozen=True)
class LiveRule:
    id: str
    description: str
    severity: str
    scope: Scope
    phrases: tuple[str, ...] = ()
    fuzzy: bool = False
    threshold: float = 1.0
    pattern: re.Pattern[str] | None = None

    def matches(self, text: str) -> list[str]:
        """The stretches of ``text`` that trip the rule."""
        if self.pattern is not None:
            return [m.group() for m in self.pattern.finditer(text) if m.end() > m.start()]
        return [text[m.begin : m.end] for p in self.phrases for m in find(text, p, fuzzy=self.fuzzy,
                                                                          threshold=self.threshold)]  # fmt: skip


def _leaves(cond: Any, negated: bool) -> Iterator[tuple[Any, bool]]:
    """Phrase and regex conditions inside ``cond`` with whether an odd number of ``not`` wraps them."""
    if isinstance(cond, c.Not):
        yield from _leaves(cond.inner, not negated)
    elif isinstance(cond, c.AllOf | c.AnyOf):
        for item in cond.items:
            yield from _leaves(item, negated)
    elif isinstance(cond, c.Phrases | c.Regex):
        yield cond, negated


def live_rules(card: Scorecard) -> list[LiveRule]:
    rules = []
    for rule in card.rules:
        for leaf, negated in _leaves(rule.check, False):
            alert_when_said = (rule.kind == "flag" and not negated) or (rule.kind == "score" and negated)
            scope = leaf.scope.under(rule.scope)
            if not alert_when_said or scope.last_s is not None or scope.last_turns is not None:
                continue
            severity = "high" if rule.kind == "flag" else "medium"
            if isinstance(leaf, c.Regex):
                rules.append(LiveRule(rule.id, rule.description, severity, scope, pattern=leaf.pattern))
            else:
                rules.append(LiveRule(rule.id, rule.description, severity, scope, leaf.phrases, leaf.fuzzy,
                                      leaf.threshold))  # fmt: skip
    return rules


@dataclass(frozen=True)
class Alert:
    rule: str
    severity: str
    evidence: str
    time: float
    channel: int
    role: str | None
    turn: int
    description: str = ""


class LiveQA:
    """The live checks of one stream; :meth:`check` takes each final (unmasked) and returns its alerts."""

    def __init__(self, scorecard: str | None, language: str | None) -> None:
        self.card: Scorecard | None = None
        try:
            self.card = load_scorecard(scorecard, "zh" if (language or "").startswith(("zh", "yue")) else "en")
        except Exception as exc:  # live checks are a help, never a reason to drop the stream
            log.warning("live QA off: scorecard %s: %s", scorecard or "(default)", " ".join(str(exc).split()))
        self.rules = live_rules(self.card) if self.card is not None else []
        self._scorer = get_method(self.card.sentiment_method if self.card else "lexicon")
        self._turns: dict[str | None, int] = {}
        self._customer: list[float] = []
        self._negative = False
        self._language = language

    def check(self, u: Utterance, turn: int, masked_text: str) -> list[Alert]:
        """Alerts for one final: ``u`` is what was heard, ``masked_text`` what events may show of it."""
        alerts: list[Alert] = []
        if not u.text.strip():
            return alerts
        role_turn = self._turns[u.role] = self._turns.get(u.role, 0) + 1
        call_turn = self._turns[None] = self._turns.get(None, 0) + 1
        evidence = masked_text[:MAX_EVIDENCE_CHARS]
        for rule in self.rules:
            s = rule.scope
            if s.role is not None and u.role != s.role:
                continue
            if s.first_s is not None and u.start > s.first_s:
                continue
            if s.first_turns is not None and (role_turn if s.role else call_turn) > s.first_turns:
                continue
            if rule.matches(u.text):
                alerts.append(Alert(rule.id, rule.severity, evidence, u.start, u.channel, u.role, turn,
                                    rule.description))  # fmt: skip
        kinds = sorted({m.kind for m in find_pii(u.text, u.language or self._language)})
        if kinds:
            alerts.append(Alert("pii", "low", evidence, u.start, u.channel, u.role, turn,
                                f"personal data spoken: {', '.join(kinds)}"))  # fmt: skip
        if u.role == "customer":
            self._customer = [*self._customer[-(SENTIMENT_SPAN - 1) :], self._score(u)]
            mean = sum(self._customer) / len(self._customer)
            negative = label(mean) == "negative"
            if negative and not self._negative:
                alerts.append(Alert("customer_negative", "medium", evidence, u.start, u.channel, u.role, turn,
                                    f"the customer sounds negative (sentiment {mean:.2f})"))  # fmt: skip
            self._negative = negative
        return alerts

    def warm(self) -> None:
        """Load what the first final would otherwise wait for (the segmenter, the lexicons)."""
        for text, language in (("您好，请问有什么可以帮您？", "zh"), ("hello, how can I help?", "en")):
            self._scorer.score(text, language)

    def _score(self, u: Utterance) -> float:
        try:
            return float(self._scorer.score(u.text, language_of(u, self._language)))
        except Exception:  # a scorer failure must not end the stream
            log.debug("sentiment scoring failed", exc_info=True)
            return 0.0
