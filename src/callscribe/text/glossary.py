"""Hotword glossaries: engine biasing terms plus post-correction of known mis-hearings.

File format, one entry a line (``#`` starts a comment)::

    宽带套餐
    Qwen3-ASR
    冰台新区 => 滨海新区
    wen three => Qwen3

A plain line is a term to bias the engine towards; ``wrong => right`` also rewrites ``wrong`` to ``right`` in the
text (Latin forms match whole words, case-insensitively) and makes ``right`` a term.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from callscribe.model import is_cjk

ARROW = "=>"


class GlossaryError(ValueError):
    pass


@dataclass(frozen=True)
class Glossary:
    terms: tuple[str, ...] = ()
    corrections: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str, *, source: str = "<glossary>") -> Glossary:
        terms: list[str] = []
        corrections: list[tuple[str, str]] = []
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if ARROW in line:
                wrong, _, right = (part.strip() for part in line.partition(ARROW))
                if not wrong or not right:
                    raise GlossaryError(f"{source}:{lineno}: expected 'wrong form => right form', got {raw.strip()!r}")
                corrections.append((wrong, right))
                line = right
            if line not in terms:
                terms.append(line)
        return cls(tuple(terms), tuple(corrections))

    @classmethod
    def load(cls, path: str | Path) -> Glossary:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise GlossaryError(f"{p}: hotwords file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise GlossaryError(f"{p}: cannot read hotwords file ({exc})") from None
        return cls.parse(text, source=str(p))

    def correct(self, text: str) -> str:
        """Rewrite every known wrong form to its right form."""
        for wrong, right in self.corrections:
            text = _pattern(wrong).sub(right, text)
        return text

    def found(self, text: str) -> tuple[str, ...]:
        """The terms that occur in ``text``, in glossary order."""
        return tuple(term for term in self.terms if _pattern(term).search(text))


def _pattern(form: str) -> re.Pattern[str]:
    escaped = re.escape(form)
    # Latin edges get word boundaries; CJK has no spaces between words, so it matches anywhere.
    left = "" if is_cjk(form[0]) else r"(?<![\w])"
    right = "" if is_cjk(form[-1]) else r"(?![\w])"
    return re.compile(left + escaped + right, re.IGNORECASE)
