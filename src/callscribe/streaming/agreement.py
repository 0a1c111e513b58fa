"""The stable prefix of an open turn: what two consecutive hypotheses of the same audio agree on.

Each re-decode of a growing turn gives a hypothesis; the words at its end are the least certain (the audio may
stop mid-word). Like LocalAgreement-2, a partial shows only the leading tokens the last two hypotheses share.
Tokens are Chinese/Japanese characters one by one and runs of other letters and digits; case and punctuation do not
count, so "好的，" and "好的" agree. The prefix is cut from the newer hypothesis, keeping its spelling.
"""

from __future__ import annotations

import re

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+")


def tokens(text: str) -> list[tuple[str, int]]:
    """``(normalised token, end offset in text)`` for every token of ``text``."""
    return [(m.group().casefold(), m.end()) for m in _TOKEN.finditer(text)]


def stable_prefix(previous: str, current: str) -> str:
    """The part of ``current`` up to the last token it shares, in order from the start, with ``previous``."""
    a, b = tokens(previous), tokens(current)
    end = 0
    for (x, _), (y, y_end) in zip(a, b, strict=False):
        if x != y:
            break
        end = y_end
    return current[:end].strip()


def tail_after(prefix: str, text: str) -> str:
    """What ``text`` says after ``prefix`` (which it starts with), without leading spaces."""
    return text[len(prefix) :].strip() if text.startswith(prefix) else text.strip()
