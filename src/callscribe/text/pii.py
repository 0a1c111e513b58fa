"""Find and redact personal data in call text: phone numbers, ID numbers, bank cards, e-mail addresses.

Chinese and English. Digits are read however the ASR wrote them (see :mod:`callscribe.text.digit_runs`) and then
checked the way the number itself is built, so that order numbers, prices, dates and amounts stay:

- PHONE: Chinese mobiles ``1[3-9]`` + 9 digits (optionally ``+86``), landlines ``0`` + area code + 7-8 digits,
  400/800 hotlines, North-American numbers (``(555) 123-4567``, ``+1 ...``, spoken digit by digit) and, in English,
  7-digit local numbers.
- ID: 18-character resident ID numbers with a valid birth date and the GB 11643 check character.
- CARD: 15-19 digit card numbers with a valid Luhn check digit and a card-network first digit.
- EMAIL: written addresses and spoken ones ("john dot smith at gmail dot com").

Written digits must come in a grouping people use for that kind of number (``138 0013 8000``, ``4-4-4-4``);
digits spoken one by one may be grouped any way. A number right after an order/tracking/reference cue is left
alone unless a phone cue sits between them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from callscribe.model import Transcript, Utterance, Word
from callscribe.text.digit_runs import DigitRun, digit_runs

PII_KINDS = ("PHONE", "ID", "CARD", "EMAIL")
DEFAULT_MASK = "[{kind}]"
# Seconds added on each side of a redacted stretch of audio: word times from ASR are approximate.
SPAN_PAD_S = 0.15
MAX_DIGITS = 22  # longest digit string one match may hold (a 19-digit card plus a little slack)
CUE_WINDOW = 14  # characters before a number searched for an order/phone cue

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

_MOBILE_GROUPS = {(11,), (3, 4, 4), (3, 8), (4, 3, 4), (3, 3, 5), (7, 4)}
_NANP_GROUPS = {(3, 3, 4)}
_HOTLINE_GROUPS = {(10,), (3, 3, 4), (3, 4, 3)}
_ID_GROUPS = {(18,), (6, 8, 4), (6, 4, 4, 4), (4, 4, 4, 4, 2)}

_EMAIL_RE = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
)
_SPOKEN_EMAIL_RE = re.compile(
    r"(?i)(?<![a-z0-9._-])[a-z0-9][a-z0-9._-]*(?:\s+(?:dot|点)\s+[a-z0-9_-]+)*"
    r"\s*(?:\s(?:at)\s|艾特)\s*"
    r"[a-z0-9-]+(?:\s*(?:\s(?:dot)\s|点|\.)\s*(?:[a-z0-9-]+))*\s*(?:\s(?:dot)\s|点|\.)\s*"
    r"(?:com|cn|net|org|edu|gov|io|co|uk|us|hk|tw)\b"
)
_ORDER_CUE = re.compile(
    r"(?i)(订单|单号|运单|工单|流水号|编号|批次|型号|发票|合同号|"
    r"order|tracking|invoice|reference|\bref\b|confirmation|case|ticket|serial|model|batch|account id)"
)
_PHONE_CUE = re.compile(r"(?i)(电话|手机|号码是|联系|打|phone|call|cell|mobile|reach|text)")


@dataclass(frozen=True)
class PiiMatch:
    """One piece of personal data: its kind and where it sits in the text (``text[start:end]``)."""

    kind: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class PiiSpan:
    """A redacted stretch of a call in seconds, for muting the audio."""

    start: float
    end: float
    kind: str
    channel: int | None = None
    utterance: int | None = None


def find_pii(text: str, language: str | None = None) -> list[PiiMatch]:
    """Every piece of personal data in ``text``, in order, without overlaps."""
    lang = (language or "").lower()[:2] or None
    found = [PiiMatch("EMAIL", m.start(), m.end(), m.group()) for m in _EMAIL_RE.finditer(text)]
    found += [PiiMatch("EMAIL", m.start(), m.end(), m.group()) for m in _SPOKEN_EMAIL_RE.finditer(text)]
    for run in digit_runs(text):
        if run.glued or _after_order_cue(text, run.start):
            continue
        for i, j, kind in _partition(run, lang):
            start, end = run.offsets[i][0], run.offsets[j - 1][1]
            if start > 0 and text[start - 1] == "+":
                start -= 1
            if start > 0 and text[start - 1] in "(（" and any(c in text[start:end] for c in ")）"):
                start -= 1
            found.append(PiiMatch(kind, start, end, text[start:end]))
    return _without_overlaps(found)


def redact_text(text: str, language: str | None = None, mask: str = DEFAULT_MASK) -> str:
    """``text`` with every piece of personal data replaced by ``mask`` (``{kind}`` is filled in)."""
    return _apply(text, find_pii(text, language), mask)


def redact_transcript(t: Transcript, mask: str = DEFAULT_MASK) -> tuple[Transcript, list[PiiSpan]]:
    """Redact every utterance's text and words; return the new transcript and the redacted stretches of time.

    Times come from the words the match covers (padded by ``SPAN_PAD_S``); an utterance without usable word
    times is estimated from the character position within the utterance.
    """
    utterances: list[Utterance] = []
    spans: list[PiiSpan] = []
    for index, u in enumerate(t.utterances):
        matches = find_pii(u.text, u.language or t.language)
        if not matches:
            utterances.append(u)
            continue
        ranges = _word_ranges(u.text, u.words)
        for m in matches:
            start, end = _match_time(u, ranges, m)
            spans.append(PiiSpan(round(start, 3), round(end, 3), m.kind, u.channel, index))
        utterances.append(replace(u, text=_apply(u.text, matches, mask), words=_redact_words(u, ranges, matches, mask)))
    return replace(t, utterances=tuple(utterances)), spans


# --- numbers ---------------------------------------------------------------------------------------------


def _partition(run: DigitRun, lang: str | None) -> list[tuple[int, int, str]]:
    """Cut the run into valid numbers covering as many digits as possible: [(first group, end group, kind)]."""
    n = len(run.groups)
    cuts = [k == 0 or k == n or _can_cut(run, k) for k in range(n + 1)]
    # best[i] = (digits covered from group i on, -numbers used, plan)
    best: list[tuple[int, int, list[tuple[int, int, str]]]] = [(0, 0, [])] * (n + 1)
    for i in range(n - 1, -1, -1):
        choice = best[i + 1]
        if cuts[i]:
            size = 0
            for j in range(i + 1, n + 1):
                size += run.groups[j - 1]
                if size > MAX_DIGITS:
                    break
                if not cuts[j]:
                    continue
                kind = _classify(run, i, j, lang)
                if kind is None:
                    continue
                covered, count, plan = best[j]
                option = (covered + size, count - 1, [(i, j, kind), *plan])
                if option[:2] > choice[:2]:
                    choice = option
        best[i] = choice
    return best[0][2]


def _can_cut(run: DigitRun, k: int) -> bool:
    sep = run.seps[k]
    if sep in (" ", ","):
        return True
    return sep == "" and run.spoken_groups[k - 1] and run.spoken_groups[k]


def _classify(run: DigitRun, i: int, j: int, lang: str | None) -> str | None:
    digits = _digits(run, i, j)
    groups = run.groups[i:j]
    spoken = any(run.spoken_groups[i:j])
    if run.chinese:
        lang = "zh"  # North-American formats are never read out in Chinese numerals
    seps = run.seps[i + 1 : j]
    if "." in seps and (spoken or set(seps) != {"."}):
        return None
    if _is_phone(digits, groups, spoken, lang):
        return "PHONE"
    if _is_id(digits) and (spoken or groups in _ID_GROUPS):
        return "ID"
    if _is_card(digits) and (spoken or _card_groups(groups)):
        return "CARD"
    return None


def _digits(run: DigitRun, i: int, j: int) -> str:
    start = sum(run.groups[:i])
    return run.digits[start : start + sum(run.groups[i:j])]


def _is_phone(d: str, groups: tuple[int, ...], spoken: bool, lang: str | None) -> bool:
    if len(d) < 7 or not d.isdigit():
        return False
    # country prefixes: +86 / 0086 for China, +1 / 1 for North America
    for prefix in ("0086", "86"):
        rest = groups if spoken else groups[1:]
        if (
            d.startswith(prefix)
            and len(d) == len(prefix) + 11
            and (spoken or groups[0] == len(prefix))
            and _is_phone(d[len(prefix) :], rest, spoken, lang)
        ):
            return True
    if len(d) == 11 and re.fullmatch(r"1[3-9]\d{9}", d) and (spoken or groups in _MOBILE_GROUPS):
        return True
    if len(d) == 11 and d[0] == "1" and d[1] in "23456789" and (spoken or groups == (1, 3, 3, 4)):
        return _is_phone(d[1:], groups[1:] if not spoken else groups, spoken, lang)
    if d[0] == "0" and d[1] != "0":
        area = 3 if d[1] in "12" else 4
        local = d[area:]
        if len(local) in (7, 8) and local[0] not in "01":
            rest = groups[1:]
            if spoken or len(groups) == 1 or (groups[0] == area and (len(rest) == 1 or sum(rest) == len(local))):
                return True
    if len(d) == 10 and d[:3] in ("400", "800") and (spoken or groups in _HOTLINE_GROUPS):
        return True
    if len(d) == 10 and d[0] in "23456789" and lang != "zh":
        # spoken digit by digit ("five five five one two three ...") or written (555) 123-4567
        return spoken or groups in _NANP_GROUPS or (groups == (10,) and lang == "en" and d[3] not in "01")
    return len(d) == 7 and d[0] in "23456789" and lang != "zh" and (spoken or groups == (3, 4))


def _is_id(d: str) -> bool:
    if len(d) != 18 or not d[:17].isdigit() or d[0] not in "12345678":
        return False
    year, month, day = int(d[6:10]), int(d[10:12]), int(d[12:14])
    if not (1900 <= year <= 2099 and 1 <= month <= 12 and 1 <= day <= 31):
        return False
    total = sum(int(c) * w for c, w in zip(d[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == d[17].upper()


def _luhn(d: str) -> bool:
    total = 0
    for k, c in enumerate(reversed(d)):
        v = int(c)
        if k % 2:
            v *= 2
            if v > 9:
                v -= 9
        total += v
    return total % 10 == 0


def _is_card(d: str) -> bool:
    if not d.isdigit():
        return False
    if len(d) == 15:
        return d[:2] in ("34", "37") and _luhn(d)
    return 16 <= len(d) <= 19 and d[0] in "3456" and _luhn(d)


def _card_groups(groups: tuple[int, ...]) -> bool:
    if len(groups) == 1 or groups in ((4, 6, 5), (6, 13)):
        return True
    return len(groups) >= 4 and all(g == 4 for g in groups[:-1]) and 1 <= groups[-1] <= 4


def _after_order_cue(text: str, start: int) -> bool:
    window = text[max(0, start - CUE_WINDOW) : start]
    cues = list(_ORDER_CUE.finditer(window))
    if not cues:
        return False
    return not _PHONE_CUE.search(window, cues[-1].end())


def _without_overlaps(found: Sequence[PiiMatch]) -> list[PiiMatch]:
    out: list[PiiMatch] = []
    for m in sorted(found, key=lambda m: (m.start, -(m.end - m.start))):
        if out and m.start < out[-1].end:
            continue
        out.append(m)
    return out


def _apply(text: str, matches: Sequence[PiiMatch], mask: str) -> str:
    pieces: list[str] = []
    pos = 0
    for m in sorted(matches, key=lambda m: m.start):
        pieces.append(text[pos : m.start])
        pieces.append(mask.format(kind=m.kind))
        pos = m.end
    pieces.append(text[pos:])
    return "".join(pieces)


# --- words and times -------------------------------------------------------------------------------------


def _word_ranges(text: str, words: Sequence[Word]) -> list[tuple[int, int] | None]:
    """Where each word's text sits in the utterance text (``None`` where it cannot be found)."""
    ranges: list[tuple[int, int] | None] = []
    pos = 0
    for w in words:
        token = w.text.strip()
        at = text.find(token, pos) if token else -1
        if at < 0 or at - pos > 3 + len(token):
            ranges.append(None)
            continue
        ranges.append((at, at + len(token)))
        pos = at + len(token)
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
            text=lead + _apply(u.text[ws:we], local, mask),
            start=words[first].start,
            end=words[last].end,
            probability=min(probs) if probs else None,
        )
        words[first : last + 1] = [merged]
    return tuple(words)


def redact_audio(source: str | Path, spans: Sequence[PiiSpan], out_path: str | Path) -> None:
    """Write ``out_path`` (WAV): ``source`` with a 1 kHz tone over every span; the input is left as it was."""
    from callscribe.audio_redact import redact_audio as _redact_audio

    _redact_audio(source, spans, out_path)
