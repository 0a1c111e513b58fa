"""Search queries for the store benchmark, taken from the words of the text pool the calls were made of.

Kinds: two-character dictionary words (the most and the least frequent half by the number of utterances that
contain them), three-character words, quoted phrases (Chinese and English), English words, AND / NOT / OR
combinations, and call-centre words that never occur in the data (退款, 发票, ...: the index says no at once).
``frequency`` counts, for a word, the utterances whose text contains it (from the texts as they were stored).
"""

from __future__ import annotations

import itertools
import logging
import random
import re
from collections import Counter
from dataclasses import dataclass

from store_data import Pool

KINDS = ("zh2 common", "zh2 rare", "zh3", "phrase", "english", "and/not/or", "absent")
ABSENT = ("退款", "发票", "投诉", "账单", "套餐", "宽带", "refund", "invoice", "投诉电话", "宽带套餐")
EN_STOP = {"the", "and", "you", "your", "for", "was", "what", "have", "that", "this", "can", "with", "not", "but"}
_CJK = re.compile(r"[\u4e00-\u9fff]+")
_EN_WORD = re.compile(r"[a-z]+")
MIN_FREQ = 50  # jieba dictionary frequency a bigram needs to count as a word people search for


@dataclass(frozen=True)
class QuerySet:
    queries: dict[str, list[str]]  # kind -> the queries run, in order
    words: dict[str, list[str]]  # kind -> the distinct queries they were drawn from


def _jieba() -> object:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def frequency(texts: Counter[str], word: str) -> int:
    """Utterances whose (lowercased) text contains ``word``."""
    w = word.lower()
    return sum(n for text, n in texts.items() if w in text)


def build(pool: Pool, texts: Counter[str], per_kind: int, seed: int) -> QuerySet:
    """``texts``: each stored utterance text (lowercased) with how many utterances said it."""
    jieba = _jieba()
    freq = jieba.dt.FREQ  # type: ignore[attr-defined]
    zh, en = pool.clauses["zh"], pool.clauses["en"]
    bigrams: set[str] = set()
    three: set[str] = set()
    phrases: set[str] = set()
    for clause in zh:
        for run in _CJK.findall(clause):
            bigrams |= {run[i : i + 2] for i in range(len(run) - 1) if freq.get(run[i : i + 2], 0) >= MIN_FREQ}
            three |= {w for w in jieba.lcut(run) if len(w) == 3}  # type: ignore[attr-defined]
            cut = [w for w in jieba.lcut(run) if len(w) >= 2]  # type: ignore[attr-defined]
            phrases |= {a + b for a, b in itertools.pairwise(cut) if a + b in run}
    en_words: set[str] = set()
    for clause in en:
        words = _EN_WORD.findall(clause.lower())
        en_words |= {w for w in words if len(w) >= 3 and w not in EN_STOP}
        phrases |= {f"{a} {b}" for a, b in itertools.pairwise(words) if len(a) + len(b) >= 7}
    by_freq = sorted(bigrams, key=lambda w: (frequency(texts, w), w))
    half = len(by_freq) // 2
    rng = random.Random(seed)
    combos = _combos(rng, zh, sorted(bigrams), sorted(en_words), en)
    words = {
        "zh2 common": by_freq[half:],
        "zh2 rare": [w for w in by_freq[:half] if frequency(texts, w) > 0],
        "zh3": sorted(three),
        "phrase": [f'"{p}"' for p in sorted(phrases)],
        "english": sorted(en_words),
        "and/not/or": combos,
        "absent": [w for w in ABSENT if frequency(texts, w) == 0],
    }
    queries = {k: [rng.choice(v) for _ in range(per_kind)] if v else [] for k, v in words.items()}
    return QuerySet(queries, words)


def _combos(rng: random.Random, zh: tuple[str, ...], bigrams: list[str], en_words: list[str], en: tuple[str, ...]):
    """``a b`` (two words of one clause: they co-occur), ``a -b``, ``a OR b``, ``a b -c`` and English pairs."""
    out: set[str] = set()
    in_clause = [[b for b in bigrams if b in c] for c in zh]
    in_clause = [ws for ws in in_clause if len(ws) >= 2]
    en_clause = [[w for w in en_words if re.search(rf"\b{w}\b", c.lower())] for c in en]
    en_clause = [ws for ws in en_clause if len(ws) >= 2]
    for _ in range(400):
        ws = rng.choice(in_clause)
        a, b = rng.sample(ws, 2)
        other = rng.choice(bigrams)
        out |= {f"{a} {b}", f"{a} -{other}", f"{a} OR {other}", f"{a} {b} -{other}"}
        if en_clause:
            x, y = rng.sample(rng.choice(en_clause), 2)
            out |= {f"{x} {y}", f"{x} NOT {rng.choice(en_words)}"}
    return sorted(q for q in out if len(set(q.replace("-", " ").split()) - {"OR", "NOT"}) >= 2)
