"""Hotword recall: of the glossary terms a reference contains, how many the hypothesis got right.

A glossary has one term per line; a ``wrong => right`` line (the format of glossary post-correction) scores the
right side; blank lines and ``#`` comments are skipped. Terms and texts are normalised and tokenised the same way
as for the error rates, and occurrences are counted, so a term said three times and recognised twice scores 2/3.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from callscribe.eval.normalize import Normalizer
from callscribe.eval.refs import EvalInputError
from callscribe.eval.score import tokenize

CORRECTION_ARROW = "=>"


@dataclass(frozen=True)
class TermCount:
    """One term: occurrences in the reference(s), how many of them the hypothesis has, and the ratio."""

    term: str
    in_ref: int
    found: int
    recall: float | None = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "recall", self.found / self.in_ref if self.in_ref else None)


@dataclass(frozen=True)
class HotwordScore:
    """Recall over the terms present in the reference(s); ``None`` when none is present."""

    terms: tuple[TermCount, ...]
    in_ref: int = field(init=False)
    found: int = field(init=False)
    recall: float | None = field(init=False)

    def __post_init__(self) -> None:
        in_ref = sum(t.in_ref for t in self.terms)
        found = sum(t.found for t in self.terms)
        object.__setattr__(self, "in_ref", in_ref)
        object.__setattr__(self, "found", found)
        object.__setattr__(self, "recall", found / in_ref if in_ref else None)

    @classmethod
    def merge(cls, scores: Iterable[HotwordScore]) -> HotwordScore:
        """Per-term sums over many files (corpus level)."""
        in_ref: dict[str, int] = {}
        found: dict[str, int] = {}
        for score in scores:
            for t in score.terms:
                in_ref[t.term] = in_ref.get(t.term, 0) + t.in_ref
                found[t.term] = found.get(t.term, 0) + t.found
        return cls(tuple(TermCount(term, in_ref[term], found[term]) for term in in_ref))


def parse_glossary(text: str) -> tuple[str, ...]:
    """Terms from glossary text: one a line, ``wrong => right`` keeps ``right``, ``#`` starts a comment."""
    terms: list[str] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if CORRECTION_ARROW in line:
            line = line.split(CORRECTION_ARROW, 1)[1].strip()
        if line and line not in terms:
            terms.append(line)
    return tuple(terms)


def load_glossary(path: str | Path) -> tuple[str, ...]:
    path = Path(path)
    try:
        terms = parse_glossary(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise EvalInputError(f"{path}: no such glossary file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalInputError(f"{path}: cannot read the glossary ({exc})") from exc
    if not terms:
        raise EvalInputError(f"{path}: the glossary has no terms")
    return terms


def count_occurrences(tokens: Sequence[str], term: Sequence[str]) -> int:
    """Non-overlapping occurrences of the token sequence ``term`` in ``tokens``."""
    if not term:
        return 0
    count = i = 0
    n = len(term)
    while i + n <= len(tokens):
        if list(tokens[i : i + n]) == list(term):
            count += 1
            i += n
        else:
            i += 1
    return count


def hotword_recall(terms: Iterable[str], ref: str, hyp: str, *, normalize: bool | Normalizer = True) -> HotwordScore:
    """Recall of the glossary ``terms`` that occur in ``ref``; terms absent from the reference are left out."""
    normalizer = normalize if isinstance(normalize, Normalizer) else (Normalizer() if normalize else None)

    def toks(text: str) -> list[str]:
        return tokenize(normalizer(text) if normalizer else text, "mer")

    ref_tokens, hyp_tokens = toks(ref), toks(hyp)
    counts = []
    for term in terms:
        term_tokens = toks(term)
        in_ref = count_occurrences(ref_tokens, term_tokens)
        if in_ref:
            found = min(in_ref, count_occurrences(hyp_tokens, term_tokens))
            counts.append(TermCount(term, in_ref, found))
    return HotwordScore(tuple(counts))
