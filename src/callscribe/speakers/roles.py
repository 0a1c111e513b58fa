"""Agent / customer / ivr / other: which party is which, from what they say first and when second.

Phrase patterns live in ``roles.yaml`` next to this module; ``Options.roles_config`` names a YAML file that
replaces (or, with ``extend: true``, adds to) any of its sections. Pattern weights are log-odds; a decision's
confidence is the sigmoid of the summed evidence (content, plus a little for speaking first), and a decision
below ``unsure_below`` is marked unsure. Every decision keeps its evidence (the phrase, who said it, when).
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
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
SETTINGS = ("first_speaker_weight", "ivr_threshold", "unsure_below")
IVR_SPEAKER_SHARE = 0.5  # a third voice whose speech is mostly prompts is the IVR
MAX_EVIDENCE = 6
UNSURE = "unsure:"  # the evidence line of an unsure decision starts with this

# Traditional -> simplified for the characters of the shipped patterns (Whisper writes either script). Built with
# OpenCC s2t/s2tw/s2hk over every Han character in roles.yaml; tests check it still covers them.
_TRADITIONAL = (
    "專爲麼亂會興別辦務動單號嗎員諮處實寬對將帳帶幫錄戶報掛斷機來"
    "歡沒點煩熱電碼稱線經給絡網聯訂記證訴話詢說請謝賬貴費轉還這遞"
    "裏銀鍵問險顧題饋為裡説"
)
_SIMPLIFIED = (
    "专为么乱会兴别办务动单号吗员咨处实宽对将帐带帮录户报挂断机来"
    "欢没点烦热电码称线经给络网联订记证诉话询说请谢账贵费转还这递"
    "里银键问险顾题馈为里说"
)
_T2S = str.maketrans(_TRADITIONAL, _SIMPLIFIED)
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})


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
    unsure_below: float = 0.8
    source: str = str(DEFAULT_CONFIG)

    def of(self, role: str) -> list[Pattern]:
        return [p for p in self.patterns if p.role == role]


@dataclass
class RoleDecision:
    speaker: str
    role: str
    confidence: float
    evidence: list[str] = field(default_factory=list)
    unsure: bool = False


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


def _settings(path: Path, data: dict[str, Any]) -> dict[str, float]:
    out = {}
    for key in SETTINGS:
        if key in data:
            try:
                out[key] = float(data[key])
            except (TypeError, ValueError):
                raise ValueError(f"{path}: {key} must be a number, not {data[key]!r}") from None
    if not 0.5 <= out.get("unsure_below", 0.5) <= 1.0:
        raise ValueError(f"{path}: unsure_below must be between 0.5 and 1")
    return out


@lru_cache(maxsize=16)
def load_patterns(path: str | None = None) -> RolePatterns:
    """The shipped patterns, with the sections of ``path`` (if given) replacing or extending them."""
    base = _read(DEFAULT_CONFIG)
    sections = {role: _compile(DEFAULT_CONFIG, role, base.get(role, [])) for role in SCORED_ROLES}
    settings = _settings(DEFAULT_CONFIG, base)
    source = str(DEFAULT_CONFIG)
    if path:
        user_path = Path(path)
        if not user_path.is_file():
            raise ValueError(f"{user_path}: roles config not found")
        user = _read(user_path)
        unknown = sorted(set(user) - {*SCORED_ROLES, *SETTINGS, "extend"})
        if unknown:
            raise ValueError(
                f"{user_path}: unknown key(s) {', '.join(unknown)}; expected {', '.join((*SCORED_ROLES, *SETTINGS))}"
            )
        extend = bool(user.get("extend", False))
        for role in SCORED_ROLES:
            if role in user:
                extra = _compile(user_path, role, user[role])
                sections[role] = sections[role] + extra if extend else extra
        settings.update(_settings(user_path, user))
        source = f"{DEFAULT_CONFIG} + {user_path}"
    flat = tuple(p for role in SCORED_ROLES for p in sections[role])
    return RolePatterns(flat, source=source, **settings)


def fold(text: str) -> str:
    """Text as patterns see it: NFKC, lower case, simplified characters, straight apostrophes."""
    return unicodedata.normalize("NFKC", text).translate(_T2S).translate(_APOSTROPHES).lower()


def _variants(text: str) -> tuple[str, ...]:
    folded = fold(text).strip()
    squashed = re.sub(r"\s+", "", folded)
    return (folded,) if squashed == folded else (folded, squashed)


@dataclass(frozen=True)
class Found:
    """A pattern found in an utterance: the words (folded) and where, in which variant of the text."""

    pattern: Pattern
    words: str
    variant: int
    begin: int
    end: int

    def overlaps(self, other: Found) -> bool:
        if self.variant == other.variant:
            return self.begin < other.end and other.begin < self.end
        a, b = re.sub(r"\s+", "", self.words), re.sub(r"\s+", "", other.words)
        return a in b or b in a


def find_all(text: str, patterns: Sequence[Pattern]) -> list[Found]:
    """Every pattern found in ``text`` (the first place each is found)."""
    found = []
    variants = _variants(text)
    for p in patterns:
        for n, variant in enumerate(variants):
            m = p.regex.search(variant)
            if m:
                found.append(Found(p, m.group(0).strip(), n, m.start(), m.end()))
                break
    return found


def distinct(found: Sequence[Found]) -> list[Found]:
    """One reading per stretch of words: where patterns of one role match the same words, the heaviest counts."""
    kept: list[Found] = []
    for f in sorted(found, key=lambda f: -f.pattern.weight):
        if not any(k.pattern.role == f.pattern.role and k.overlaps(f) for k in kept):
            kept.append(f)
    return kept


def match(text: str, patterns: Sequence[Pattern]) -> list[tuple[Pattern, str]]:
    """Patterns found in ``text`` with the matched words (as folded for matching)."""
    return [(f.pattern, f.words) for f in find_all(text, patterns)]


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

    @property
    def net(self) -> float:
        """Content evidence that this speaker is the agent rather than the customer (log-odds)."""
        return self.score["agent"] - self.score["customer"]


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
        for f in sorted(distinct(find_all(u.text, patterns.patterns)), key=lambda f: (f.variant, f.begin)):
            p = f.pattern
            key = (p.role, p.regex.pattern)
            if key in t.seen:
                continue
            t.seen.add(key)
            t.score[p.role] += p.weight
            if len(t.evidence) < MAX_EVIDENCE:
                t.evidence.append(f'{p.role}: "{f.words}" at {u.start:.1f}s (+{p.weight:g})')
    return tallies


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, x))))


def _why_unsure(content: float, timing: float, has_phrases: bool) -> str:
    """Why a decision is unsure, from the agent's side: the phrases' margin and what speaking first added."""
    first = f"who spoke first {round(timing, 2):+g}" if timing else "no timing evidence"
    if not has_phrases:
        return f"no agent or customer phrases; {first}"
    if content <= 0:
        return f"the phrases do not single out the agent ({round(content, 2):+g}); {first}"
    return f"weak evidence: phrases {round(content, 2):+g}, {first}"


def assign_roles(
    utterances: Sequence[Utterance], speakers: Sequence[str], patterns: RolePatterns
) -> dict[str, RoleDecision]:
    """Decide a role for every speaker id in ``speakers`` from their utterances.

    The agent is the human voice with the highest evidence (agent minus customer phrase weights, plus
    ``first_speaker_weight`` for the first voice); the customer is the most customer-like of the rest. The
    confidence of both is ``sigmoid(evidence of the agent - evidence of the runner-up)``: with two parties, the
    log-odds that the two are not the other way round.
    """
    if not speakers:
        return {}
    tallies = _tally(utterances, speakers, patterns)
    talking = [s for s in speakers if tallies[s].talk > 0] or list(speakers)
    decisions: dict[str, RoleDecision] = {}
    humans = list(talking)
    if len(talking) > 2:
        for s in talking:
            t = tallies[s]
            if t.talk and t.ivr_talk / t.talk >= IVR_SPEAKER_SHARE:
                share = t.ivr_talk / t.talk
                decisions[s] = RoleDecision(s, "ivr", round(share, 3), [*t.evidence, "speech is mostly prompts"])
                humans.remove(s)
    if not humans:
        return {s: decisions.get(s) or RoleDecision(s, "other", 0.5, ["no speech"]) for s in speakers}
    first = min(humans, key=lambda s: tallies[s].first)
    timing = dict.fromkeys(humans, 0.0)
    if len(humans) > 1:
        timing[first] = patterns.first_speaker_weight
        tallies[first].evidence.insert(0, f"spoke first at {tallies[first].first:.1f}s (+{timing[first]:g})")
    evidence = {s: tallies[s].net + timing[s] for s in humans}
    ranked = sorted(humans, key=lambda s: (-evidence[s], tallies[s].first))
    has_phrases = any(tallies[s].score["agent"] or tallies[s].score["customer"] for s in humans)
    if len(ranked) == 1:
        only = ranked[0]
        margin = tallies[only].net
        role = "agent" if margin >= 0 else "customer"
        content = abs(margin)
        decisions[only] = RoleDecision(only, role, 0.0, tallies[only].evidence or ["the only voice"])
        runner_up = None
    else:
        agent = ranked[0]
        customer = min(ranked[1:], key=lambda s: (evidence[s], -tallies[s].talk))
        runner_up = ranked[1]
        margin = evidence[agent] - evidence[runner_up]
        content = tallies[agent].net - tallies[runner_up].net
        decisions[agent] = RoleDecision(agent, "agent", 0.0, tallies[agent].evidence)
        c_evidence = tallies[customer].evidence or [f"no phrases of its own; the other party of the agent ({agent})"]
        decisions[customer] = RoleDecision(customer, "customer", 0.0, c_evidence)
        for s in ranked[1:]:
            if s != customer:
                decisions[s] = RoleDecision(s, "other", 0.5, [*tallies[s].evidence, "a further voice"])
    confidence = round(_sigmoid(abs(margin) if len(ranked) == 1 else margin), 3)
    unsure = confidence < patterns.unsure_below
    for d in decisions.values():
        if d.role in ("agent", "customer"):
            d.confidence = confidence
            d.unsure = unsure
            if unsure:
                why = _why_unsure(content, margin - content if runner_up is not None else 0.0, has_phrases)
                d.evidence.append(f"{UNSURE} confidence {confidence:.2f} below {patterns.unsure_below:.2f}: {why}")
    for s in speakers:
        if s not in decisions:
            decisions[s] = RoleDecision(s, "other", 0.5, ["no speech"])
    log.debug("roles: %s", {s: (d.role, d.confidence, d.unsure) for s, d in decisions.items()})
    return decisions
