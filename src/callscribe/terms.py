"""Glossary terms where the audio supports them, and nowhere else.

A glossary bias can invent (Whisper takes the terms as prompt text: a term never spoken appears at the end of a
sentence, a prompt is echoed) and can delete (a biased decode of a long clip drops words it would otherwise keep). So
the engine first hears every clip without the bias. Then each utterance whose unbiased text has a term, or sounds
like one — the same syllables under input methods' fuzzy pinyin, allowing one in four to differ; a fuzzy match for
Latin names — is decoded once more with the glossary. The biased reading replaces the first one only when it gains a
term that the first reading sounded like, every term in it is backed by the first reading, and it keeps at least
``KEEP_SHARE`` of the first reading's syllables. An utterance with no term in sight is never decoded twice, so a
glossary costs engine time only where a term may be, and a transcript without such places reads exactly as it would
without the glossary. ``wrong => right`` corrections apply everywhere.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache

from callscribe.coverage import syllables
from callscribe.model import TermHit, Utterance, Word, is_cjk
from callscribe.text.glossary import Glossary, _pattern

log = logging.getLogger("callscribe")

KEEP_SHARE = 0.9  # a biased reading must keep this share of the unbiased reading's syllables
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
    """Bring in glossary terms where the unbiased text sounds like them; list each term found with its time."""
    out = Checked(list(utterances))
    if not glossary.terms:
        return out
    near: dict[int, list[str]] = {}
    for i, u in enumerate(out.utterances):
        if not u.text:
            continue
        found = glossary.found(u.text)
        out.hits += [TermHit(t, u.start, u.end, u.channel, "unbiased") for t in found]
        close = [t for t in glossary.terms if t not in found and support(t, u.text, glossary) == "sounds-like"]
        if close:
            near[i] = close
    if not near:
        return out
    todo = list(near)
    readings = reread([out.utterances[i] for i in todo])
    for i, (reading, words) in zip(todo, readings, strict=True):
        u = out.utterances[i]
        biased = glossary.correct(reading).strip()
        gained = [t for t in near[i] if t in glossary.found(biased)]
        unbacked = [t for t in glossary.found(biased) if support(t, u.text, glossary) is None]
        if not gained:
            continue
        if unbacked or syllables(biased) < KEEP_SHARE * syllables(u.text):
            why = f"it also holds {', '.join(unbacked)}" if unbacked else "it says less"
            out.notes.append(f"glossary reading at {u.start:.1f}s not used: {why}")
            continue
        out.utterances[i] = replace(u, text=biased, words=words, flags=(*u.flags, "glossary"))
        out.hits += [TermHit(t, u.start, u.end, u.channel, "sounds-like") for t in gained]
    out.hits.sort(key=lambda h: (h.start, h.channel))
    return out
