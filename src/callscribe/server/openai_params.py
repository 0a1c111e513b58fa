"""The fields of an OpenAI transcription request, checked: each bad one is a 400 naming the field."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from callscribe.server.errors import ApiError
from callscribe.server.forms import Form
from callscribe.server.openai_format import RESPONSE_FORMATS
from callscribe.server.worker import RequestOptions
from callscribe.text.glossary import Glossary, GlossaryError

MAX_TERMS = 200
MAX_TERM_CHARS = 64
GRANULARITIES = ("segment", "word")
# A prompt is read as glossary terms: one a line, or separated by commas / semicolons (ASCII or full-width).
_TERM_SEPARATORS = re.compile(r"[\n,;，、；]")


@dataclass(frozen=True)
class TranscriptionParams:
    model: str | None
    response_format: str
    stream: bool
    words: bool
    segments: bool
    options: RequestOptions


def _bad(message: str, param: str, code: str = "invalid_value") -> ApiError:
    return ApiError(400, message, code=code, param=param)


@lru_cache(maxsize=1)
def _languages() -> frozenset[str]:
    from callscribe.cli import known_languages

    return known_languages()


def _language(value: str | None) -> str | None:
    if value is None or value.strip().lower() in ("", "auto"):
        return None
    code = value.strip().lower()
    if code not in _languages():
        raise _bad(f"language {value!r}: unknown language code; use a code like zh, en, yue (or leave it out)",
                   "language")  # fmt: skip
    return code


def _terms(prompt: str | None, keywords: list[str]) -> Glossary:
    """Terms (and ``wrong => right`` corrections) from the prompt and ``keywords[]``."""
    pieces = [p for p in _TERM_SEPARATORS.split(prompt or "") if p.strip()]
    pieces += [k for k in keywords if k.strip()]
    if len(pieces) > MAX_TERMS:
        raise _bad(f"prompt: at most {MAX_TERMS} terms, got {len(pieces)}", "prompt")
    try:
        glossary = Glossary.parse("\n".join(p.replace("#", " ") for p in pieces), source="prompt")
    except GlossaryError as exc:
        raise _bad(str(exc), "prompt") from None
    long = [t for t in glossary.terms if len(t) > MAX_TERM_CHARS]
    if long:
        raise _bad(f"prompt: term {long[0][:20]!r}... is longer than {MAX_TERM_CHARS} characters", "prompt")
    return glossary


def _flag(value: str | None, param: str) -> bool:
    if value is None or value.strip().lower() in ("", "false", "0"):
        return False
    if value.strip().lower() in ("true", "1"):
        return True
    raise _bad(f"{param}: expected true or false, got {value!r}", param)


def parse(form: Form) -> TranscriptionParams:
    response_format = (form.get("response_format") or "json").strip().lower()
    if response_format not in RESPONSE_FORMATS:
        raise _bad(f"response_format {response_format!r} is not supported; use one of {', '.join(RESPONSE_FORMATS)}",
                   "response_format")  # fmt: skip
    granularities = {g.strip().lower() for g in form.getlist("timestamp_granularities") if g.strip()}
    unknown = sorted(granularities - set(GRANULARITIES))
    if unknown:
        raise _bad(f"timestamp_granularities: unknown {', '.join(unknown)}; use segment and/or word",
                   "timestamp_granularities")  # fmt: skip
    temperature = form.get("temperature")
    if temperature is not None and temperature.strip():
        try:
            value = float(temperature)
        except ValueError:
            value = -1.0
        if not 0.0 <= value <= 1.0:
            raise _bad(f"temperature: expected a number from 0 to 1, got {temperature!r}", "temperature")
    verbose = response_format == "verbose_json"
    words = verbose and "word" in granularities
    glossary = _terms(form.get("prompt"), form.getlist("keywords"))
    options = RequestOptions(
        language=_language(form.get("language")),
        hotwords=glossary.terms,
        corrections=glossary.corrections,
        word_timestamps=words,
    )
    return TranscriptionParams(
        model=form.get("model"),
        response_format=response_format,
        stream=_flag(form.get("stream"), "stream"),
        words=words,
        segments=verbose and (not granularities or "segment" in granularities),
        options=options,
    )
