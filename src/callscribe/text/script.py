"""Chinese script: one script in every transcript, so glossary, redaction, QA and insights see one form of each word.

Whisper (and other multilingual engines) mix traditional and simplified characters in Mandarin output (``吃燕窩``
next to ``选``). A mainland contact centre needs simplified text; a Taiwan or Hong Kong one may want traditional.
OpenCC's phrase-level tables do the conversion (``t2s``; ``s2tw`` for traditional), on utterance and word text alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

SCRIPTS = ("simplified", "traditional", "keep")
DEFAULT_SCRIPT = "simplified"
# Languages whose text is converted. Cantonese (yue) is written in traditional characters by its readers, so it is
# left alone unless asked for by name.
_CONVERTED = re.compile(r"^(zh|cmn|wuu|chinese|mandarin)([-_].*)?$", re.IGNORECASE)
_TABLES = {"simplified": "t2s", "traditional": "s2tw"}  # s2tw: the forms readers use (為, not OpenCC's 爲)


def validate_script(script: str) -> str:
    if script not in SCRIPTS:
        raise ValueError(f"--zh-script must be one of {', '.join(SCRIPTS)}, not {script!r}")
    return script


def applies_to(language: str | None) -> bool:
    return bool(language) and bool(_CONVERTED.match(language or ""))


@lru_cache(maxsize=2)
def converter(script: str) -> Callable[[str], str]:
    """``text -> text`` in ``script`` (identity for ``keep``)."""
    validate_script(script)
    if script == "keep":
        return lambda text: text
    import opencc

    return opencc.OpenCC(_TABLES[script]).convert
