"""Agent / customer / ivr / other: which party is which, from what they say and when.

Phrase patterns live in ``roles.yaml`` next to this module; ``Options.roles_config`` names a YAML file that
replaces (or, with ``extend: true``, adds to) any of its sections. Every decision keeps its evidence (the phrase,
who said it, when) and a confidence.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from callscribe.model import Utterance

log = logging.getLogger("callscribe")

DEFAULT_CONFIG = Path(__file__).with_name("roles.yaml")
SCORED_ROLES = ("agent", "customer", "ivr")
IVR_SPEAKER_SHARE = 0.5  # a third voice whose speech is mostly prompts is the IVR
MAX_EVIDENCE = 6


@dataclass(frozen=True)
class Pattern:
    role: str
    regex: re.Pattern[str]
    weight: float


@dataclass(frozen=True)
class RolePatterns:
    patterns: tuple[Pattern, ...]
    first_speaker_weight: float = 0.5
    ivr_threshold: float = 2.0
    source: str = str(DEFAULT_CONFIG)

    def of(self, role: str) -> list[Pattern]:
        return [p for p in self.patterns if p.role == role]


@dataclass
class RoleDecision:
    speaker: str
    role: str
    confidence: float
    evidence: list[str] = field(default_factory=list)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read role patterns: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: role patterns must be a mapping of role -> list of patterns")
    return data


def _compile(path: Path, role: str, entries: Any) -> list[Pattern]:
    if not isinstance(entries, list):
        raise ValueError(f"{path}: section {role!r} must be a list of {{pattern, weight}} entries")
    out = []
    for entry in entries:
        if isinstance(entry, str):
            entry = {"pattern": entry}
        if not isinstance(entry, dict) or "pattern" not in entry:
            raise ValueError(f"{path}: section {role!r}: each entry needs a 'pattern'")
        try:
            regex = re.compile(str(entry["pattern"]), re.IGNORECASE)
        except re.error as exc:
            raise ValueError(f"{path}: bad pattern {entry['pattern']!r} in {role!r}: {exc}") from None
        out.append(Pattern(role, regex, float(entry.get("weight", 1.0))))
    return out


@lru_cache(maxsize=16)
def load_patterns(path: str | None = None) -> RolePatterns:
    """The shipped patterns, with the sections of ``path`` (if given) replacing or extending them."""
    base = _read(DEFAULT_CONFIG)
    sections = {role: _compile(DEFAULT_CONFIG, role, base.get(role, [])) for role in SCORED_ROLES}
    settings = {k: float(base[k]) for k in ("first_speaker_weight", "ivr_threshold") if k in base}
    source = str(DEFAULT_CONFIG)
    if path:
        user_path = Path(path)
        if not user_path.is_file():
            raise ValueError(f"{user_path}: roles config not found")
        user = _read(user_path)
        unknown = sorted(set(user) - {*SCORED_ROLES, "first_speaker_weight", "ivr_threshold", "extend"})
        if unknown:
            raise ValueError(f"{user_path}: unknown key(s) {', '.join(unknown)}; expected {', '.join(SCORED_ROLES)}")
        extend = bool(user.get("extend", False))
        for role in SCORED_ROLES:
            if role in user:
                extra = _compile(user_path, role, user[role])
                sections[role] = sections[role] + extra if extend else extra
        settings.update({k: float(user[k]) for k in ("first_speaker_weight", "ivr_threshold") if k in user})
        source = f"{DEFAULT_CONFIG} + {user_path}"
    flat = tuple(p for role in SCORED_ROLES for p in sections[role])
    return RolePatterns(flat, source=source, **settings)


def _variants(text: str) -> tuple[str, ...]:
    squashed = re.sub(r"\s+", "", text)
    return (text,) if squashed == text else (text, squashed)


def match(text: str, patterns: Sequence[Pattern]) -> list[tuple[Pattern, str]]:
    """Patterns found in ``text`` with the matched words."""
    found = []
    for p in patterns:
        for variant in _variants(text):
            m = p.regex.search(variant)
            if m:
                found.append((p, m.group(0)))
                break
    return found


def ivr_score(text: str, patterns: RolePatterns) -> float:
    return sum(p.weight for p, _ in match(text, patterns.of("ivr")))


def is_ivr(text: str, patterns: RolePatterns) -> bool:
    return ivr_score(text, patterns) >= patterns.ivr_threshold


@dataclass
class _Tally:
    score: dict[str, float] = field(default_factory=lambda: dict.fromkeys(SCORED_ROLES, 0.0))
    seen: set[tuple[str, str]] = field(default_factory=set)
    evidence: list[str] = field(default_factory=list)
    talk: float = 0.0
    ivr_talk: float = 0.0
    first: float = math.inf


def _tally(utterances: Sequence[Utterance], speakers: Sequence[str], patterns: RolePatterns) -> dict[str, _Tally]:
    tallies = {s: _Tally() for s in speakers}
    for u in sorted(utterances, key=lambda x: x.start):
        t = tallies.get(u.speaker or "")
        if t is None:
            continue
        t.talk += u.duration
        t.first = min(t.first, u.start)
        if is_ivr(u.text, patterns):
            t.ivr_talk += u.duration
        for p, words in match(u.text, patterns.patterns):
            key = (p.role, p.regex.pattern)
            if key in t.seen:
                continue
            t.seen.add(key)
            t.score[p.role] += p.weight
            if len(t.evidence) < MAX_EVIDENCE:
                t.evidence.append(f'{p.role}: "{words}" at {u.start:.1f}s')
    return tallies


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def assign_roles(
    utterances: Sequence[Utterance], speakers: Sequence[str], patterns: RolePatterns
) -> dict[str, RoleDecision]:
    """Decide a role for every speaker id in ``speakers`` from their utterances."""
    if not speakers:
        return {}
    tallies = _tally(utterances, speakers, patterns)
    talking = [s for s in speakers if tallies[s].talk > 0] or list(speakers)
    first = min(talking, key=lambda s: tallies[s].first)
    tallies[first].score["agent"] += patterns.first_speaker_weight
    tallies[first].evidence.insert(0, f"spoke first at {tallies[first].first:.1f}s")
    decisions: dict[str, RoleDecision] = {}
    humans = list(talking)
    if len(talking) > 2:
        for s in talking:
            t = tallies[s]
            if t.talk and t.ivr_talk / t.talk >= IVR_SPEAKER_SHARE:
                share = t.ivr_talk / t.talk
                decisions[s] = RoleDecision(s, "ivr", round(share, 3), [*t.evidence, "speech is mostly prompts"])
                humans.remove(s)
    margin = {s: tallies[s].score["agent"] - tallies[s].score["customer"] for s in humans}
    ranked = sorted(humans, key=lambda s: (-margin[s], tallies[s].first))
    agent = ranked[0]
    runner_up = margin[ranked[1]] if len(ranked) > 1 else 0.0
    conf = _sigmoid(margin[agent] - runner_up) if len(ranked) > 1 else _sigmoid(margin[agent])
    decisions[agent] = RoleDecision(agent, "agent", round(conf, 3), tallies[agent].evidence)
    rest = ranked[1:]
    if rest:
        customer = max(rest, key=lambda s: (-margin[s], tallies[s].talk))
        t = tallies[customer]
        c_conf = _sigmoid(margin[agent] - margin[customer])
        evidence = t.evidence or ["the other party of the agent"]
        decisions[customer] = RoleDecision(customer, "customer", round(c_conf, 3), evidence)
        for s in rest:
            if s != customer:
                decisions[s] = RoleDecision(s, "other", 0.5, [*tallies[s].evidence, "a further voice"])
    for s in speakers:
        if s not in decisions:
            decisions[s] = RoleDecision(s, "other", 0.5, ["no speech"])
    log.debug("roles: %s", {s: (d.role, d.confidence) for s, d in decisions.items()})
    return decisions
