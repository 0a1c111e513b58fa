"""Search tokens, the same tokenizer for documents and queries on both databases.

Text is NFKC-normalised and lowercased, then cut by jieba in search mode (``cut_for_search``: each word plus the
dictionary words of two and three characters inside it); every token is split at characters that are neither
letters nor digits, so punctuation never reaches the index and English words come out whole. jieba alone misses
words it cut across (我的话费 is cut 我/的话/费多, so 话费 is not a token), so every run of CJK characters also
gives its dictionary bigrams and its single characters. A query word asks for its dictionary bigrams, the
characters no bigram covers and its Latin words, all of which any text containing it has; a CJK run longer than
one dictionary word is also checked as written on ``norm``. The tokens are joined by spaces: SQLite's FTS5
``unicode61`` tokenizer and PostgreSQL's ``simple`` configuration then see exactly these tokens. Glossary terms are
added to jieba's dictionary (kept whole, and their bigrams count as words).

``norm`` is the text for phrase checks: lowercased, punctuation turned into spaces, no space between two CJK
characters and one around every run of Latin letters or digits, padded with a space at both ends.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jieba

SNIPPET_CHARS = 120  # a longer utterance is shown as a window this long around its first match
HIGHLIGHT = ("[", "]")

_SPACES = re.compile(r"\s+")
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df]+")


@dataclass(frozen=True)
class QueryTerms:
    tokens: tuple[str, ...]  # all must be among an utterance's tokens
    runs: tuple[str, ...]  # CJK runs that must also occur as written (checked on the normalised text)
    marks: tuple[str, ...]  # what a snippet marks: the Latin words and the CJK runs


@functools.lru_cache(maxsize=65536)
def _token_char(ch: str) -> bool:
    return ch.isalnum() or unicodedata.category(ch) in ("Mn", "Mc")


@functools.lru_cache(maxsize=65536)
def _cjk(ch: str) -> bool:
    """A CJK ideograph (what jieba segments; other scripts are cut like Latin words)."""
    return bool(_CJK_RUN.fullmatch(ch))


def fold(text: str) -> str:
    """NFKC and lowercase: how every text and query is compared."""
    return unicodedata.normalize("NFKC", text).lower()


@functools.lru_cache(maxsize=1)
def _base() -> jieba.Tokenizer:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    tok = jieba.Tokenizer()
    tok.initialize()
    return tok


class Tokenizer:
    """jieba in search mode over folded text, with the store's glossary terms in its dictionary."""

    def __init__(self, terms: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._jieba: jieba.Tokenizer | None = None
        self._terms: set[str] = set()
        self._pending = {fold(t).strip() for t in terms if t.strip()}

    def _ready(self) -> jieba.Tokenizer:
        with self._lock:
            if self._jieba is None:
                import jieba

                base = _base()
                tok = jieba.Tokenizer()
                tok.FREQ, tok.total, tok.initialized = dict(base.FREQ), base.total, True
                self._jieba = tok
            for term in sorted(self._pending - self._terms):
                self._jieba.add_word(term)
                self._terms.add(term)
            self._pending.clear()
            return self._jieba

    def add_terms(self, terms: Iterable[str]) -> None:
        with self._lock:
            self._pending |= {fold(t).strip() for t in terms if t.strip()}

    def _cut(self, folded: str) -> list[str]:
        """jieba search-mode tokens, split at every character that is not a letter or digit."""
        out: list[str] = []
        for raw in self._ready().cut_for_search(folded):
            if all(map(_token_char, raw)):  # most tokens: a word as it is
                out.append(raw)
                continue
            piece = ""
            for ch in raw:
                if _token_char(ch):
                    piece += ch
                elif piece:
                    out.append(piece)
                    piece = ""
            if piece:
                out.append(piece)
        return out

    def is_word(self, text: str) -> bool:
        """Whether jieba's dictionary (with the glossary) has this word."""
        return bool(self._ready().FREQ.get(fold(text)))

    def tokens(self, text: str) -> list[str]:
        """A document's search tokens: jieba search mode, then for every run of CJK characters its dictionary
        bigrams and its single characters (so a word is found where jieba cut across it, as 话费 in
        我/的话/费多), each token once."""
        folded = fold(text)
        if not folded.strip():
            return []
        out = self._cut(folded)
        freq = self._ready().FREQ  # a CJK run is folded already: its bigrams are looked up as they are
        for run in _CJK_RUN.findall(folded):
            out += [run[i : i + 2] for i in range(len(run) - 1) if freq.get(run[i : i + 2])]
            out += list(run)
        return list(dict.fromkeys(out))

    def query_terms(self, text: str) -> QueryTerms:
        """A query word's tokens: its Latin/digit words, and for each CJK run the dictionary bigrams in it plus
        the characters no bigram covers; all of them are among :meth:`tokens` of any text containing the word."""
        folded = fold(text)
        runs = tuple(_CJK_RUN.findall(folded))
        words = [t for t in self._cut(folded) if not any(_cjk(ch) for ch in t)] if folded.strip() else []
        tokens: list[str] = list(words)
        exact: list[str] = []
        for run in runs:
            pairs = [i for i in range(len(run) - 1) if self.is_word(run[i : i + 2])]
            covered = {j for i in pairs for j in (i, i + 1)}
            tokens += [run[i : i + 2] for i in pairs]
            tokens += [ch for j, ch in enumerate(run) if j not in covered]
            if len(run) > 2 or (len(run) == 2 and not pairs):
                exact.append(run)
        return QueryTerms(tuple(dict.fromkeys(tokens)), tuple(exact), tuple(dict.fromkeys(words)) + runs)


def norm(text: str) -> str:
    """The text as phrase checks see it (see the module docstring); ``" "`` for a text without words."""
    chars: list[str] = []
    for ch in fold(text):
        if not _token_char(ch):
            chars.append(" ")
        elif _cjk(ch):
            chars.append(f" {ch} ")
        else:
            chars.append(ch)
    words = _SPACES.sub(" ", "".join(chars)).strip().split(" ")
    out = ""
    for w in words:
        if not w:
            continue
        if out and not (_cjk(out[-1]) and _cjk(w[0])):
            out += " "
        out += w
    return f" {out} "


def phrase_pattern(text: str) -> str:
    """A phrase as a LIKE pattern over :func:`norm`: whole words at Latin edges, anywhere at CJK edges."""
    n = norm(text).strip()
    if not n:
        return ""
    left = "" if _cjk(n[0]) else " "
    right = "" if _cjk(n[-1]) else " "
    return f"%{left}{n}{right}%"


def _folded_map(text: str) -> tuple[str, list[int]]:
    """The folded text and, for each of its characters, the index of the original character it came from."""
    out: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        piece = fold(ch)
        out.append(piece)
        where.extend([i] * len(piece))
    return "".join(out), where


def _bounded(folded: str, start: int, end: int) -> bool:
    """A Latin/digit match must not continue a Latin/digit word on either side (``bill`` is not in ``billing``)."""

    def latin(ch: str) -> bool:
        return _token_char(ch) and not _cjk(ch)

    if latin(folded[start]) and start > 0 and latin(folded[start - 1]):
        return False
    return not (latin(folded[end - 1]) and end < len(folded) and latin(folded[end]))


def match_spans(text: str, tokens: Iterable[str]) -> list[tuple[int, int]]:
    """Where the tokens occur in ``text`` (original character offsets), merged where they overlap or are separated
    only by spaces."""
    folded, where = _folded_map(text)
    spans: list[tuple[int, int]] = []
    for tok in {t for t in tokens if t}:
        at = folded.find(tok)
        while at >= 0:
            end = at + len(tok)
            if _bounded(folded, at, end):
                spans.append((where[at], where[end - 1] + 1))
            at = folded.find(tok, at + 1)
    merged: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if merged and (s <= merged[-1][1] or not text[merged[-1][1] : s].strip()):
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def snippet(text: str, tokens: Iterable[str], *, marks: tuple[str, str] = HIGHLIGHT, width: int = SNIPPET_CHARS) -> str:
    """The text with every match marked; a long text is cut to ``width`` characters around its first match."""
    spans = match_spans(text, tokens)
    lo, hi = 0, len(text)
    if len(text) > width:
        first = spans[0][0] if spans else 0
        lo = max(0, min(first - width // 3, len(text) - width))
        hi = lo + width
    out = "…" if lo > 0 else ""
    pos = lo
    for s, e in spans:
        if e <= lo or s >= hi:
            continue
        s, e = max(s, lo), min(e, hi)
        out += text[pos:s] + marks[0] + text[s:e] + marks[1]
        pos = e
    out += text[pos:hi]
    return out + ("…" if hi < len(text) else "")
