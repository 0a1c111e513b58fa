"""Phrase matching that tolerates ASR errors.

Text is cut into tokens: one per Han character, one per Latin/digit word (lower-cased, NFKC-folded),
punctuation and spaces dropped; each token keeps its character span in the original text
(a match quotes the original).

A fuzzy match is the best-scoring stretch of an utterance under a weighted edit distance (Sellers' approximate
substring search) where substituting one token for another costs:

- Han characters: 0 if equal, ``HOMOPHONE_COST`` if they sound the same ignoring tone (工号/公号, 兴/性),
  ``NEAR_SOUND_COST`` if initials and finals are the same or commonly confused by ASR (z/zh, n/l, in/ing,
  您/你 ...), else 1;
- Latin words: their normalised character edit distance (rapidfuzz), so "calling"/"cooling" costs 0.29;
- anything else: 1. Inserting or dropping a token costs 1.

``similarity = 1 - cost / len(phrase tokens)``; a phrase matches when it reaches the threshold.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

from rapidfuzz.distance import Levenshtein

HOMOPHONE_COST = 0.1
NEAR_SOUND_COST = 0.3
DEFAULT_THRESHOLD = 0.8

_HAN_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df]")
_WORD_CHARS = re.compile(r"[a-z0-9']")
_INITIALS = ("zh", "ch", "sh", *"bpmfdtnlgkhjqxrzcsyw")
# Pairs ASR systems and regional accents mix up; 您/你 (nin/ni) is the commonest swap in service calls.
_NEAR_INITIALS = {frozenset(p) for p in (("z", "zh"), ("c", "ch"), ("s", "sh"), ("n", "l"), ("f", "h"), ("l", "r"))}
_NEAR_FINALS = {
    frozenset(p) for p in (("in", "ing"), ("en", "eng"), ("an", "ang"), ("ian", "iang"), ("uan", "uang"), ("i", "in"))
}


@dataclass(frozen=True)
class Token:
    text: str  # normalised form
    sound: str  # toneless pinyin for Han characters, else the text itself
    han: bool
    begin: int  # character span in the original text
    end: int


@dataclass(frozen=True)
class Match:
    """A phrase found in a text: token and character spans, the quoted text and how close it was."""

    phrase: str
    begin: int
    end: int
    text: str
    similarity: float


def _fold(ch: str) -> str:
    folded = unicodedata.normalize("NFKC", ch).lower()
    return folded if len(folded) == 1 else ch.lower()


@functools.lru_cache(maxsize=4096)
def tokenize(text: str) -> tuple[Token, ...]:
    """Tokens of ``text`` (Han characters and Latin/digit words) with their spans."""
    raw: list[tuple[str, bool, int, int]] = []
    i = 0
    while i < len(text):
        ch = _fold(text[i])
        if _HAN_RE.match(ch):
            raw.append((ch, True, i, i + 1))
            i += 1
        elif _WORD_CHARS.match(ch) and ch != "'":
            j = i
            while j < len(text) and _WORD_CHARS.match(_fold(text[j]).replace("’", "'")):
                j += 1
            word = "".join(_fold(c) for c in text[i:j]).replace("’", "'").strip("'")
            raw.append((word, False, i, j))
            i = j
        else:
            i += 1
    han = "".join(tok for tok, is_han, _, _ in raw if is_han)
    if han:
        from pypinyin import Style, lazy_pinyin  # the [qa] extra; imported on first use

        syllables = lazy_pinyin(han, style=Style.NORMAL, errors="default")
        if len(syllables) != len(han):  # one syllable per character, or read each character alone
            syllables = [lazy_pinyin(ch, style=Style.NORMAL)[0] for ch in han]
    else:
        syllables = []
    sounds = iter(syllables)
    return tuple(Token(tok, next(sounds) if is_han else tok, is_han, b, e) for tok, is_han, b, e in raw)


def _split(syllable: str) -> tuple[str, str]:
    for ini in _INITIALS:
        if syllable.startswith(ini) and len(syllable) > len(ini):
            return ini, syllable[len(ini) :]
    return "", syllable


def _near(a: str, b: str, pairs: set[frozenset[str]]) -> bool:
    return a == b or frozenset((a, b)) in pairs


@functools.lru_cache(maxsize=65536)
def substitution_cost(a: Token, b: Token) -> float:
    """Cost of reading token ``b`` where the phrase has ``a``."""
    if a.text == b.text:
        return 0.0
    if a.han and b.han:
        if a.sound == b.sound:
            return HOMOPHONE_COST
        (ia, fa), (ib, fb) = _split(a.sound), _split(b.sound)
        if _near(ia, ib, _NEAR_INITIALS) and _near(fa, fb, _NEAR_FINALS):
            return NEAR_SOUND_COST
        return 1.0
    if not a.han and not b.han and not (a.text.isdigit() or b.text.isdigit()):
        return Levenshtein.normalized_distance(a.text, b.text)
    return 1.0


def _exact(text: str, phrase: str, toks: tuple[Token, ...], pat: tuple[Token, ...]) -> list[Match]:
    m = len(pat)
    want = [p.text for p in pat]
    out: list[Match] = []
    for s in range(len(toks) - m + 1):
        if [tok.text for tok in toks[s : s + m]] == want:
            b, e = toks[s].begin, toks[s + m - 1].end
            out.append(Match(phrase, b, e, text[b:e], 1.0))
    return out


def _could_reach(toks: tuple[Token, ...], pat: tuple[Token, ...], threshold: float) -> bool:
    """Cheap bound: every Han phrase token whose sound is absent costs at least NEAR_SOUND_COST."""
    sounds = {tok.sound for tok in toks}
    missing = sum(1 for p in pat if p.han and p.sound not in sounds)
    return 1.0 - missing * NEAR_SOUND_COST / len(pat) >= threshold


def _best(text: str, phrase: str, toks: tuple[Token, ...], pat: tuple[Token, ...]) -> Match | None:
    m, n = len(pat), len(toks)
    if n == 0:
        return None
    prev = [0.0] * (n + 1)  # free start anywhere in the text
    starts = list(range(n + 1))
    for i in range(1, m + 1):
        cur = [float(i)] + [0.0] * n
        cur_starts = [0] * (n + 1)
        p = pat[i - 1]
        for j in range(1, n + 1):
            diag = prev[j - 1] + substitution_cost(p, toks[j - 1])
            up = prev[j] + 1.0
            left = cur[j - 1] + 1.0
            if diag <= up and diag <= left:
                cur[j], cur_starts[j] = diag, starts[j - 1]
            elif up <= left:
                cur[j], cur_starts[j] = up, starts[j]
            else:
                cur[j], cur_starts[j] = left, cur_starts[j - 1]
        prev, starts = cur, cur_starts
    end = min(range(1, n + 1), key=lambda j: (prev[j], j - starts[j]))
    start = starts[end]
    if end <= start:
        return None
    b, e = toks[start].begin, toks[end - 1].end
    return Match(phrase, b, e, text[b:e], round(max(0.0, 1.0 - prev[end] / m), 4))


def find(text: str, phrase: str, *, fuzzy: bool = False, threshold: float = DEFAULT_THRESHOLD) -> list[Match]:
    """Occurrences of ``phrase`` in ``text``: every exact one, else (when ``fuzzy``) the best near one."""
    toks, pat = tokenize(text), tokenize(phrase)
    if not pat or not toks:
        return []
    exact = _exact(text, phrase, toks, pat)
    if exact or not fuzzy or not _could_reach(toks, pat, threshold):
        return exact
    best = _best(text, phrase, toks, pat)
    return [best] if best is not None and best.similarity >= threshold else []
