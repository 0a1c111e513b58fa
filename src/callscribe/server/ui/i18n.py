"""The desk's languages: Simplified Chinese (default) and English, one JSON file of messages each in ``i18n/``.

The language is the ``lang`` query parameter when given (``?lang=en``), else the ``cs_lang`` cookie the language
switch sets, else ``zh-CN``. A key missing from a language falls back to English, then to the key itself.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path

from fastapi import Request

HERE = Path(__file__).resolve().parent / "i18n"
LANGS = ("zh-CN", "en")
DEFAULT_LANG = "zh-CN"
LANG_COOKIE = "cs_lang"
_ALIASES = {"zh": "zh-CN", "zh-cn": "zh-CN", "zh-hans": "zh-CN", "cn": "zh-CN", "en": "en", "en-us": "en"}


@functools.cache
def messages(lang: str) -> dict[str, str]:
    return json.loads((HERE / f"{lang}.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def normalize(value: str | None) -> str | None:
    """A supported language for a code as users write it (``zh``, ``zh-cn``, ``en-US``), else None."""
    if not value:
        return None
    return _ALIASES.get(value.strip().lower())


def request_lang(request: Request) -> str:
    return normalize(request.query_params.get("lang")) or normalize(request.cookies.get(LANG_COOKIE)) or DEFAULT_LANG


def translator(lang: str) -> Callable[..., str]:
    own, fallback = messages(lang), messages("en")

    def t(key: str, **values: object) -> str:
        text = own.get(key) or fallback.get(key) or key
        return text.format(**values) if values else text

    return t


def js_messages(lang: str, prefix: str = "js.") -> dict[str, str]:
    """The messages the scripts show (keys starting with ``js.``), with English filling gaps."""
    merged = {k: v for k, v in messages("en").items() if k.startswith(prefix)}
    merged |= {k: v for k, v in messages(lang).items() if k.startswith(prefix)}
    return {k[len(prefix) :]: v for k, v in merged.items()}
