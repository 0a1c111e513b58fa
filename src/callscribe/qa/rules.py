"""Scorecards: YAML rules checked against a call, scored, with the evidence and reasons to review.

See docs/qa.md for the file format. A rule either scores (``kind: score``, earns its points when its check
holds) or flags (``kind: flag``, earns nothing and marks the call for review when its check holds). A rule whose
``when`` is false, or whose check has nothing to judge (a ``follow`` without a trigger), is not applicable: it
passes and is left out of the score and the maximum. A rule that relies on who is the agent or the customer is
not graded when the call's roles are unsure (``graded=False``, left out of the score and the maximum, the call
sent to review): grading the customer's words as the agent's would pass or fail the wrong person.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from callscribe.model import RuleHit, RuleResult
from callscribe.qa import conditions as c
from callscribe.qa import fuzzy
from callscribe.qa.context import (
    PARTY_ROLES,
    UTTERANCE_CONFIDENCE_MIN,
    WORD_PROBABILITY_MIN,
    Context,
    Evidence,
    Scope,
    role_doubt,
)

log = logging.getLogger("callscribe")

BUILTIN = {"zh": "zh_default", "en": "en_default"}
MAX_HITS = 20  # evidence kept per rule in the result (all of it is used to decide)
KINDS = ("score", "flag")
ROLES = ("agent", "customer", "any")
_WINDOW_KEYS = ("first_s", "last_s", "first_turns", "last_turns")
_TEXT_OPTS = {"mode", "count", "match", "threshold", "role", "window"}


class ScorecardError(ValueError):
    """A scorecard file that cannot be used; the message names the file, the rule and the cause."""


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    check: c.Condition
    points: float = 0.0
    kind: str = "score"
    scope: Scope = field(default_factory=Scope)
    when: c.Condition | None = None


@dataclass(frozen=True)
class Scorecard:
    name: str
    rules: tuple[Rule, ...]
    language: str | None = None
    word_probability_min: float = WORD_PROBABILITY_MIN
    utterance_confidence_min: float = UTTERANCE_CONFIDENCE_MIN
    sentiment_method: str = "lexicon"
    source: str = ""
    role_confidence_min: float | None = None  # None: the speakers stage's own threshold (roles.yaml unsure_below)


@dataclass(frozen=True)
class Verdict:
    """A scorecard applied to one call."""

    rules: tuple[RuleResult, ...]
    score: float
    max_score: float
    review_reasons: tuple[str, ...]


def _need(cond: bool, where: str, msg: str) -> None:
    if not cond:
        raise ScorecardError(f"{where}: {msg}")


def _scope(d: dict[str, Any], where: str) -> Scope:
    role = d.get("role")
    _need(role is None or role in ROLES, where, f"role must be one of {', '.join(ROLES)}, not {role!r}")
    window = d.get("window") or {}
    _need(isinstance(window, dict), where, "window must be a mapping like {first_s: 15}")
    bad = sorted(set(window) - set(_WINDOW_KEYS))
    _need(not bad, where, f"unknown window key(s) {bad}; known: {', '.join(_WINDOW_KEYS)}")
    _need(len(window) <= 1, where, "a window has one of first_s, last_s, first_turns, last_turns")
    for k, v in window.items():
        _need(isinstance(v, int | float) and v >= 0, where, f"window {k} must be a number >= 0")
    return Scope(role=None if role in (None, "any") else role, **window)


def _keys(d: dict[str, Any], allowed: set[str], where: str) -> None:
    bad = sorted(set(d) - allowed)
    _need(not bad, where, f"unknown key(s) {bad}; allowed: {', '.join(sorted(allowed))}")


def parse_condition(d: Any, where: str) -> c.Condition:
    """Build a condition from its YAML mapping; errors name ``where`` (file and rule)."""
    _need(isinstance(d, dict) and bool(d), where, f"a condition must be a non-empty mapping, not {d!r}")
    if "phrases" in d:
        _keys(d, {"phrases", *_TEXT_OPTS}, where)
        phrases = d["phrases"]
        _need(isinstance(phrases, list) and bool(phrases), where, "phrases must be a non-empty list")
        mode, match = d.get("mode", "any"), d.get("match", "exact")
        _need(mode in ("any", "all", "at_least", "none"), where, f"mode must be any/all/at_least/none: {mode!r}")
        _need(match in ("exact", "fuzzy"), where, f"match must be exact or fuzzy, not {match!r}")
        threshold = float(d.get("threshold", fuzzy.DEFAULT_THRESHOLD))
        _need(0.0 < threshold <= 1.0, where, "threshold must be in (0, 1]")
        cond = c.Phrases(
            tuple(str(p) for p in phrases),
            "any" if mode == "none" else mode,
            int(d.get("count", 1)),
            match == "fuzzy",
            threshold,
            _scope(d, where),
        )
        return c.Not(cond) if mode == "none" else cond
    if "regex" in d:
        _keys(d, {"regex", "role", "window"}, where)
        try:
            pattern = re.compile(str(d["regex"]), re.IGNORECASE)
        except re.error as e:
            raise ScorecardError(f"{where}: bad regex {d['regex']!r}: {e}") from e
        return c.Regex(pattern, _scope(d, where))
    if "not" in d:
        _keys(d, {"not"}, where)
        return c.Not(parse_condition(d["not"], where))
    for key, kind in (("all", c.AllOf), ("any", c.AnyOf)):
        if key in d:
            _keys(d, {key}, where)
            _need(isinstance(d[key], list) and bool(d[key]), where, f"{key} must be a non-empty list of conditions")
            return kind(tuple(parse_condition(x, f"{where}: {key}[{i}]") for i, x in enumerate(d[key])))
    if "metric" in d:
        _keys(d, {"metric", "op", "value"}, where)
        _need(d.get("op") in c.OPS, where, f"op must be one of {' '.join(c.OPS)}")
        _need(isinstance(d.get("value"), int | float), where, "metric needs a numeric value")
        return c.Metric(str(d["metric"]), d["op"], float(d["value"]))
    if "silence" in d:
        _keys(d, {"silence"}, where)
        s = d["silence"]
        _need(isinstance(s, dict) and isinstance(s.get("over_s"), int | float), where, "silence: {over_s: N}")
        return c.Silence(float(s["over_s"]))
    if "interruptions" in d:
        _keys(d, {"interruptions"}, where)
        s = d["interruptions"]
        _need(isinstance(s, dict), where, "interruptions: {by: agent, at_least: N}")
        _keys(s, {"by", "at_least"}, where)
        return c.Interruptions(s.get("by"), int(s.get("at_least", 1)))
    if "sentiment" in d:
        _keys(d, {"sentiment"}, where)
        s = d["sentiment"]
        _need(isinstance(s, dict), where, "sentiment: {party: customer, at: end, is: negative}")
        _keys(s, {"party", "at", "is", "below", "above"}, where)
        _need(s.get("at", "end") in ("start", "end", "overall", "any"), where, "at: start/end/overall/any")
        lab = s.get("is")
        _need(lab in (None, "positive", "negative", "neutral"), where, "is: positive/negative/neutral")
        below, above = s.get("below"), s.get("above")
        return c.Sentiment(
            s.get("party", "customer"),
            s.get("at", "end"),
            lab,
            None if below is None else float(below),
            None if above is None else float(above),
        )
    if "follow" in d:
        _keys(d, {"follow"}, where)
        s = d["follow"]
        _need(isinstance(s, dict) and "trigger" in s and "response" in s, where, "follow: {trigger:, response:}")
        _keys(s, {"trigger", "response", "within_s"}, where)
        return c.Follow(
            parse_condition(s["trigger"], f"{where}: trigger"),
            parse_condition(s["response"], f"{where}: response"),
            float(s.get("within_s", 60.0)),
        )
    raise ScorecardError(f"{where}: unknown condition {sorted(d)}")


def parse_scorecard(data: Any, source: str) -> Scorecard:
    _need(isinstance(data, dict), source, "a scorecard is a mapping with name and rules")
    _keys(data, {"name", "description", "language", "review", "sentiment", "rules"}, source)
    rules_data = data.get("rules")
    _need(isinstance(rules_data, list) and bool(rules_data), source, "rules must be a non-empty list")
    review = data.get("review") or {}
    _keys(review, {"word_probability", "utterance_confidence", "role_confidence"}, f"{source}: review")
    role_min = review.get("role_confidence")
    _need(
        role_min is None or (isinstance(role_min, int | float) and 0.0 <= role_min <= 1.0),
        f"{source}: review",
        "role_confidence must be a number in [0, 1]",
    )
    rules: list[Rule] = []
    for n, r in enumerate(rules_data):
        _need(isinstance(r, dict) and "id" in r, f"{source}: rule #{n + 1}", "a rule is a mapping with an id")
        where = f"{source}: rule {r['id']!r}"
        _keys(r, {"id", "description", "kind", "points", "role", "window", "check", "when"}, where)
        _need(r["id"] not in {x.id for x in rules}, where, "duplicate rule id")
        kind = r.get("kind", "score")
        _need(kind in KINDS, where, f"kind must be score or flag, not {kind!r}")
        _need("check" in r, where, "a rule needs a check")
        points = r.get("points", 0 if kind == "flag" else None)
        _need(isinstance(points, int | float), where, "a scoring rule needs numeric points")
        when = r.get("when")
        rules.append(
            Rule(
                id=str(r["id"]),
                description=str(r.get("description", r["id"])),
                check=parse_condition(r["check"], where),
                points=float(points) if kind == "score" else 0.0,
                kind=kind,
                scope=_scope(r, where),
                when=None if when is None else parse_condition(when, f"{where}: when"),
            )
        )
    return Scorecard(
        name=str(data.get("name", Path(source).stem)),
        rules=tuple(rules),
        language=data.get("language"),
        word_probability_min=float(review.get("word_probability", WORD_PROBABILITY_MIN)),
        utterance_confidence_min=float(review.get("utterance_confidence", UTTERANCE_CONFIDENCE_MIN)),
        sentiment_method=str(data.get("sentiment", "lexicon")),
        source=source,
        role_confidence_min=None if role_min is None else float(role_min),
    )


@functools.lru_cache(maxsize=16)
def _builtin(name: str) -> Scorecard:
    text = resources.files("callscribe.qa").joinpath("scorecards", f"{name}.yaml").read_text(encoding="utf-8")
    return parse_scorecard(yaml.safe_load(text), f"{name}.yaml")


def load_scorecard(path: str | Path | None, language: str | None = None) -> Scorecard:
    """A scorecard from a YAML file, or a built-in by name (``zh_default``); ``None``: the default by language."""
    if path is None:
        lang = (language or "zh").lower()
        return _builtin(BUILTIN["zh" if lang.startswith(("zh", "cmn", "yue")) else "en"])
    p = Path(path)
    if not p.exists() and str(path) in BUILTIN.values():
        return _builtin(str(path))
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ScorecardError(f"{p}: no such scorecard file") from e
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ScorecardError(f"{p}: cannot read scorecard: {str(e).splitlines()[0]}") from e
    card = parse_scorecard(data, str(p))
    log.debug("scorecard %s from %s: %d rules", card.name, p, len(card.rules))
    return card


def _hit(rule: str, e: Evidence) -> RuleHit:
    return RuleHit(rule, e.utterance, round(e.start, 3), round(e.end, 3), e.text, e.low_confidence)


def _why_low(h: Evidence) -> str:
    parts = [] if h.min_probability is None else [f"p={h.min_probability:.2f}"]
    if h.utterance_confidence is not None:
        parts.append(f"utterance confidence {h.utterance_confidence:.2f}")
    return f" ({', '.join(parts)})" if parts else ""


def _shaky(rule: Rule, hits: tuple[Evidence, ...], passed: bool) -> str | None:
    low = [h for h in hits if h.low_confidence]
    if not low:
        return None
    quoted = ", ".join(f"'{h.text}' at {h.start:.1f}s{_why_low(h)}" for h in low[:3])
    return f"{rule.id}: {'passed' if passed else 'failed'} on low-confidence speech {quoted}"


def _metric_parties(path: str) -> set[str]:
    parts = path.split(".")
    if parts[0] in ("parties", "interruptions_by") and len(parts) > 1:
        return {parts[1]}
    if parts[0].startswith("response_latenc"):  # customer turn -> agent turn
        return set(PARTY_ROLES)
    return {parts[0]}


def parties(cond: c.Condition | None, scope: Scope) -> set[str]:
    """The parties (agent, customer) whose role ``cond`` relies on, read under ``scope``."""
    found: set[str] = set()
    if isinstance(cond, c.Phrases | c.Regex):
        found = {cond.scope.under(scope).role or ""}
    elif isinstance(cond, c.Not):
        found = parties(cond.inner, scope)
    elif isinstance(cond, c.AllOf | c.AnyOf):
        found = set().union(*(parties(x, scope) for x in cond.items))
    elif isinstance(cond, c.Follow):
        found = parties(cond.trigger, scope) | parties(cond.response, scope)
    elif isinstance(cond, c.Sentiment):
        found = {cond.party}
    elif isinstance(cond, c.Interruptions):
        found = {cond.by or ""}
    elif isinstance(cond, c.Metric):
        found = _metric_parties(cond.path)
    return found & set(PARTY_ROLES)


def relies_on_roles(rule: Rule) -> bool:
    """Whether grading ``rule`` needs to know who is the agent and who the customer."""
    used = {rule.scope.role} | parties(rule.check, rule.scope) | parties(rule.when, rule.scope)
    return bool(used & set(PARTY_ROLES))


@functools.lru_cache(maxsize=1)
def _speakers_threshold() -> float:
    from callscribe.speakers.roles import load_patterns

    return load_patterns().unsure_below


def _not_graded(rule: Rule, out: c.Outcome, doubt: str) -> RuleResult:
    seen = "was not applicable" if not out.applicable else "held" if out.ok else "did not hold"
    detail = f"not graded: {doubt} (the check {seen} with the roles as assigned)"
    hits = tuple(_hit(rule.id, e) for e in out.hits[:MAX_HITS])
    return RuleResult(rule.id, rule.description, False, 0.0, 0.0, hits, detail, graded=False)


def evaluate(card: Scorecard, ctx: Context) -> Verdict:
    """Check every rule of ``card`` against one call."""
    results: list[RuleResult] = []
    reasons: list[str] = []
    role_min = card.role_confidence_min if card.role_confidence_min is not None else _speakers_threshold()
    doubt = role_doubt(ctx.transcript, role_min)
    ungraded: list[str] = []
    for rule in card.rules:
        applicable = True
        if rule.when is not None:
            applicable = rule.when.evaluate(ctx, rule.scope).ok
        out = rule.check.evaluate(ctx, rule.scope) if applicable else c.Outcome(True, applicable=False)
        if doubt is not None and relies_on_roles(rule):
            results.append(_not_graded(rule, out, doubt))
            ungraded.append(rule.id)
            continue
        if not out.applicable:
            detail = "not applicable" + (f": {out.detail}" if out.detail else "")
            results.append(RuleResult(rule.id, rule.description, True, 0.0, 0.0, (), detail))
            continue
        hits = tuple(_hit(rule.id, e) for e in out.hits[:MAX_HITS])
        if rule.kind == "flag":
            if out.ok:
                quoted = ", ".join(f"'{h.text}' at {h.start:.1f}s" for h in out.hits[:3])
                reasons.append(f"{rule.id}: flagged {quoted}".rstrip())
            results.append(RuleResult(rule.id, rule.description, not out.ok, 0.0, 0.0, hits, out.detail))
            continue
        earned = rule.points if out.ok else 0.0
        results.append(RuleResult(rule.id, rule.description, out.ok, rule.points, earned, hits, out.detail))
        shaky = _shaky(rule, out.hits, out.ok)
        if shaky:
            reasons.append(shaky)
    if ungraded:
        reasons.insert(0, f"{doubt}: not graded: {', '.join(ungraded)}")
    score = sum(r.earned for r in results)
    max_score = sum(r.points for r in results)
    return Verdict(tuple(results), round(score, 3), round(max_score, 3), tuple(reasons))
