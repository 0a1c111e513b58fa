"""Offline sentiment per utterance and the customer's trajectory through the call.

Methods are looked up by name (:func:`register_method`, :func:`get_method`); each scores one text in [-1, 1].
The default ``lexicon`` method: Chinese is segmented with jieba (lexicon entries added as words), English by
words; a sentiment word adds its weight, times any intensifier just before it ("非常", "very"), sign flipped
and damped by a negation within the last ``NEGATION_SCOPE`` tokens ("不", "没", "not", "n't"); a contrast word
("但是", "but") halves what came before and boosts what follows; the sum ``s`` is squashed to
``s / sqrt(s^2 + SQUASH)``. Clause punctuation ends negation and intensifier scope.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Protocol

from callscribe.model import Transcript, Utterance

if TYPE_CHECKING:
    import jieba

log = logging.getLogger("callscribe")

DEFAULT_METHOD = "lexicon"
POSITIVE_AT = 0.2  # scores at or above are "positive", at or below -POSITIVE_AT "negative"
NEGATION_SCOPE = 3  # tokens after a negation word that it still flips
NEGATION_DAMP = 0.75  # a negated word counts for this share of its weight, sign flipped ("not bad" < "good")
CONTRAST_BEFORE = 0.5
CONTRAST_AFTER = 1.5
SQUASH = 2.0
TRAJECTORY_CHANGE = 0.2  # start-to-end change in mean score that counts as "improved" / "worsened"
TRAJECTORY_SPAN = 3  # customer utterances averaged at each end of the call

_CLAUSE_END = re.compile(r"^[，。！？；,.!?;：:…\s]+$")
_EN_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[,.!?;:]")
_CJK = re.compile(r"[\u4e00-\u9fff]")


class SentimentMethod(Protocol):
    """Scores one text in [-1, 1] (negative to positive); ``language`` is ``zh`` or ``en``."""

    def score(self, text: str, language: str) -> float: ...


@dataclass(frozen=True)
class UtteranceSentiment:
    utterance: int
    party: str
    start: float
    score: float
    label: str


@dataclass(frozen=True)
class SentimentReport:
    method: str
    utterances: tuple[UtteranceSentiment, ...]
    by_party: dict[str, float]
    overall: float
    customer_start: float | None
    customer_end: float | None
    customer_end_label: str | None
    customer_trend: str | None  # "improved" | "worsened" | "steady"


@dataclass(frozen=True)
class Lexicon:
    words: dict[str, float]  # signed weights
    negators: frozenset[str]
    intensifiers: dict[str, float]
    contrast: frozenset[str]
    neutral: frozenset[str]
    longest: int  # most tokens in an English phrase entry


def _read(name: str) -> list[tuple[str, float | None]]:
    text = resources.files("callscribe.qa").joinpath("lexicons", name).read_text(encoding="utf-8")
    rows: list[tuple[str, float | None]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        head, _, tail = line.rpartition(" ")
        try:
            rows.append((head.strip(), float(tail)))
        except ValueError:  # no weight: the whole line is the entry
            rows.append((line, None))
    return rows


@functools.lru_cache(maxsize=4)
def load_lexicon(language: str) -> Lexicon:
    """The packaged word lists for ``zh`` or ``en``."""
    words: dict[str, float] = {}
    for name, sign in ((f"{language}_positive.txt", 1.0), (f"{language}_negative.txt", -1.0)):
        for word, weight in _read(name):
            words[word] = sign * (1.0 if weight is None else weight)
    phrases = [w for w in words if " " in w]
    return Lexicon(
        words=words,
        negators=frozenset(w for w, _ in _read(f"{language}_negators.txt")),
        intensifiers={w: (1.0 if v is None else v) for w, v in _read(f"{language}_intensifiers.txt")},
        contrast=frozenset(w for w, _ in _read(f"{language}_contrast.txt")),
        neutral=frozenset(w for w, _ in _read(f"{language}_neutral.txt")),
        longest=max((len(p.split()) for p in phrases), default=1),
    )


@functools.lru_cache(maxsize=1)
def _zh_tokenizer() -> jieba.Tokenizer:
    import jieba  # the [qa] extra; imported on first use so the package loads without it

    jieba.setLogLevel(logging.WARNING)
    tok = jieba.Tokenizer()
    lex = load_lexicon("zh")
    for word in (*lex.words, *lex.negators, *lex.intensifiers, *lex.neutral):
        tok.add_word(word, freq=50_000)
    return tok


def _tokens(text: str, language: str, lex: Lexicon) -> list[str]:
    if language == "zh":
        return [w for w in _zh_tokenizer().lcut(text) if w.strip()]
    words = _EN_WORD.findall(text.lower().replace("’", "'"))
    out: list[str] = []
    i = 0
    while i < len(words):  # longest phrase entries first ("fed up", "no problem")
        for n in range(min(lex.longest + 1, len(words) - i), 0, -1):
            cand = " ".join(words[i : i + n])
            if n == 1 or cand in lex.words or cand in lex.neutral:
                out.append(cand)
                i += n
                break
    return out


class LexiconSentiment:
    """Word lists plus negation, intensifier and contrast rules (see the module docstring)."""

    def score(self, text: str, language: str) -> float:
        lex = load_lexicon("zh" if language.startswith("zh") else "en")
        toks = _tokens(text, "zh" if language.startswith("zh") else "en", lex)
        before, total, boost = 0.0, 0.0, 1.0
        negated_for, mult = 0, 1.0
        for k, tok in enumerate(toks):
            nxt = toks[k + 1] if k + 1 < len(toks) else ""
            if _CLAUSE_END.match(tok) or tok in lex.neutral:
                negated_for, mult = 0, 1.0
                continue
            if tok in lex.contrast:
                before, total, boost = before + total * CONTRAST_BEFORE, 0.0, CONTRAST_AFTER
                continue
            if tok in lex.negators or tok.endswith("n't"):
                negated_for = NEGATION_SCOPE + 1
            elif tok in lex.intensifiers and (tok not in lex.words or nxt in lex.words):
                mult *= lex.intensifiers[tok]
            elif tok in lex.words or (language.startswith("zh") and tok[:1] in lex.negators and tok[1:] in lex.words):
                # a negation may come fused onto the word by segmentation ("不好用" as one token)
                fused = tok not in lex.words
                value = (-NEGATION_DAMP * lex.words[tok[1:]] if fused else lex.words[tok]) * mult
                if negated_for > 0:
                    value = -value * NEGATION_DAMP
                total += value
                negated_for, mult = 0, 1.0
                continue
            negated_for = max(0, negated_for - 1)
        s = before + total * boost
        return round(s / math.sqrt(s * s + SQUASH), 4)


MethodFactory = Callable[[], SentimentMethod]
_METHODS: dict[str, MethodFactory] = {"lexicon": LexiconSentiment}


def register_method(name: str, factory: MethodFactory) -> None:
    """Make a sentiment method available by name (e.g. a model-backed scorer)."""
    _METHODS[name] = factory


@functools.lru_cache(maxsize=8)
def get_method(name: str) -> SentimentMethod:
    if name not in _METHODS:
        raise ValueError(f"unknown sentiment method {name!r}; known: {', '.join(sorted(_METHODS))}")
    return _METHODS[name]()


def label(score: float) -> str:
    if score >= POSITIVE_AT:
        return "positive"
    if score <= -POSITIVE_AT:
        return "negative"
    return "neutral"


def language_of(u: Utterance, default: str | None) -> str:
    """``zh`` or ``en`` for an utterance: its own tag, the call's, or the script its text is in."""
    tag = u.language or default
    if tag:
        return "zh" if tag.lower().startswith(("zh", "cmn", "yue")) else "en"
    cjk = len(_CJK.findall(u.text))
    return "zh" if cjk * 2 >= len(u.text.strip()) and cjk else "en"


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def analyze_sentiment(t: Transcript, method: str = DEFAULT_METHOD) -> SentimentReport:
    """Score every utterance and summarise by party and the customer's start and end of call."""
    from callscribe.qa.metrics import party_of

    scorer = get_method(method)
    rows: list[UtteranceSentiment] = []
    for i, u in enumerate(t.utterances):
        if not u.text.strip():
            continue
        s = scorer.score(u.text, language_of(u, t.language))
        rows.append(UtteranceSentiment(i, party_of(u), u.start, s, label(s)))
    rows.sort(key=lambda r: (r.start, r.utterance))
    by_party: dict[str, list[float]] = {}
    for r in rows:
        by_party.setdefault(r.party, []).append(r.score)
    customer = [r.score for r in rows if r.party == "customer"]
    span = max(1, min(TRAJECTORY_SPAN, len(customer) // 3))
    start, end = _mean(customer[:span]), _mean(customer[-span:])
    trend = None
    if start is not None and end is not None:
        change = end - start
        trend = "improved" if change >= TRAJECTORY_CHANGE else "worsened" if change <= -TRAJECTORY_CHANGE else "steady"
    return SentimentReport(
        method=method,
        utterances=tuple(rows),
        by_party={p: v for p, scores in by_party.items() if (v := _mean(scores)) is not None},
        overall=_mean([r.score for r in rows]) or 0.0,
        customer_start=start,
        customer_end=end,
        customer_end_label=label(end) if end is not None else None,
        customer_trend=trend,
    )
