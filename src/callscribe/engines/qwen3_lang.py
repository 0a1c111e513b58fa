"""Language names for Qwen3-ASR: our short codes to the model's names and back."""

from __future__ import annotations

from callscribe.engines.base import EngineError

# The 30 languages Qwen3-ASR names (qwen_asr.inference.utils.SUPPORTED_LANGUAGES), keyed by our codes.
CODE_TO_NAME: dict[str, str] = {
    "zh": "Chinese",
    "en": "English",
    "yue": "Cantonese",
    "ar": "Arabic",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "pt": "Portuguese",
    "id": "Indonesian",
    "it": "Italian",
    "ko": "Korean",
    "ru": "Russian",
    "th": "Thai",
    "vi": "Vietnamese",
    "ja": "Japanese",
    "tr": "Turkish",
    "hi": "Hindi",
    "ms": "Malay",
    "nl": "Dutch",
    "sv": "Swedish",
    "da": "Danish",
    "fi": "Finnish",
    "pl": "Polish",
    "cs": "Czech",
    "fil": "Filipino",
    "fa": "Persian",
    "el": "Greek",
    "ro": "Romanian",
    "hu": "Hungarian",
    "mk": "Macedonian",
}
NAME_TO_CODE: dict[str, str] = {name.lower(): code for code, name in CODE_TO_NAME.items()}
# Other spellings people pass for the same languages.
ALIASES: dict[str, str] = {"cmn": "zh", "zh-cn": "zh", "zh-hans": "zh", "zh-hk": "yue", "tl": "fil", "jp": "ja"}


def language_name(code: str | None) -> str | None:
    """``"zh"`` -> ``"Chinese"``; ``None`` stays ``None`` (detect). Unsupported codes raise :class:`EngineError`."""
    if code is None or not code.strip():
        return None
    key = code.strip().lower()
    key = ALIASES.get(key, key)
    if key in CODE_TO_NAME:
        return CODE_TO_NAME[key]
    if key in NAME_TO_CODE:  # a full name such as "English" is accepted too
        return CODE_TO_NAME[NAME_TO_CODE[key]]
    supported = ", ".join(sorted(CODE_TO_NAME))
    raise EngineError(f"qwen3: language {code!r} is not supported by Qwen3-ASR; supported: {supported}")


def language_code(name: str | None) -> str | None:
    """The model's language tag (``"Chinese"``, ``"Chinese,English"``) -> our code of its first language."""
    if not name:
        return None
    first = name.split(",")[0].strip().lower()
    return NAME_TO_CODE.get(first)
