"""Find and redact personal data in call text: phone numbers, ID numbers, bank cards, e-mail addresses.

Chinese and English. Digits are read however the ASR wrote them (see :mod:`callscribe.text.digit_runs`) and then
checked the way the number itself is built, so that order numbers, prices, dates and amounts stay:

- PHONE: Chinese mobiles ``1[3-9]`` + 9 digits (optionally ``+86``), landlines ``0`` + area code + 7-8 digits,
  400/800 hotlines, North-American numbers (``(555) 123-4567``, ``+1 ...``, spoken digit by digit) and, in English,
  7-digit local numbers.
- ID: 18-character resident ID numbers (region code, birth date, GB 11643 check character), written whole or
  grouped (``110105 19491231 002X``), spoken digit by digit, with the check character X written or spoken
  (``叉``, ``艾克斯``, ``ex``).
- CARD: 15-19 digit card numbers with a valid Luhn check digit and a card-network first digit.
- EMAIL: written addresses, spoken ones ("john dot smith at gmail dot com") and ones whose "at" the ASR glued to a
  well-known mail domain ("john.smithatgmail.com").

Written digits must come in a grouping people use for that kind of number (``138 0013 8000``, ``4-4-4-4``);
digits spoken one by one may be grouped any way. A number right after an order/tracking/reference cue is left
alone unless a phone, ID or card cue sits between them.

A number whose check character fails (one digit misheard) is still masked when it is plainly an ID (region and
birth date valid) or follows an ID/card cue ("身份证", "卡号"): such a match has ``verified=False``. Masks are
templates whose only field is ``{kind}``; :func:`validate_mask` checks one up front.
:func:`redact_transcript` also finds numbers that one party reads across two utterances (a pause mid-number).
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from callscribe.text.digit_runs import DigitRun, digit_runs
from callscribe.text.pii_numbers import number_kinds

if TYPE_CHECKING:
    from callscribe.model import Transcript

PII_KINDS = ("PHONE", "ID", "CARD", "EMAIL")
DEFAULT_MASK = "[{kind}]"
MASK_FIELDS = ("kind",)
# Seconds added on each side of a redacted stretch of audio: word times from ASR are approximate.
SPAN_PAD_S = 0.15
CUE_WINDOW = 14  # characters before a number searched for an order/phone/ID/card cue

_EMAIL_RE = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
)
_SPOKEN_EMAIL_RE = re.compile(
    r"(?i)(?<![a-z0-9._-])[a-z0-9][a-z0-9._-]*(?:\s+(?:dot|点)\s+[a-z0-9_-]+)*"
    r"\s*(?:\s(?:at)\s|艾特)\s*"
    r"[a-z0-9-]+(?:\s*(?:\s(?:dot)\s|点|\.)\s*(?:[a-z0-9-]+))*\s*(?:\s(?:dot)\s|点|\.)\s*"
    r"(?:com|cn|net|org|edu|gov|io|co|uk|us|hk|tw)\b"
)
# "john.smithatgmail.com": ASR glued the spoken "at" to a well-known mail domain
_GLUED_EMAIL_RE = re.compile(
    r"(?i)(?<![a-z0-9._-])[a-z0-9][a-z0-9._-]*?at"
    r"(?:gmail|googlemail|qq|163|126|yeah|sina|sohu|aliyun|foxmail|hotmail|outlook|live|msn|yahoo|icloud|proton)"
    r"(?:\.|\s+dot\s+|点)(?:com|cn|net)(?:\.cn)?\b"
)
_ORDER_CUE = re.compile(
    r"(?i)(订单|单号|运单|工单|流水号|编号|批次|型号|发票|合同号|"
    r"order|tracking|invoice|reference|\bref\b|confirmation|case|ticket|serial|model|batch|account id)"
)
_PHONE_CUE = re.compile(r"(?i)(电话|手机|号码是|联系|打|phone|call|cell|mobile|reach|text)")
_ID_CUE = re.compile(r"(?i)(身份证|证件号|\bID\b|identity|identification)")
_CARD_CUE = re.compile(r"(?i)(卡|card)")
# Digits read slowly, one by one, that Whisper wrote with dots between them and sometimes grouped a few
# ("5.5.5.867.5.309"): four or more groups of 1-4 digits joined by single dots, at least two of them single digits.
_DOTTED_RE = re.compile(r"(?<![0-9.])[0-9]{1,4}(?:\.[0-9]{1,4}){3,}(?![0-9]|\.[0-9])")
DOTTED_MIN_SINGLES = 2


@dataclass(frozen=True)
class PiiMatch:
    """One piece of personal data: its kind and where it sits in the text (``text[start:end]``).

    ``verified`` is false for an ID or card number whose check digit fails (masked all the same: a number read
    out with one digit misheard still gives the rest away).
    """

    kind: str
    start: int
    end: int
    text: str
    verified: bool = True


@dataclass(frozen=True)
class PiiSpan:
    """A redacted stretch of a call in seconds, for muting the audio."""

    start: float
    end: float
    kind: str
    channel: int | None = None
    utterance: int | None = None


def validate_mask(template: str) -> None:
    """Raise ``ValueError`` (one line) unless ``template`` is a usable mask: text with at most ``{kind}`` in it."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
        if any(f not in MASK_FIELDS for f in fields):
            raise KeyError(fields)
        template.format(kind="PHONE")
    except (KeyError, IndexError, ValueError, AttributeError, TypeError):
        raise ValueError(
            f"mask {template!r} is not usable: the only field it may hold is {{kind}} (PHONE, ID, CARD or "
            "EMAIL); write {{ and }} for literal braces"
        ) from None


def find_pii(text: str, language: str | None = None) -> list[PiiMatch]:
    """Every piece of personal data in ``text``, in order, without overlaps."""
    lang = (language or "").lower()[:2] or None
    found = [PiiMatch("EMAIL", m.start(), m.end(), m.group()) for m in _EMAIL_RE.finditer(text)]
    found += [PiiMatch("EMAIL", m.start(), m.end(), m.group()) for m in _SPOKEN_EMAIL_RE.finditer(text)]
    found += [PiiMatch("EMAIL", m.start(), m.end(), m.group()) for m in _GLUED_EMAIL_RE.finditer(text)]
    for run in digit_runs(text):
        cue = _cue(text, run.start)
        if run.glued or cue == "ORDER":
            continue
        for i, j, kind, verified in number_kinds(run, lang, cue):
            start, end = run.offsets[i][0], run.offsets[j - 1][1]
            if start > 0 and text[start - 1] == "+":
                start -= 1
            if start > 0 and text[start - 1] in "(（" and any(c in text[start:end] for c in ")）"):
                start -= 1
            found.append(PiiMatch(kind, start, end, text[start:end], verified))
    found += _dotted_numbers(text, lang)
    return _without_overlaps(found)


def _dotted_numbers(text: str, lang: str | None) -> list[PiiMatch]:
    """Numbers read digit by digit and written as dotted groups (``5.5.5.867.5.309``): the digits are checked as
    spoken digits, which may be grouped any way. Decimals (``3.5``) and version numbers (``3.11.4``) have too few
    groups; an IP address (four groups of 0-255) is left alone."""
    found = []
    for m in _DOTTED_RE.finditer(text):
        groups = m.group().split(".")
        if sum(len(g) == 1 for g in groups) < DOTTED_MIN_SINGLES or _ip_address(groups):
            continue
        cue = _cue(text, m.start())
        if cue == "ORDER":
            continue
        offsets = tuple((m.start() + k, m.start() + k + 1) for k, ch in enumerate(m.group()) if ch != ".")
        n = len(offsets)
        run = DigitRun(digits="".join(groups), start=m.start(), end=m.end(), groups=(1,) * n,
                       seps=("", *([","] * (n - 1))), spoken_groups=(True,) * n, offsets=offsets)  # fmt: skip
        for i, j, kind, verified in number_kinds(run, lang, cue):
            start, end = offsets[i][0], offsets[j - 1][1]
            found.append(PiiMatch(kind, start, end, text[start:end], verified))
    return found


def _ip_address(groups: Sequence[str]) -> bool:
    return len(groups) == 4 and all(len(g) <= 3 and int(g) <= 255 for g in groups)


def redact_text(text: str, language: str | None = None, mask: str = DEFAULT_MASK) -> str:
    """``text`` with every piece of personal data replaced by ``mask`` (``{kind}`` is filled in)."""
    validate_mask(mask)
    return apply_mask(text, find_pii(text, language), mask)


def redact_transcript(t: Transcript, mask: str = DEFAULT_MASK) -> tuple[Transcript, list[PiiSpan]]:
    """Redact every utterance's text and words (and the quotes in speaker evidence); return the new transcript
    and the redacted stretches of time.

    A number one party reads across a pause that split it into two utterances is found and masked in both.
    Times come from the words a match covers (padded by ``SPAN_PAD_S``); an utterance without usable word
    times is estimated from the character position within the utterance.
    """
    from callscribe.text.pii_transcript import redact_transcript as _redact

    validate_mask(mask)
    return _redact(t, mask)


def _cue(text: str, start: int) -> str | None:
    """What the words just before ``start`` announce: ``ORDER`` (leave the number), ``ID``, ``CARD``, ``PHONE``."""
    window = text[max(0, start - CUE_WINDOW) : start]
    hits = sorted(
        (m.end(), kind != "ORDER", m.start(), kind, m.group())
        for kind, pattern in (("ORDER", _ORDER_CUE), ("PHONE", _PHONE_CUE), ("ID", _ID_CUE), ("CARD", _CARD_CUE))
        for m in pattern.finditer(window)
    )
    last: tuple[int, str] | None = None
    covered = 0
    for end, _, begin, kind, word in hits:
        overlaps, covered = begin < covered, max(covered, end)
        if overlaps and last is not None:
            continue  # overlaps the cue before it ("订单号码是" is an order cue)
        if kind == "PHONE" and word == "号码是" and last is not None and last[1] in ("ID", "CARD"):
            continue  # "身份证号码是"
        last = (end, kind)
    return last[1] if last else None


def _without_overlaps(found: Sequence[PiiMatch]) -> list[PiiMatch]:
    out: list[PiiMatch] = []
    for m in sorted(found, key=lambda m: (m.start, -(m.end - m.start))):
        if out and m.start < out[-1].end:
            continue
        out.append(m)
    return out


def apply_mask(text: str, matches: Sequence[PiiMatch], mask: str) -> str:
    """``text`` with each match replaced by ``mask`` filled with its kind."""
    pieces: list[str] = []
    pos = 0
    for m in sorted(matches, key=lambda m: m.start):
        pieces.append(text[pos : m.start])
        pieces.append(mask.format(kind=m.kind))
        pos = m.end
    pieces.append(text[pos:])
    return "".join(pieces)


def redact_audio(source: str | Path, spans: Sequence[PiiSpan], out_path: str | Path) -> None:
    """Write ``out_path`` (WAV): ``source`` with a 1 kHz tone over every span; the input is left as it was."""
    from callscribe.audio_redact import redact_audio as _redact_audio

    _redact_audio(source, spans, out_path)
