"""Mine many calls' text: keywords and phrases per role, complaint detection and complaint topics.

Chinese text is segmented with jieba (topic and complaint words are added to its dictionary so they stay whole);
English is split into words. Keywords are ranked by TF-IDF where one document is everything one role said in one
call, so a word every call has ("您好") ranks below one a few calls dwell on ("退款"). Phrases are adjacent
keyword pairs said in at least ``MIN_PHRASE_CALLS`` calls.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import jieba

from callscribe.qa.mining_words import COMPLAINT_WORDS, STOPWORDS, TOPICS, Topic

log = logging.getLogger("callscribe")

MIN_PHRASE_CALLS = 2
NEGATIVE_AT = -0.2  # an utterance sentiment at or below this counts as negative
OTHER_TOPIC = "other"

_MASK = re.compile(r"\[[A-Z]+\]")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_EN_WORD = re.compile(r"[a-z][a-z']*[a-z]|[a-z]")
_KEEP = re.compile(r"[\u4e00-\u9fffA-Za-z]")
_CLAUSE = re.compile(r"[，。！？；：、,.!?;:]+")


@dataclass(frozen=True)
class Keyword:
    role: str
    term: str
    kind: str  # "word" | "phrase"
    score: float
    count: int
    calls: int


@dataclass(frozen=True)
class RoleText:
    """Everything one role said in one call, one string per utterance."""

    call_id: str
    role: str
    utterances: tuple[str, ...]


def is_chinese(text: str) -> bool:
    return bool(_CJK.search(text))


@functools.lru_cache(maxsize=1)
def _tokenizer() -> jieba.Tokenizer:
    jieba.setLogLevel(logging.WARNING)
    tok = jieba.Tokenizer()
    for topic in TOPICS:
        for word in topic.zh:
            tok.add_word(word, freq=20_000)
    for word in COMPLAINT_WORDS["zh"]:
        tok.add_word(word, freq=20_000)
    return tok


def tokenize(text: str) -> list[str]:
    """Content words of one utterance: jieba for Chinese, words for English; stopwords and masks removed."""
    text = _MASK.sub(" ", text)
    if is_chinese(text):
        raw = [w.strip().lower() for w in _tokenizer().lcut(text)]
    else:
        raw = _EN_WORD.findall(text.lower().replace("’", "'"))
    return [w for w in raw if len(w) > 1 and w not in STOPWORDS and _KEEP.search(w)]


def keywords(docs: Sequence[RoleText], top_n: int = 20) -> list[Keyword]:
    """Top words and phrases per role across calls, best first within each role."""
    out: list[Keyword] = []
    for role in sorted({d.role for d in docs}):
        role_docs = [d for d in docs if d.role == role]
        out += _rank_words(role, role_docs, top_n)
        out += _rank_phrases(role, role_docs, top_n)
    return out


def _rank_words(role: str, docs: Sequence[RoleText], top_n: int) -> list[Keyword]:
    counts = [Counter(w for u in d.utterances for w in tokenize(u)) for d in docs]
    df: Counter[str] = Counter()
    for c in counts:
        df.update(c.keys())
    n = len(counts)
    scores: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    for c in counts:
        size = sum(c.values()) or 1
        for term, k in c.items():
            idf = math.log((1 + n) / (1 + df[term])) + 1.0
            scores[term] += k / size * idf
            totals[term] += k
    ranked = sorted(scores, key=lambda t: (-scores[t], t))[:top_n]
    return [Keyword(role, t, "word", round(scores[t], 4), totals[t], df[t]) for t in ranked]


def _rank_phrases(role: str, docs: Sequence[RoleText], top_n: int) -> list[Keyword]:
    counts: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    for d in docs:
        seen: set[str] = set()
        for clause in (c for u in d.utterances for c in _CLAUSE.split(u)):
            joiner = "" if is_chinese(clause) else " "
            for a, b in itertools.pairwise(tokenize(clause)):
                phrase = a + joiner + b
                counts[phrase] += 1
                seen.add(phrase)
        calls.update(seen)
    kept = [p for p in counts if calls[p] >= MIN_PHRASE_CALLS]
    ranked = sorted(kept, key=lambda p: (-calls[p], -counts[p], p))[:top_n]
    return [Keyword(role, p, "phrase", float(calls[p]), counts[p], calls[p]) for p in ranked]


def _has_term(text: str, low: str, term: str) -> bool:
    if is_chinese(term):
        return term in text
    return re.search(rf"(?<![a-z]){re.escape(term)}(?![a-z])", low) is not None


def complaint_words(text: str) -> list[str]:
    """The complaint words in one utterance (Chinese and English lists both apply)."""
    low = text.lower()
    return [w for lang in ("zh", "en") for w in COMPLAINT_WORDS[lang] if _has_term(text, low, w)]


def is_complaint(text: str, sentiment: float | None = None) -> bool:
    """A complaint: complaint words, or a clearly negative sentiment score."""
    return bool(complaint_words(text)) or (sentiment is not None and sentiment <= NEGATIVE_AT)


def topics_of(text: str, topics: Iterable[Topic] = TOPICS) -> list[str]:
    """Ids of the topics an utterance is about, in lexicon order; ``[]`` when none."""
    low = text.lower()
    return [t.id for t in topics if any(_has_term(text, low, w) for w in (*t.zh, *t.en))]


def topic_label(topic_id: str) -> str:
    for t in TOPICS:
        if t.id == topic_id:
            return f"{t.label} / {t.label_zh}"
    return "Other / 其他" if topic_id == OTHER_TOPIC else topic_id
