"""Text scoring: CER, WER and the mixed error rate, with jiwer doing the alignment.

Which metric a pair gets is decided by the reference, and the metric decides the tokens:

- ``cer``: the reference has CJK characters and no Latin words (or is tagged ``zh`` and has neither); tokens
  are all characters but spaces (digits one by one, so a wrong digit of a phone number is one error);
- ``wer``: no CJK characters; tokens are the words between spaces (a stray CJK character is its own word);
- ``mer``: both CJK characters and Latin words; the *mixed error rate* over mixed tokens: CJK characters and
  digits one by one, Latin words whole.

This ``mer`` is not jiwer's "match error rate"; the name is kept because it is what code-switching ASR papers
call a mixed error rate.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import jiwer

from callscribe.eval.normalize import Normalizer
from callscribe.model import is_cjk

METRICS = ("cer", "wer", "mer")


@dataclass(frozen=True)
class AlignedOp:
    """One chunk of the alignment: ``equal``, ``substitute``, ``delete`` or ``insert``, with the tokens."""

    op: str
    ref: str
    hyp: str


@dataclass(frozen=True)
class TextScore:
    """How a hypothesis text compares with its reference, in the tokens of ``metric``.

    ``ref_tokens``, ``errors`` and ``rate`` (errors / reference tokens, ``None`` for an empty reference) are
    derived from the counts.
    """

    metric: str
    hits: int
    substitutions: int
    deletions: int
    insertions: int
    ref_text: str
    hyp_text: str
    alignment: tuple[AlignedOp, ...] = ()
    ref_tokens: int = field(init=False)
    errors: int = field(init=False)
    rate: float | None = field(init=False)

    def __post_init__(self) -> None:
        _derive(self)


@dataclass(frozen=True)
class ErrorCounts:
    """Error counts summed over many files (corpus level), with the same derived fields as TextScore."""

    hits: int = 0
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    ref_tokens: int = field(init=False)
    errors: int = field(init=False)
    rate: float | None = field(init=False)

    def __post_init__(self) -> None:
        _derive(self)

    @classmethod
    def total(cls, scores: Iterable[TextScore | ErrorCounts]) -> ErrorCounts:
        h = s = d = i = 0
        for score in scores:
            h += score.hits
            s += score.substitutions
            d += score.deletions
            i += score.insertions
        return cls(h, s, d, i)


def _derive(counts: TextScore | ErrorCounts) -> None:
    ref_tokens = counts.hits + counts.substitutions + counts.deletions
    errors = counts.substitutions + counts.deletions + counts.insertions
    object.__setattr__(counts, "ref_tokens", ref_tokens)
    object.__setattr__(counts, "errors", errors)
    object.__setattr__(counts, "rate", errors / ref_tokens if ref_tokens else None)


def _has_latin_word(text: str) -> bool:
    return any(ch.isascii() and ch.isalpha() for ch in text)


def choose_metric(ref: str, lang: str | None = None) -> str:
    """``cer``, ``wer`` or ``mer`` for a reference text (see the module doc)."""
    cjk = any(is_cjk(ch) for ch in ref)
    latin = _has_latin_word(ref)
    if cjk and latin:
        return "mer"
    if cjk or (lang is not None and lang.startswith("zh") and not latin):
        return "cer"
    return "wer"


def tokenize(text: str, metric: str) -> list[str]:
    """Scoring tokens for ``metric``: ``cer`` every character but spaces; ``wer`` words, with CJK characters
    one by one; ``mer`` as ``wer`` but digits one by one too."""
    if metric == "cer":
        return [ch for ch in text if not ch.isspace()]
    tokens: list[str] = []
    word = ""
    for ch in text:
        single = is_cjk(ch) or (metric == "mer" and ch.isdigit())
        if ch.isspace() or single:
            if word:
                tokens.append(word)
                word = ""
            if single:
                tokens.append(ch)
        else:
            word += ch
    if word:
        tokens.append(word)
    return tokens


def _as_normalizer(normalize: bool | Normalizer) -> Normalizer | None:
    if isinstance(normalize, Normalizer):
        return normalize
    return Normalizer() if normalize else None


def join_tokens(tokens: Sequence[str], metric: str) -> str:
    """Tokens of ``metric`` back to text: a space only between two tokens that were words."""
    if metric == "cer":
        return "".join(tokens)
    out = ""
    for token in tokens:
        if out and not (_single(out[-1], metric) or _single(token[0], metric)):
            out += " "
        out += token
    return out


def _single(ch: str, metric: str) -> bool:
    return is_cjk(ch) or (metric == "mer" and ch.isdigit())


def _alignment(ref: Sequence[str], hyp: Sequence[str], out: jiwer.WordOutput, metric: str) -> tuple[AlignedOp, ...]:
    return tuple(
        AlignedOp(
            op=chunk.type,
            ref=join_tokens(ref[chunk.ref_start_idx : chunk.ref_end_idx], metric),
            hyp=join_tokens(hyp[chunk.hyp_start_idx : chunk.hyp_end_idx], metric),
        )
        for chunk in out.alignments[0]
    )


def score_tokens(
    ref: Sequence[str], hyp: Sequence[str], metric: str, *, align: bool = False
) -> tuple[int, int, int, int, tuple[AlignedOp, ...]]:
    """Align two token lists with jiwer: ``(hits, substitutions, deletions, insertions, alignment)``."""
    if not ref:
        inserted = (AlignedOp("insert", "", join_tokens(hyp, metric)),) if align and hyp else ()
        return 0, 0, 0, len(hyp), inserted
    out = jiwer.process_words(" ".join(ref), " ".join(hyp))
    ops = _alignment(ref, hyp, out, metric) if align else ()
    return out.hits, out.substitutions, out.deletions, out.insertions, ops


def score_text(
    ref: str,
    hyp: str,
    lang: str | None = None,
    *,
    normalize: bool | Normalizer = True,
    align: bool = False,
    metric: str | None = None,
) -> TextScore:
    """Score one hypothesis text against its reference.

    ``lang`` (``zh``/``en``/``None``) only breaks ties for references without letters or CJK characters;
    ``normalize`` is ``True`` (default pipeline), ``False`` (raw text) or a :class:`Normalizer`; ``align``
    keeps the alignment chunks; ``metric`` forces ``cer``/``wer``/``mer`` instead of choosing from the
    reference.
    """
    normalizer = _as_normalizer(normalize)
    if normalizer is not None:
        ref, hyp = normalizer(ref), normalizer(hyp)
    if metric is None:
        metric = choose_metric(ref, lang)
    elif metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose from {list(METRICS)}")
    ref_tokens, hyp_tokens = tokenize(ref, metric), tokenize(hyp, metric)
    hits, subs, dels, ins, ops = score_tokens(ref_tokens, hyp_tokens, metric, align=align)
    return TextScore(metric, hits, subs, dels, ins, ref, hyp, ops)
