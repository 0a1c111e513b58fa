"""Redaction of live text: every event is masked before it leaves the server, including numbers not yet finished.

A stored call is redacted whole (:func:`callscribe.text.pii.redact_transcript`, which also joins a number one party
reads across a pause). A live event cannot wait for the rest of the call, so besides what
:func:`~callscribe.text.pii.find_pii` finds it masks, as ``[NUMBER]``, a run of at least ``OPEN_DIGITS`` digits
(written or spoken) that may still be growing into a phone, ID or card number: one at the end of a partial or a
final, one at the start of a final that follows a final of the same party ending in digits, and any run of
``LONG_DIGITS`` or more that the detector does not recognise (a misheard grouping hides a phone number from it).
A token with ``@``
in it is masked as ``[EMAIL]`` while the address may be incomplete. Words are masked with the text: a word that
touches a masked stretch becomes the mask; when the words cannot be placed in the text they are left out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from callscribe.model import Word
from callscribe.text.digit_runs import digit_runs
from callscribe.text.pii import DEFAULT_MASK, PiiMatch, apply_mask, find_pii

OPEN_DIGITS = 3
LONG_DIGITS = 7  # a run this long is masked wherever it is: a phone's worth of digits in a grouping the detector
# does not take for one ("5.5.5.867.5.309") is still someone's number
NUMBER = "NUMBER"
_TAIL = re.compile(r"[\s,，。.、;；:：!?！？…~～\-—]*$")
_HEAD = re.compile(r"^[\s,，。.、;；:：…~～\-—]*")
_AT_TOKEN = re.compile(r"\S*@\S*")


def live_matches(text: str, language: str | None, *, open_tail: bool = True, open_head: bool = False) -> list[PiiMatch]:
    """What a live event must mask in ``text`` (see the module docstring), in order, without overlaps."""
    found = find_pii(text, language)
    tail = _TAIL.search(text).start()  # type: ignore[union-attr]
    head = _HEAD.match(text).end()  # type: ignore[union-attr]
    for run in digit_runs(text):
        if len(run.digits) < OPEN_DIGITS:
            continue
        long = len(run.digits) >= LONG_DIGITS  # glued to letters too: a misheard last digit ("530i") is no code
        if long or (open_tail and run.end >= tail) or (open_head and run.start <= head):
            found.append(PiiMatch(NUMBER, run.start, run.end, text[run.start : run.end], verified=False))
    if open_tail:
        found += [PiiMatch("EMAIL", m.start(), m.end(), m.group(), False) for m in _AT_TOKEN.finditer(text)]
    merged: list[PiiMatch] = []
    for m in sorted(found, key=lambda m: (m.start, -(m.end - m.start))):
        if merged and m.start < merged[-1].end:
            if m.end > merged[-1].end:
                last = merged[-1]
                merged[-1] = replace(last, end=m.end, text=text[last.start : m.end])
            continue
        merged.append(m)
    return merged


def ends_in_digits(text: str) -> bool:
    """Whether ``text`` ends (before punctuation) in a run of digits that a next utterance could continue."""
    runs = digit_runs(text)
    return bool(runs) and runs[-1].end >= _TAIL.search(text).start()  # type: ignore[union-attr]


def _word_ranges(text: str, words: Sequence[Word]) -> list[tuple[int, int]] | None:
    """Where each word sits in ``text`` (in order), or None when one cannot be found."""
    low, pos, out = text.casefold(), 0, []
    for w in words:
        piece = w.text.strip().casefold()
        if not piece:
            out.append((pos, pos))
            continue
        at = low.find(piece, pos)
        if at < 0:
            return None
        out.append((at, at + len(piece)))
        pos = at + len(piece)
    return out


def mask_words(
    text: str, words: Sequence[Word], matches: Sequence[PiiMatch], mask: str = DEFAULT_MASK
) -> tuple[Word, ...]:
    """``words`` with every word touching a match replaced by the mask (one mask word per match)."""
    if not matches:
        return tuple(words)
    ranges = _word_ranges(text, words)
    if ranges is None:
        return ()
    out: list[Word] = []
    used: dict[int, int] = {}  # match index -> position of its mask word in out
    for w, (a, b) in zip(words, ranges, strict=True):
        hit = next((k for k, m in enumerate(matches) if a < m.end and m.start < max(b, a + 1)), None)
        if hit is None:
            out.append(w)
        elif hit in used:
            kept = out[used[hit]]
            out[used[hit]] = replace(kept, end=max(kept.end, w.end))
        else:
            used[hit] = len(out)
            out.append(Word(mask.format(kind=matches[hit].kind), w.start, w.end, None))
    return tuple(out)


def mask_live(
    text: str,
    words: Sequence[Word] = (),
    language: str | None = None,
    *,
    open_tail: bool = True,
    open_head: bool = False,
    mask: str = DEFAULT_MASK,
) -> tuple[str, tuple[Word, ...], tuple[str, ...]]:
    """``(masked text, masked words, kinds masked)``."""
    matches = live_matches(text, language, open_tail=open_tail, open_head=open_head)
    if not matches:
        return text, tuple(words), ()
    return apply_mask(text, matches, mask), mask_words(text, words, matches, mask), tuple(m.kind for m in matches)


def mask_split(text: str, cut: int, language: str | None, mask: str = DEFAULT_MASK) -> tuple[str, str]:
    """A hypothesis masked as one text, then split at ``cut`` into (stable, unstable); a mask that straddles the cut
    goes wholly to the unstable side."""
    matches = live_matches(text, language, open_tail=True)
    for m in matches:
        if m.start < cut < m.end:
            cut = m.start
    before = [m for m in matches if m.end <= cut]
    after = [replace(m, start=m.start - cut, end=m.end - cut) for m in matches if m.start >= cut]
    return apply_mask(text[:cut], before, mask).strip(), apply_mask(text[cut:], after, mask).strip()
