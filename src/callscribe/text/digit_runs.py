"""Find runs of digits in text, however they were written or spoken.

ASR output writes the same phone number many ways: ``13800138000``, ``138 0013 8000``, ``幺三八零零幺三八零零零``,
``幺三八，零零幺三，八零零零`` or ``five five five one two three four``. :func:`digit_runs` turns each stretch of
such text into one :class:`DigitRun`: the digits, where the run sits in the text, how written digits were grouped
(``138-0013-8000`` -> ``(3, 4, 4)``), and whether any digit was spoken as a word or a Chinese numeral.

Runs break at anything that is not a digit, a digit word or a separator (space, hyphen, dash, brackets, ``+``).
Commas and ``、`` join spoken digits (ASR punctuates pauses) and written groups, except a ``,`` followed by exactly
three digits (``13,800,138,000`` is an amount); a ``.`` joins only written digit groups (``555.123.4567``) so that the
caller can tell grouping apart from decimals by the group sizes. Written single digits in a row (``5.5.5.2.1.3``,
``2, 1, 3``: how Whisper writes digits read one by one) count as spoken. The check character of an ID number may
follow its digits written (``X``/``x``) or spoken (``叉``, ``艾克斯``, ``ex``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CN_DIGITS = {
    "零": "0",
    "〇": "0",
    "幺": "1",
    "一": "1",
    "二": "2",
    "两": "2",
    "三": "3",
    "四": "4",
    "五": "5",
    "六": "6",
    "七": "7",
    "八": "8",
    "九": "9",
}
EN_DIGITS = {
    "zero": "0",
    "oh": "0",
    "o": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
EN_REPEATS = {"double": 2, "triple": 3}
# "oh" and "o" are zero only after another digit; at the start of a run they are the interjection.
_EN_WEAK = {"oh", "o"}
# How the check character X of an ID number is said; it counts only after this many digits.
X_WORDS = {"x", "ex"}
X_MIN_DIGITS = 14
# Written single digits in a row, at least this many, were read one by one.
SINGLE_DIGIT_RUN = 3

_TOKEN_RE = re.compile(
    r"(?P<num>[0-9０-９]+)"
    r"|(?P<cn>[零〇幺一二三四五六七八九两]+)"
    r"|(?P<x>叉|艾克斯|爱克斯)"
    r"|(?P<word>[A-Za-z]+)"
    r"|(?P<sep>[ \t\u3000\-–—_()（）+]+)"
    r"|(?P<pause>[,，、]\s*)"
    r"|(?P<dot>\.)"
    r"|(?P<other>.)",
    re.DOTALL,
)
_THOUSANDS_RE = re.compile(r"[0-9]{3}(?![0-9])")
_FULLWIDTH = str.maketrans("０１２３４５６７８９", "0123456789")


@dataclass(frozen=True)
class DigitRun:
    """A stretch of text read as digits.

    ``digits`` may end in ``X`` (the check character of a Chinese ID number). ``groups`` holds the sizes of the
    digit groups in order (a spoken digit is its own group of size 1, flagged in ``spoken_groups``) and ``seps``
    the separator before each group (``""`` for the first and for digits that touch). ``glued`` is true when
    letters touch written digits at either end (``SF1234...``, ``123abc``): codes, not numbers.
    """

    digits: str
    start: int
    end: int
    groups: tuple[int, ...]
    seps: tuple[str, ...]
    spoken_groups: tuple[bool, ...]
    chinese: bool = False  # some digits were Chinese numerals
    glued: bool = False
    offsets: tuple[tuple[int, int], ...] = ()  # (start, end) in the text of every group

    @property
    def spoken(self) -> bool:
        return any(self.spoken_groups)


@dataclass
class _Piece:
    digits: str
    start: int
    end: int
    spoken: bool
    sep: str = ""
    weak: bool = False


def digit_runs(text: str, *, words: bool = True, chinese: bool = True) -> list[DigitRun]:
    """Every run of digits in ``text``, in order.

    ``words`` reads English digit words (``five``, ``oh``, ``double``), ``chinese`` reads Chinese numerals
    (including ``幺`` for one); written digits (ASCII or full-width) are always read.
    """
    runs: list[DigitRun] = []
    pieces: list[_Piece] = []
    sep = ""
    repeat = 1

    def flush() -> None:
        nonlocal pieces, sep, repeat
        run = _close(text, pieces)
        if run is not None:
            runs.append(run)
        pieces, sep, repeat = [], "", 1

    def add(piece: _Piece) -> None:
        nonlocal sep
        piece.sep = sep if pieces else ""
        pieces.append(piece)
        sep = ""

    for m in _TOKEN_RE.finditer(text):
        kind = m.lastgroup or "other"
        tok = m.group()
        last = pieces[-1] if pieces else None
        count = sum(len(p.digits) for p in pieces)
        if kind == "num":
            add(_Piece(tok.translate(_FULLWIDTH), m.start(), m.end(), spoken=False))
        elif kind == "x" or (kind == "word" and tok.lower() in X_WORDS and not _touches_written(last, m.start())):
            if count >= X_MIN_DIGITS and "X" not in "".join(p.digits for p in pieces):
                add(_Piece("X", m.start(), m.end(), spoken=True))
            else:
                flush()
        elif kind == "cn" and chinese:
            if last is not None and sep == ".":
                flush()
            add(_Piece("".join(CN_DIGITS[c] for c in tok), m.start(), m.end(), spoken=True))
        elif kind == "word":
            low = tok.lower()
            touching = last is not None and last.end == m.start() and not last.spoken
            if touching and low == "x" and count >= X_MIN_DIGITS and not _alnum_at(text, m.end()):
                # the check character of an ID number ("11010519491231002X")
                last.digits += "X"
                last.end = m.end()
            elif words and not touching and low in EN_REPEATS:
                repeat = EN_REPEATS[low]
            elif words and not touching and low in EN_DIGITS and (last is None or last.spoken or sep):
                add(_Piece(EN_DIGITS[low] * repeat, m.start(), m.end(), spoken=True, weak=low in _EN_WEAK))
                repeat = 1
            else:
                flush()
        elif kind == "sep":
            sep = tok.strip()[:1] or " "
        elif kind == "pause":
            if last is not None and not last.spoken and tok[0] == "," and _THOUSANDS_RE.match(text, m.end()):
                flush()  # "13,800,138,000" is an amount
            else:
                sep = ","
        elif kind == "dot":
            if last is not None and not last.spoken and not sep:
                sep = "."
            else:
                flush()
        else:
            flush()
    flush()
    return runs


def _close(text: str, pieces: list[_Piece]) -> DigitRun | None:
    # Trim the interjection "oh" at the start: "oh, five five five ..." is not a leading zero.
    while pieces and pieces[0].weak:
        pieces = pieces[1:]
    if not pieces:
        return None
    _single_digits_as_spoken(pieces)
    groups: list[int] = []
    seps: list[str] = []
    spoken: list[bool] = []
    offsets: list[tuple[int, int]] = []
    for i, p in enumerate(pieces):
        if p.spoken and p.start != p.end and len(p.digits) > 1 and _is_cn(text[p.start]):
            # one group per Chinese numeral
            for k in range(len(p.digits)):
                groups.append(1)
                seps.append((p.sep if i else "") if k == 0 else "")
                spoken.append(True)
                offsets.append((p.start + k, p.start + k + 1))
            continue
        groups.append(len(p.digits))
        seps.append(p.sep if i else "")
        spoken.append(p.spoken)
        offsets.append((p.start, p.end))
    first, final = pieces[0], pieces[-1]
    glued = (not first.spoken and _letter_at(text, first.start - 1)) or (
        not final.spoken and _letter_at(text, final.end)
    )
    return DigitRun(
        digits="".join(p.digits for p in pieces),
        start=first.start,
        end=final.end,
        groups=tuple(groups),
        seps=tuple(seps),
        spoken_groups=tuple(spoken),
        chinese=any(_is_cn(text[p.start]) for p in pieces if p.spoken),
        glued=glued,
        offsets=tuple(offsets),
    )


def _touches_written(last: _Piece | None, at: int) -> bool:
    return last is not None and last.end == at and not last.spoken


def _is_cn(ch: str) -> bool:
    return ch in CN_DIGITS


def _letter_at(text: str, i: int) -> bool:
    return 0 <= i < len(text) and text[i].isascii() and text[i].isalpha()


def _alnum_at(text: str, i: int) -> bool:
    return 0 <= i < len(text) and text[i].isascii() and text[i].isalnum()


def _single_digits_as_spoken(pieces: list[_Piece]) -> None:
    """Mark written single digits in a row (``5.5.5.2``, ``2, 1, 3``) as spoken; their dots are pauses."""
    k = 0
    while k < len(pieces):
        end = k
        while end < len(pieces) and not pieces[end].spoken and len(pieces[end].digits) == 1:
            end += 1
        if end - k >= SINGLE_DIGIT_RUN:
            for i in range(k, end):
                pieces[i].spoken = True
                if i > k and pieces[i].sep == ".":
                    pieces[i].sep = ","
        k = max(end, k + 1)
