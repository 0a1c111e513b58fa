"""Talking to a vLLM server that serves Qwen3-ASR the way it listens: ``/v1/chat/completions``.

vLLM's ``/v1/audio/transcriptions`` builds Qwen3-ASR's prompt itself: it reads ``to_language`` (not ``language``),
drops ``prompt`` (no context reaches the model), refuses ``verbose_json`` and sets no output limit unless asked.
Through the chat endpoint the request carries what the model was trained on: the context as the system message,
the clip as the user's audio, and a forced language as the start of the assistant's answer
(``language Chinese<asr_text>``, continued with ``continue_final_message``), with an output budget that follows
the clip's length. This module builds those requests, reads the answers, and spots runaway output in text.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from callscribe.engines.base import EngineError
from callscribe.engines.openai_reply import strip_language_tag

QWEN_ASR_MARK = "qwen3-asr"  # in a served model's id or root (its path), case-insensitive
APIS = ("auto", "chat", "transcriptions")
# The output budget, as the in-process engine sets it: speech runs at 3-5 tokens a second.
TOKENS_PER_SECOND = 10.0
TOKEN_MARGIN = 24
MAX_NEW_TOKENS = 512
# A loop in text: one stretch of characters (up to LOOP_MAX_PERIOD long) repeated back to back at least
# LOOP_MIN_REPEATS times up to the end, covering at least LOOP_MIN_CHARS characters. Real speech repeats a word a
# few times ("no, no, no", "对对对"), not a line of text.
LOOP_MAX_PERIOD = 200
LOOP_MIN_REPEATS = 6
LOOP_MIN_CHARS = 48
_ASR_TEXT_TAG = "<asr_text>"


@dataclass(frozen=True)
class ChatReply:
    text: str
    language: str | None  # what the model said it heard (None when forced or not said)
    finish_reason: str | None


@dataclass(frozen=True)
class TextLoop:
    """``text[start:]`` is ``text[start:start + period]`` repeated ``repeats`` times (maybe with a partial tail)."""

    start: int
    period: int
    repeats: int

    def keep(self) -> int:
        """How many leading characters to keep: the text before the loop and one pass of it."""
        return self.start + self.period


def serves_qwen_asr(entry: dict[str, Any] | None, model: str) -> bool:
    """Whether a ``/v1/models`` entry (or, without one, the model name) is a Qwen3-ASR model."""
    names = [model] if entry is None else [str(entry.get("id", "")), str(entry.get("root") or "")]
    return any(QWEN_ASR_MARK in name.lower() for name in names)


def choose_api(value: Any, where: str) -> str:
    """Check an ``openai_api`` setting: ``auto``, ``chat`` or ``transcriptions``."""
    api = str(value or "auto").strip().lower()
    if api not in APIS:
        raise EngineError(f"openai: {where} openai_api={value!r} is not one of {', '.join(APIS)}")
    return api


def budget(seconds: float, extra: dict[str, Any]) -> int:
    """``max_completion_tokens`` for a clip of ``seconds`` (``extra`` may set the rate, margin and cap)."""
    rate = float(extra.get("tokens_per_second", TOKENS_PER_SECOND))
    margin = int(extra.get("token_margin", TOKEN_MARGIN))
    cap = int(extra.get("max_new_tokens", MAX_NEW_TOKENS))
    return max(1, min(cap, math.ceil(seconds * rate) + margin))


def chat_request(model: str, wav: bytes, context: str, language: str | None, max_tokens: int) -> dict[str, Any]:
    """The ``/v1/chat/completions`` body for one clip; ``language`` is Qwen3-ASR's name for it (``"Chinese"``)."""
    audio = "data:audio/wav;base64," + base64.b64encode(wav).decode("ascii")
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": context},
        {"role": "user", "content": [{"type": "audio_url", "audio_url": {"url": audio}}]},
    ]
    body: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "temperature": 0.0,
        "max_completion_tokens": max_tokens,
    }
    if language:
        messages.append({"role": "assistant", "content": f"language {language}{_ASR_TEXT_TAG}"})
        body["add_generation_prompt"] = False
        body["continue_final_message"] = True
    return body


def parse_chat(body: Any, url: str, forced: bool) -> ChatReply:
    """A chat completion -> text, the language the model named, finish reason. A malformed body is an error."""
    try:
        choice = body["choices"][0]
        content = choice["message"].get("content") or ""
        finish = choice.get("finish_reason")
    except (KeyError, IndexError, TypeError, AttributeError):
        shown = repr(body)[:200]
        raise EngineError(f"openai: {url}/chat/completions answered without choices[0].message: {shown}") from None
    language, text = strip_language_tag(str(content))
    if not forced and language is None and _ASR_TEXT_TAG not in content and text.lower().startswith("language"):
        text = ""  # cut off inside the "language X" prefix: nothing was transcribed yet
    return ChatReply(text=text.replace(_ASR_TEXT_TAG, "").strip(), language=language, finish_reason=finish)


def find_text_loop(text: str) -> TextLoop | None:
    """The longest back-to-back repetition that runs to the end of ``text``, if it looks like a runaway loop."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
    n = len(codes)
    best: TextLoop | None = None
    best_span = 0
    for period in range(1, min(LOOP_MAX_PERIOD, n // LOOP_MIN_REPEATS) + 1):
        same = codes[:-period] == codes[period:]
        if not same[-1]:
            continue
        breaks = np.flatnonzero(~same)
        start = int(breaks[-1]) + 1 if len(breaks) else 0  # the loop covers text[start:]
        span = n - start
        if span // period >= LOOP_MIN_REPEATS and span >= LOOP_MIN_CHARS and span > best_span:
            best, best_span = TextLoop(start=start, period=period, repeats=span // period), span
    return best


def cut_loop(text: str) -> tuple[str, bool]:
    """``text`` with a runaway loop at its end cut to one pass, and whether there was one."""
    loop = find_text_loop(text)
    if loop is None:
        return text, False
    return text[: loop.keep()].strip(), True


def word_times_note(urls: str) -> str:
    return (
        f"word times unavailable: {urls} serves Qwen3-ASR, which returns text only; use --engine qwen3 for word times"
    )


def context_dropped_note(urls: str) -> str:
    return (
        f"context not heard: {urls} serves Qwen3-ASR, whose /v1/audio/transcriptions drops the prompt (glossary "
        "terms and context); openai_api=auto or chat sends it as the system message"
    )


__all__ = [
    "APIS",
    "ChatReply",
    "TextLoop",
    "budget",
    "chat_request",
    "choose_api",
    "context_dropped_note",
    "cut_loop",
    "find_text_loop",
    "parse_chat",
    "serves_qwen_asr",
    "word_times_note",
]
