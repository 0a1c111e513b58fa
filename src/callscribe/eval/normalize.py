"""Text normalisation before scoring: a small pipeline of named steps.

Reference transcripts and engine output disagree on things that are not recognition errors: punctuation,
full-width forms, traditional vs simplified characters, ``二十六年`` vs ``26年``, ``eighteen thirteen``
vs ``1813``, ``don't`` vs ``do not``. Each step below removes one such difference; :class:`Normalizer`
runs a chosen list of them in a fixed order. The same normaliser is always applied to both sides.

Canonical forms: simplified characters, lower case, Arabic digits (Chinese numerals through cn2an, English
number words through Whisper's English number normaliser), expanded contractions, American spelling, no
punctuation.
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from callscribe.model import is_cjk

STEP_ORDER = (
    "width",
    "tags",
    "t2s",
    "lower",
    "contractions",
    "fillers",
    "punct",
    "numbers",
    "spelling",
    "spaces",
)
"""Every step, in the order a pipeline applies them."""

DEFAULT_STEPS = tuple(s for s in STEP_ORDER if s != "fillers")
"""Steps on by default: everything except filler removal."""

ZH_FILLERS = "嗯呃啊"
"""Hesitations and interjections the fillers step drops wherever they stand."""

# 额 is a filler on its own but part of many words (金额 amount, 余额 balance, 额度 limit): keep it there.
_ZH_E_FILLER = re.compile(r"(?<![金余限份数定名超差总配巨面税前])额(?![度外头定])")
_ZH_FILLERS = re.compile(f"[{ZH_FILLERS}]")
_EN_FILLERS = re.compile(r"\b(?:u+m+|u+h+|e+r+m*|h+m+|m+h*m+|a+h+)\b")

_QUOTES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'", "“": '"', "”": '"'})
_TAGS = re.compile(r"\[[^\]]*\]|<[^>]*>")

# Contractions that a plain rule gets wrong, then the plain rules. "'s" is expanded only after pronouns and
# question words: after a noun it is a possessive ("the fellow's hat") and must stay as it is.
_CONTRACTIONS = (
    (re.compile(r"\bwon't\b"), "will not"),
    (re.compile(r"\bcan't\b"), "can not"),
    (re.compile(r"\bcannot\b"), "can not"),
    (re.compile(r"\bshan't\b"), "shall not"),
    (re.compile(r"\bain't\b"), "is not"),
    (re.compile(r"\blet's\b"), "let us"),
    (re.compile(r"\by'all\b"), "you all"),
    (re.compile(r"\bgonna\b"), "going to"),
    (re.compile(r"\bwanna\b"), "want to"),
    (re.compile(r"\bgotta\b"), "got to"),
    (re.compile(r"n't\b"), " not"),
    (re.compile(r"'re\b"), " are"),
    (re.compile(r"'ve\b"), " have"),
    (re.compile(r"'ll\b"), " will"),
    (re.compile(r"'d\b"), " would"),
    (re.compile(r"\bi'm\b"), "i am"),
    (re.compile(r"\b(it|that|what|he|she|there|here|who|where|how|when|why|this)'s\b"), r"\1 is"),
    (re.compile(r"\bmr\b\.?"), "mister"),
    (re.compile(r"\bmrs\b\.?"), "missus"),
    (re.compile(r"\bms\b\.?"), "miss"),
    (re.compile(r"\bdr\b\.?"), "doctor"),
)
_CONTRACTION_HINT = re.compile(r"'|gonna|wanna|gotta|cannot|\bmr|\bms\b|\bdr\b")

# Words next to which "oh" is read as the digit zero ("four two oh seven"), not as an interjection.
_NUMBER_WORDS = frozenset(
    (
        *("zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"),
        *("eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen"),
        *("nineteen", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"),
        *("hundred", "thousand"),
    )
)
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_WORD_HYPHEN = re.compile(r"(?<=[^\W\d_])-(?=[^\W\d_])")
_DIGIT_GROUPS = re.compile(r"(?<=\d)[ -]+(?=\d)")
_NUMERIC_KEEP = "%$€£¢¥.'"


def _width(text: str) -> str:
    """Full-width to half-width and compatibility forms (NFKC); curly quotes to straight ones."""
    return unicodedata.normalize("NFKC", text).translate(_QUOTES)


def _tags(text: str) -> str:
    """Drop bracketed annotations such as ``[noise]``, ``[left]`` or ``<unk>``."""
    return _TAGS.sub(" ", text)


@lru_cache(maxsize=1)
def _t2s_converter() -> Callable[[str], str]:
    import opencc

    return opencc.OpenCC("t2s").convert


def _t2s(text: str) -> str:
    """Traditional to simplified Chinese (OpenCC ``t2s``)."""
    if not any(is_cjk(ch) for ch in text):
        return text
    return _t2s_converter()(text)


def _lower(text: str) -> str:
    return text.lower()


def _contractions(text: str) -> str:
    """Expand common English contractions and titles: ``don't`` → ``do not``, ``it's`` → ``it is``,
    ``Mr.`` → ``mister``."""
    if not _CONTRACTION_HINT.search(text):
        return text
    text = re.sub(r"\s+'", "'", text)
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    return text


def _fillers(text: str) -> str:
    """Remove hesitation fillers: 嗯/啊/呃/额 and um/uh/er/hmm (and their lengthened spellings)."""
    text = _ZH_FILLERS.sub(" ", text)
    text = _ZH_E_FILLER.sub(" ", text)
    return _EN_FILLERS.sub(" ", text)


def _keep_symbol(text: str, i: int) -> bool:
    """Whether the symbol at ``text[i]`` is part of a number or word (``3.5``, ``50%``, ``$3``)."""
    ch = text[i]
    before = text[i - 1] if i > 0 else ""
    after = text[i + 1] if i + 1 < len(text) else ""
    if ch == ".":
        return before.isdigit() and after.isdigit()
    if ch == "'":
        return before.isalpha() and after.isalpha() and not is_cjk(before) and not is_cjk(after)
    if ch == "%":
        return before.isdigit()
    return after.isdigit()  # currency signs stand before the amount


def _punct(text: str) -> str:
    """Remove punctuation and symbols (CJK and ASCII), keeping the ones that are part of a number or word."""
    text = _THOUSANDS.sub("", text)
    text = _WORD_HYPHEN.sub(" ", text)
    out = []
    for i, ch in enumerate(text):
        cat = unicodedata.category(ch)
        if cat[0] in "PS" and not (ch in _NUMERIC_KEEP and _keep_symbol(text, i)):
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


@lru_cache(maxsize=1)
def _english_numbers() -> Callable[[str], str]:
    try:
        from whisper_normalizer.english import EnglishNumberNormalizer
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ImportError(
            "English number normalisation needs the whisper-normalizer package (callscribe[eval])"
        ) from exc
    normalizer: Callable[[str], str] = EnglishNumberNormalizer()
    return normalizer


@lru_cache(maxsize=1)
def _english_spelling() -> Callable[[str], str]:
    from whisper_normalizer.english import EnglishSpellingNormalizer

    normalizer: Callable[[str], str] = EnglishSpellingNormalizer()
    return normalizer


def _split_script(text: str) -> list[tuple[bool, str]]:
    """Cut text into alternating runs of CJK and non-CJK characters: ``[(is_cjk, run), ...]``."""
    runs: list[tuple[bool, str]] = []
    for ch in text:
        cjk = is_cjk(ch)
        if runs and runs[-1][0] == cjk:
            runs[-1] = (cjk, runs[-1][1] + ch)
        else:
            runs.append((cjk, ch))
    return runs


def _english_run_numbers(run: str) -> str:
    """Whisper's number normaliser on one run of Latin text, except for an "oh" that is an interjection.

    Whisper reads every "oh" as zero ("oh, I see" → "0 i see"); here it is a digit only next to another number.
    """
    words = run.split()
    interjections = [
        i
        for i, word in enumerate(words)
        if word == "oh" and not any(0 <= j < len(words) and _is_number_word(words[j]) for j in (i - 1, i + 1))
    ]
    if not interjections:
        return str(_english_numbers()(" ".join(words)))
    pieces, start = [], 0
    for i in [*interjections, len(words)]:
        if i > start:
            pieces.append(str(_english_numbers()(" ".join(words[start:i]))))
        if i < len(words):
            pieces.append("oh")
        start = i + 1
    return " ".join(p for p in pieces if p)


def _is_number_word(word: str) -> bool:
    return word.isdigit() or word in _NUMBER_WORDS


def _chinese_numbers(text: str) -> str:
    import cn2an

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cn2an warns about every numeral-like run it leaves alone
        return str(cn2an.transform(text, "cn2an"))


def _numbers(text: str) -> str:
    """Make numbers comparable as Arabic digits.

    Chinese numerals go through cn2an (``二十六年`` → ``26年``, ``二零二四年`` → ``2024年``,
    ``百分之五十`` → ``50%``, ``三点五`` → ``3.5``, a phone number read digit by digit → one digit string);
    English number words through Whisper's number normaliser (``eighteen thirteen`` → ``1813``, ``fifty
    percent`` → ``50%``). Digit groups split by spaces or hyphens (``555-1234``) are joined, as spoken digit
    strings are.
    """
    parts = []
    for cjk, run in _split_script(text):
        if cjk:
            run = _chinese_numbers(run)
        elif any("a" <= ch <= "z" or "A" <= ch <= "Z" for ch in run):
            lead = " " if run[:1].isspace() else ""
            tail = " " if run[-1:].isspace() else ""
            run = lead + _english_run_numbers(run).strip() + tail
        parts.append(run)
    return _DIGIT_GROUPS.sub("", "".join(parts))


def _spelling(text: str) -> str:
    """British to American spelling (``colour`` → ``color``), Whisper's table."""
    if not any("a" <= ch <= "z" for ch in text):
        return text
    return str(_english_spelling()(text))


def _spaces(text: str) -> str:
    """One space between Latin words, none next to a CJK character, none at the ends."""
    words = text.split()
    out = ""
    for word in words:
        if out and not (is_cjk(out[-1]) or is_cjk(word[0])):
            out += " "
        out += word
    return out


STEPS: dict[str, Callable[[str], str]] = {
    "width": _width,
    "tags": _tags,
    "t2s": _t2s,
    "lower": _lower,
    "contractions": _contractions,
    "fillers": _fillers,
    "punct": _punct,
    "numbers": _numbers,
    "spelling": _spelling,
    "spaces": _spaces,
}


@dataclass(frozen=True)
class Normalizer:
    """A normalisation pipeline: the named steps, always run in :data:`STEP_ORDER`.

    ``Normalizer()`` is the default pipeline; ``Normalizer.default(drop_fillers=True)`` adds filler removal;
    ``Normalizer(steps=("width", "punct", "spaces"))`` picks steps by name.
    """

    steps: tuple[str, ...] = DEFAULT_STEPS

    def __post_init__(self) -> None:
        unknown = [s for s in self.steps if s not in STEPS]
        if unknown:
            raise ValueError(f"unknown normalisation step(s) {unknown}; choose from {list(STEP_ORDER)}")
        object.__setattr__(self, "steps", tuple(s for s in STEP_ORDER if s in self.steps))

    @classmethod
    def default(cls, drop_fillers: bool = False) -> Normalizer:
        return cls(DEFAULT_STEPS + (("fillers",) if drop_fillers else ()))

    def without(self, *names: str) -> Normalizer:
        return Normalizer(tuple(s for s in self.steps if s not in names))

    def __call__(self, text: str) -> str:
        for name in self.steps:
            text = STEPS[name](text)
        return text


def normalize(text: str, *, drop_fillers: bool = False, steps: Sequence[str] | None = None) -> str:
    """Normalise one text with the default pipeline (or the given ``steps``) for scoring."""
    normalizer = Normalizer(tuple(steps)) if steps is not None else Normalizer.default(drop_fillers)
    return normalizer(text)
