"""Redact a whole transcript: every utterance's text and words, numbers split across utterances, speaker evidence.

A party often reads a number with a pause in it ("138 0012" ... "3456"), and the speech map cuts the utterance
there. An utterance whose text ends in digits is joined with the same party's next utterance when that one starts
with digits within ``MAX_JOIN_GAP_S``; the joined text is searched as one, and each part of a number found across
the join is masked in the utterance it sits in.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from callscribe.model import Transcript, Utterance, Word
from callscribe.text.digit_runs import digit_runs
from callscribe.text.pii import SPAN_PAD_S, PiiMatch, PiiSpan, apply_mask, find_pii

# Longest pause between two utterances of one party across which a number is read on.
MAX_JOIN_GAP_S = 4.0
_TAIL = re.compile(r"[\s,，。.、;；:：!?！？…~～\-—]*$")
_HEAD = re.compile(r"(?i)(?:[\s,，。.、;；:：…~～\-—]|嗯|呃|额|啊|哦|\b(?:uh|um|er|oh|and|then)\b)*")
_X_HEAD = re.compile(r"(?i)(?:叉|艾克斯|爱克斯|x\b|ex\b)")


def find_transcript_pii(t: Transcript) -> dict[int, list[PiiMatch]]:
    """Personal data in each utterance (by index), numbers read on across utterances included."""
    found: dict[int, list[PiiMatch]] = {}
    for segment in _segments(t.utterances):
        first = t.utterances[segment[0]]
        language = first.language or t.language
        if len(segment) == 1:
            found[segment[0]] = find_pii(first.text, language)
            continue
        for index, matches in _find_across(t.utterances, segment, language).items():
            found[index] = matches
    return found


def redact_transcript(t: Transcript, mask: str) -> tuple[Transcript, list[PiiSpan]]:
    """See :func:`callscribe.text.pii.redact_transcript` (which checks ``mask`` first)."""
    found = find_transcript_pii(t)
    utterances: list[Utterance] = []
    spans: list[PiiSpan] = []
    for index, u in enumerate(t.utterances):
        matches = found.get(index, [])
        if not matches:
            utterances.append(u)
            continue
        ranges = _word_ranges(u.text, u.words)
        times = [_match_time(u, ranges, m) for m in matches]
        spans += [
            PiiSpan(round(a, 3), round(b, 3), m.kind, u.channel, index)
            for m, (a, b) in zip(matches, times, strict=True)
        ]
        words = _redact_words(u, ranges, matches, mask)
        words = _mask_unplaced_words(words, u.words, ranges, matches, times, mask)
        utterances.append(replace(u, text=apply_mask(u.text, matches, mask), words=words))
    speakers = tuple(
        replace(s, evidence=tuple(apply_mask(e, find_pii(e, t.language), mask) for e in s.evidence)) for s in t.speakers
    )
    return replace(t, utterances=tuple(utterances), speakers=speakers), spans


# --- numbers across utterances ----------------------------------------------------------------------------


def _party(u: Utterance) -> str:
    return u.speaker if u.speaker is not None else f"channel {u.channel}"


def _ends_in_digits(text: str) -> bool:
    runs = digit_runs(text)
    return bool(runs) and runs[-1].end == _TAIL.search(text).start()  # type: ignore[union-attr]


def _head(text: str) -> int:
    """Where the words of ``text`` start once leading pauses and fillers are skipped."""
    return _HEAD.match(text).end()  # type: ignore[union-attr]


def _starts_with_digits(text: str) -> bool:
    at = _head(text)
    runs = digit_runs(text)
    return (bool(runs) and runs[0].start == at) or bool(_X_HEAD.match(text, at))


def _segments(utterances: Sequence[Utterance]) -> list[list[int]]:
    """Indices of utterances grouped where a number runs on into the same party's next utterance."""
    following: dict[int, int] = {}
    for a, u in enumerate(utterances):
        if not _ends_in_digits(u.text):
            continue
        for b in range(a + 1, len(utterances)):
            v = utterances[b]
            if _party(v) != _party(u):
                continue
            if v.start - u.end <= MAX_JOIN_GAP_S and _starts_with_digits(v.text):
                following[a] = b
            break
    joined = set(following.values())
    segments = []
    for a in range(len(utterances)):
        if a in joined:
            continue
        chain = [a]
        while chain[-1] in following:
            chain.append(following[chain[-1]])
        segments.append(chain)
    return segments


def _find_across(
    utterances: Sequence[Utterance], segment: list[int], language: str | None
) -> dict[int, list[PiiMatch]]:
    """Search the utterances of ``segment`` as one text; each match is cut at the joins."""
    views: list[str] = []
    for k, index in enumerate(segment):
        text = utterances[index].text
        if k + 1 < len(segment):  # pauses after the digits become a plain gap between digit groups
            cut = _TAIL.search(text).start()  # type: ignore[union-attr]
            text = text[:cut] + " " * (len(text) - cut)
        if k > 0:
            cut = _head(text)
            text = " " * cut + text[cut:]
        views.append(text)
    offsets = []
    pos = 0
    for view in views:
        offsets.append(pos)
        pos += len(view) + 1
    out: dict[int, list[PiiMatch]] = {index: [] for index in segment}
    for m in find_pii(" ".join(views), language):
        for index, view, offset in zip(segment, views, offsets, strict=True):
            lo, hi = max(m.start, offset) - offset, min(m.end, offset + len(view)) - offset
            while lo < hi and view[lo].isspace():
                lo += 1
            while hi > lo and view[hi - 1].isspace():
                hi -= 1
            if lo < hi:
                text = utterances[index].text
                out[index].append(PiiMatch(m.kind, lo, hi, text[lo:hi], m.verified))
    return out


# --- words and times -------------------------------------------------------------------------------------


def _word_ranges(text: str, words: Sequence[Word]) -> list[tuple[int, int] | None]:
    """Where each word's text sits in the utterance text (``None`` where it cannot be found)."""
    ranges: list[tuple[int, int] | None] = []
    pos = 0
    skipped = 0  # characters of the words since the last one placed: the text may hold them in another form
    for w in words:
        token = w.text.strip()
        at = text.find(token, pos) if token else -1
        if at < 0 or at - pos > 3 + len(token) + skipped:
            ranges.append(None)
            skipped += len(token)
            continue
        ranges.append((at, at + len(token)))
        pos, skipped = at + len(token), 0
    return ranges


def _covered(ranges: Sequence[tuple[int, int] | None], start: int, end: int) -> list[int]:
    return [k for k, r in enumerate(ranges) if r is not None and r[0] < end and start < r[1]]


def _match_time(u: Utterance, ranges: Sequence[tuple[int, int] | None], m: PiiMatch) -> tuple[float, float]:
    covered = _covered(ranges, m.start, m.end)
    if covered:
        start = min(u.words[k].start for k in covered)
        end = max(u.words[k].end for k in covered)
    else:
        # no word times: place the match by its share of the characters
        length = max(len(u.text), 1)
        start = u.start + u.duration * m.start / length
        end = u.start + u.duration * m.end / length
    return max(u.start, start - SPAN_PAD_S), min(u.end, end + SPAN_PAD_S) if u.end > 0 else end + SPAN_PAD_S


def _redact_words(
    u: Utterance, ranges: Sequence[tuple[int, int] | None], matches: Sequence[PiiMatch], mask: str
) -> tuple[Word, ...]:
    if not u.words:
        return ()
    # group the words each match covers; matches that share a word share the group
    groups: list[tuple[int, int, list[PiiMatch]]] = []
    for m in matches:
        covered = _covered(ranges, m.start, m.end)
        if not covered:
            continue
        first, last = covered[0], covered[-1]
        if groups and first <= groups[-1][1]:
            a, _, ms = groups[-1]
            groups[-1] = (a, max(last, groups[-1][1]), [*ms, m])
        else:
            groups.append((first, last, [m]))
    words = list(u.words)
    for first, last, ms in reversed(groups):
        lo = ranges[first]
        hi = ranges[last]
        assert lo is not None and hi is not None
        ws, we = lo[0], hi[1]
        local = [PiiMatch(m.kind, max(m.start, ws) - ws, min(m.end, we) - ws, m.text) for m in ms]
        lead = words[first].text[: len(words[first].text) - len(words[first].text.lstrip())]
        probs = [w.probability for w in words[first : last + 1] if w.probability is not None]
        merged = Word(
            text=lead + apply_mask(u.text[ws:we], local, mask),
            start=words[first].start,
            end=words[last].end,
            probability=min(probs) if probs else None,
        )
        words[first : last + 1] = [merged]
    return tuple(words)


def _mask_unplaced_words(
    words: tuple[Word, ...],
    original: Sequence[Word],
    ranges: Sequence[tuple[int, int] | None],
    matches: Sequence[PiiMatch],
    times: Sequence[tuple[float, float]],
    mask: str,
) -> tuple[Word, ...]:
    """Mask words whose text could not be placed in the utterance text but which were said during a match."""
    unplaced = {(w.text, w.start, w.end) for w, r in zip(original, ranges, strict=True) if r is None}
    if not unplaced:
        return words
    out = []
    for w in words:
        hit = next((m for m, (a, b) in zip(matches, times, strict=True) if w.start < b and a < w.end), None)
        if hit is not None and (w.text, w.start, w.end) in unplaced:
            lead = w.text[: len(w.text) - len(w.text.lstrip())]
            w = replace(w, text=lead + mask.format(kind=hit.kind))
        out.append(w)
    return tuple(out)
