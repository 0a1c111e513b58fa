"""Glossary terms that the audio supports, and nothing else.

A glossary biases the engine towards its terms (Whisper takes them as prompt text), and a bias can invent: a term
never spoken appears at the end of a sentence, or a prompt is echoed as text. So every utterance that contains a
glossary term is read a second time without the bias. A term stays when that unbiased reading has it too (after the
glossary's ``wrong => right`` corrections) or sounds like it: the same syllables under input methods' fuzzy pinyin,
allowing one in four to differ (the bias exists to fix exactly such near-misses). When a term has no support, the
utterance takes the unbiased reading, and the call's notes say so. Utterances without a term are never read twice,
so a glossary costs engine time only where a term was heard.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache

from callscribe.model import TermHit, Utterance, Word, is_cjk
from callscribe.text.glossary import Glossary, _pattern

log = logging.getLogger("callscribe")

SOUNDS_LIKE_SHARE = 0.75  # share of a CJK term's syllables an unbiased reading must match
# rapidfuzz ratio between a Latin term and the best run of words in the unbiased reading (spaces removed): a
# mis-heard long name still scores well ("Northwind Broadband" against "Norse Windblow" 58; unrelated sentences score
# 30-40 on names this long); short terms must be nearly exact.
LATIN_SOUNDS_LIKE = 50.0
LATIN_SHORT_SOUNDS_LIKE = 80.0
LATIN_SHORT = 8
_LATIN_WORDS = re.compile(r"[a-z0-9']+")

Reread = Callable[[Sequence[Utterance]], list[tuple[str, tuple[Word, ...]]]]


@dataclass
class Checked:
    utterances: list[Utterance]
    hits: list[TermHit] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def found(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(h.term for h in self.hits))


@lru_cache(maxsize=1)
def _pinyin() -> Callable[[str], list[str]] | None:
    try:
        from pypinyin import lazy_pinyin
    except ImportError:  # the [qa] extra is not installed: compare characters instead
        return None
    return lambda text: lazy_pinyin(text, errors="ignore")


# Input methods' "fuzzy pinyin": sounds that speakers (and recognisers) confuse are folded together, so 冰海星区
# (bing hai xing qu) sounds like 滨海新区 (bin hai xin qu).
_FUZZY_INITIALS = (("zh", "z"), ("ch", "c"), ("sh", "s"), ("l", "n"), ("f", "h"), ("r", "n"))
_FUZZY_FINALS = (("iang", "ian"), ("uang", "uan"), ("ang", "an"), ("eng", "en"), ("ing", "in"))


def fuzzy_pinyin(syllable: str) -> str:
    for a, b in _FUZZY_INITIALS:
        if syllable.startswith(a):
            syllable = b + syllable[len(a) :]
            break
    for a, b in _FUZZY_FINALS:
        if syllable.endswith(a):
            return syllable[: -len(a)] + b
    return syllable


def _units(text: str) -> list[str]:
    cjk = "".join(ch for ch in text if is_cjk(ch) and ch.isalnum())
    to_pinyin = _pinyin()
    return [fuzzy_pinyin(p) for p in to_pinyin(cjk)] if to_pinyin is not None else list(cjk)


def support(term: str, reading: str, glossary: Glossary) -> str | None:
    """What in an unbiased ``reading`` supports ``term``: ``unbiased``, ``sounds-like`` or ``None``."""
    if _pattern(term).search(glossary.correct(reading)):
        return "unbiased"
    if any(is_cjk(ch) for ch in term):
        want, have = _units(term), _units(reading)
        if not want or len(have) < len(want):
            return None
        need = SOUNDS_LIKE_SHARE * len(want)
        for k in range(len(have) - len(want) + 1):
            if sum(a == b for a, b in zip(want, have[k : k + len(want)], strict=True)) >= need:
                return "sounds-like"
        return None
    from rapidfuzz import fuzz

    want = re.sub(r"\s+", "", term.lower())
    words = _LATIN_WORDS.findall(reading.lower())
    runs = range(1, len(term.split()) + 2)
    best = max(
        (fuzz.ratio(want, "".join(words[i : i + k])) for k in runs for i in range(max(1, len(words) - k + 1))),
        default=0.0,
    )
    return (
        "sounds-like" if best >= (LATIN_SOUNDS_LIKE if len(want) >= LATIN_SHORT else LATIN_SHORT_SOUNDS_LIKE) else None
    )


def check_terms(utterances: Sequence[Utterance], glossary: Glossary, reread: Reread) -> Checked:
    """Keep only the glossary terms the audio supports; list each with its time."""
    out = Checked(list(utterances))
    if not glossary.terms:
        return out
    todo = [i for i, u in enumerate(out.utterances) if u.text and glossary.found(u.text)]
    if not todo:
        return out
    readings = reread([out.utterances[i] for i in todo])
    for i, (reading, words) in zip(todo, readings, strict=True):
        u = out.utterances[i]
        terms = glossary.found(u.text)
        backed = {t: support(t, reading, glossary) for t in terms}
        invented = [t for t, why in backed.items() if why is None]
        if invented:
            fixed = glossary.correct(reading).strip()
            out.notes.append(
                f"glossary term(s) {', '.join(invented)} at {u.start:.1f}s not heard without the glossary bias: "
                "kept the unbiased reading"
            )
            log.info("unsupported glossary term(s) %s at %.1fs", invented, u.start)
            u = replace(u, text=fixed, words=words, flags=(*u.flags, "glossary-unsupported"))
            out.utterances[i] = u
            backed = {t: "unbiased" for t in glossary.found(fixed)}
        out.hits += [TermHit(t, u.start, u.end, u.channel, why) for t, why in backed.items() if why]
    out.utterances = [u for u in out.utterances if u.text or "uncovered" in u.flags]
    return out
