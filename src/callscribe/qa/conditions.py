"""Scorecard conditions: what a rule checks in a call, each returning an :class:`Outcome` with its evidence.

A condition is true when the thing it describes is there (phrases said, a silence found, the customer ending
negative); ``not`` turns a detector into a requirement ("no forbidden phrase"). Text conditions look at the
utterances in their :class:`Scope` (a role and a time window), inherited from the rule unless they set their own.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from callscribe.qa.context import Context, Evidence, Scope
from callscribe.qa.fuzzy import DEFAULT_THRESHOLD, find

OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


@dataclass(frozen=True)
class Outcome:
    """``ok``: the condition holds; ``applicable``: False when it had nothing to judge (no trigger)."""

    ok: bool
    hits: tuple[Evidence, ...] = ()
    applicable: bool = True
    detail: str = ""


class Condition(Protocol):
    def evaluate(self, ctx: Context, scope: Scope) -> Outcome: ...


def _sorted(hits: Sequence[Evidence]) -> tuple[Evidence, ...]:
    return tuple(sorted(hits, key=lambda h: (h.start, h.utterance if h.utterance is not None else -1)))


@dataclass(frozen=True)
class Phrases:
    """Phrases said: ``any`` of them, ``all`` of them, or ``at_least`` ``count`` different ones."""

    phrases: tuple[str, ...]
    mode: str = "any"
    count: int = 1
    fuzzy: bool = False
    threshold: float = DEFAULT_THRESHOLD
    scope: Scope = field(default_factory=Scope)

    def evaluate(self, ctx: Context, scope: Scope) -> Outcome:
        found: dict[str, list[Evidence]] = {}
        for i in ctx.select(self.scope.under(scope)):
            text = ctx.transcript.utterances[i].text
            matches = [m for p in self.phrases for m in find(text, p, fuzzy=self.fuzzy, threshold=self.threshold)]
            # exact matches all count; a near match counts only where no exact or closer one already explains the text
            kept = [m for m in matches if m.similarity >= 1.0]
            for m in sorted((m for m in matches if m.similarity < 1.0), key=lambda m: -m.similarity):
                if all(m.end <= k.begin or k.end <= m.begin for k in kept):
                    kept.append(m)
            for m in kept:
                note = "" if m.similarity >= 1.0 else f"~{m.phrase} ({m.similarity:.2f})"
                found.setdefault(m.phrase, []).append(ctx.evidence(i, m.begin, m.end, note))
        need = {"any": 1, "all": len(self.phrases), "at_least": self.count}[self.mode]
        hits = _sorted([h for hs in found.values() for h in hs])
        return Outcome(len(found) >= need, hits, detail=f"{len(found)}/{len(self.phrases)} phrases found")


@dataclass(frozen=True)
class Regex:
    pattern: re.Pattern[str]
    scope: Scope = field(default_factory=Scope)

    def evaluate(self, ctx: Context, scope: Scope) -> Outcome:
        hits = []
        for i in ctx.select(self.scope.under(scope)):
            for m in self.pattern.finditer(ctx.transcript.utterances[i].text):
                if m.end() > m.start():
                    hits.append(ctx.evidence(i, m.start(), m.end()))
        return Outcome(bool(hits), _sorted(hits), detail=f"/{self.pattern.pattern}/ matched {len(hits)}x")


@dataclass(frozen=True)
class Not:
    inner: Condition

    def evaluate(self, ctx: Context, scope: Scope) -> Outcome:
        out = self.inner.evaluate(ctx, scope)
        return replace(out, ok=not out.ok, detail=f"not ({out.detail})")


def _combine(
    items: tuple[Condition, ...], ctx: Context, scope: Scope, verdict: Callable[[Iterable[bool]], bool]
) -> Outcome:
    """``all``/``any`` over the applicable parts; the hits that decided the verdict are its evidence."""
    outs = [c.evaluate(ctx, scope) for c in items]
    live = [o for o in outs if o.applicable]
    ok = verdict(o.ok for o in live)
    deciding = [h for o in live if o.ok == ok for h in o.hits]
    return Outcome(ok, _sorted(deciding), bool(live), "; ".join(o.detail for o in outs))


@dataclass(frozen=True)
class AllOf:
    items: tuple[Condition, ...]

    def evaluate(self, ctx: Context, scope: Scope) -> Outcome:
        return _combine(self.items, ctx, scope, all)


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Condition, ...]

    def evaluate(self, ctx: Context, scope: Scope) -> Outcome:
        return _combine(self.items, ctx, scope, any)


@dataclass(frozen=True)
class Metric:
    """A call metric against a threshold, e.g. ``interruptions_by.agent > 2`` or ``agent.talk_share < 0.8``."""

    path: str
    op: str
    value: float

    def evaluate(self, ctx: Context, scope: Scope) -> Outcome:
        got = ctx.metric(self.path)
        if got is None:
            return Outcome(False, applicable=False, detail=f"{self.path} not available")
        ok = OPS[self.op](got, self.value)
        hit = Evidence(None, 0.0, ctx.metrics.duration, f"{self.path} = {got:g}")
        return Outcome(ok, (hit,), detail=f"{self.path} = {got:g} ({self.op} {self.value:g} is {ok})")


@dataclass(frozen=True)
class Silence:
    """A silence between utterances longer than ``over_s`` (detector)."""

    over_s: float

    def evaluate(self, ctx: Context, scope: Scope) -> Outcome:
        gaps = ctx.silences(self.over_s)
        hits = [Evidence(g.next, g.start, g.end, f"silence {g.duration:.1f} s") for g in gaps]
        return Outcome(bool(hits), _sorted(hits), detail=f"{len(hits)} silence(s) over {self.over_s:g} s")


@dataclass(frozen=True)
class Interruptions:
    """At least ``at_least`` interruptions by ``by`` (a party; ``None`` = anyone)."""

    by: str | None
    at_least: int = 1

    def evaluate(self, ctx: Context, scope: Scope) -> Outcome:
        found = [i for i in ctx.metrics.interruptions if self.by is None or i.interrupter == self.by]
        hits = [
            ctx.evidence(i.utterance, 0, len(ctx.transcript.utterances[i.utterance].text), "interrupts") for i in found
        ]
        ok = len(found) >= self.at_least
        return Outcome(ok, _sorted(hits), detail=f"{len(found)} interruption(s) by {self.by or 'anyone'}")


@dataclass(frozen=True)
class Sentiment:
    """A party's sentiment ``at`` the start, end, over the whole call, or in ``any`` single utterance."""

    party: str = "customer"
    at: str = "end"
    label: str | None = None
    below: float | None = None
    above: float | None = None

    def _holds(self, score: float) -> bool:
        from callscribe.qa.sentiment import label

        return (
            (self.label is None or label(score) == self.label)
            and (self.below is None or score < self.below)
            and (self.above is None or score > self.above)
        )

    def evaluate(self, ctx: Context, scope: Scope) -> Outcome:
        from callscribe.qa.sentiment import TRAJECTORY_SPAN

        rows = [r for r in ctx.sentiment.utterances if r.party == self.party]
        if not rows:
            return Outcome(False, applicable=False, detail=f"no {self.party} utterances")
        span = max(1, min(TRAJECTORY_SPAN, len(rows) // 3))
        if self.at == "any":
            picked = [r for r in rows if self._holds(r.score)]
            hits = [ctx.whole(r.utterance, f"sentiment {r.score:+.2f}") for r in picked]
            return Outcome(bool(picked), _sorted(hits), detail=f"{len(picked)} {self.party} utterance(s)")
        picked = {"start": rows[:span], "end": rows[-span:], "overall": rows}[self.at]
        score = sum(r.score for r in picked) / len(picked)
        hits = [ctx.whole(r.utterance, f"sentiment {r.score:+.2f}") for r in picked]
        return Outcome(self._holds(score), _sorted(hits), detail=f"{self.party} {self.at} sentiment {score:+.2f}")


@dataclass(frozen=True)
class Follow:
    """Each ``trigger`` hit must be answered by a ``response`` hit starting within ``within_s`` of it.

    A trigger counts as answered if a response starts between the trigger's start and ``within_s`` after its
    end, or if it comes within ``within_s`` of an earlier answered trigger's response (a repeated complaint after
    an apology). No trigger: not applicable.
    """

    trigger: Condition
    response: Condition
    within_s: float = 60.0

    def evaluate(self, ctx: Context, scope: Scope) -> Outcome:
        triggers = self.trigger.evaluate(ctx, scope)
        if not triggers.ok or not triggers.hits:
            return Outcome(True, applicable=False, detail="no trigger")
        responses = self.response.evaluate(ctx, scope).hits
        last_answer: float | None = None
        missed: list[Evidence] = []
        answered: list[Evidence] = []
        for trig in triggers.hits:
            answer = next((r for r in responses if trig.start <= r.start <= trig.end + self.within_s), None)
            if answer is not None:
                answered.extend((trig, answer))
                last_answer = answer.start
            elif last_answer is None or trig.start - last_answer > self.within_s:
                missed.append(trig)
        ok = not missed
        detail = f"{len(triggers.hits) - len(missed)}/{len(triggers.hits)} trigger(s) answered"
        return Outcome(ok, _sorted(answered if ok else missed), detail=detail)
