"""The engine interface: a one-method Protocol and a registry by name.

An engine never decodes files or runs VAD: it gets 16 kHz mono float32 clips (at most ``max_clip_s`` long) and
returns one :class:`EngineResult` per clip, with times relative to the clip's start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from callscribe.model import Span, Word

log = logging.getLogger("callscribe")

SAMPLE_RATE = 16_000


@dataclass
class Clip:
    """A piece of one channel of one call, ready for an engine."""

    call_id: str
    channel: int
    start: float  # seconds from the start of the call
    audio: np.ndarray  # float32, mono, 16 kHz
    speaker: str | None = None
    index: int = 0  # position of the clip within its call
    speech: tuple[Span, ...] = ()  # the speech-map spans inside the clip, in call time (what it must cover)
    language: str | None = None  # the call's language when it was detected once for the whole call

    @property
    def duration(self) -> float:
        return len(self.audio) / SAMPLE_RATE

    @property
    def end(self) -> float:
        return self.start + self.duration


@dataclass(frozen=True)
class EngineSegment:
    """A piece of recognised text; times in seconds from the clip's start."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    confidence: float | None = None


@dataclass(frozen=True)
class EngineResult:
    segments: tuple[EngineSegment, ...]
    language: str | None = None
    flags: tuple[str, ...] = ()  # e.g. "truncated", "repetition", "split-retry"
    notes: tuple[str, ...] = ()  # what the transcript should say about this result (e.g. "word times unavailable")

    @property
    def text(self) -> str:
        from callscribe.model import join_texts

        return join_texts(s.text for s in self.segments)


@dataclass(frozen=True)
class EngineOptions:
    """What every engine may be asked for; engines ignore what they cannot do."""

    language: str | None = None  # None = detect
    hotwords: tuple[str, ...] = ()
    timestamps: str = "segment"  # "segment" | "word"
    beam_size: int = 5
    batch_size: int = 8
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Engine(Protocol):
    """A speech recogniser. ``name`` is what goes into the transcript; ``describe`` says which model it runs."""

    name: str

    def transcribe(self, clips: Sequence[Clip], options: EngineOptions) -> list[EngineResult]: ...

    def describe(self) -> str: ...


@runtime_checkable
class DetectsLanguage(Protocol):
    """An engine that can name a clip's language on its own; with no language given, the pipeline asks it once per
    call (on the call's longest stretch of speech) and hands every clip of the call that answer, so a call's reading
    does not depend on which other calls' clips share its engine calls."""

    def detect_language(self, clip: Clip) -> str | None: ...


class EngineError(RuntimeError):
    """An engine cannot be built or run (missing package, missing or corrupt model files...)."""


BUILTIN_MODULES = ("whisper", "qwen3", "openai")

EngineFactory = Callable[..., Engine]
_REGISTRY: dict[str, EngineFactory] = {}
_AVAILABILITY: dict[str, Callable[..., tuple[bool, str]]] = {}


def register(
    name: str, availability: Callable[..., tuple[bool, str]] | None = None
) -> Callable[[EngineFactory], EngineFactory]:
    """Register an engine factory under ``name``.

    ``availability(model=...)`` answers ``(usable_here, reason)`` without loading anything heavy; ``auto`` uses it.
    """

    def deco(factory: EngineFactory) -> EngineFactory:
        _REGISTRY[name] = factory
        if availability is not None:
            _AVAILABILITY[name] = availability
        return factory

    return deco


def _load_builtin() -> None:
    # Importing a module registers its engines; each import is cheap (heavy libraries load lazily).
    import importlib

    for module in BUILTIN_MODULES:
        importlib.import_module(f"callscribe.engines.{module}")


def names() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def availability(name: str, **kwargs: Any) -> tuple[bool, str]:
    _load_builtin()
    check = _AVAILABILITY.get(name)
    if check is None:
        return (True, "registered") if name in _REGISTRY else (False, "not installed")
    return check(**kwargs)


# Engines `auto` considers, best first.
AUTO_ORDER = ("qwen3", "whisper")


def resolve_auto(model: str | None = None) -> tuple[str, str]:
    """Pick the best engine that can run here: ``(name, why)``."""
    _load_builtin()
    reasons = []
    for name in AUTO_ORDER:
        ok, why = availability(name, model=model)
        if ok:
            return name, f"{name}: {why}" + (f" (skipped: {'; '.join(reasons)})" if reasons else "")
        reasons.append(f"{name}: {why}")
    raise EngineError("no engine can run here: " + "; ".join(reasons))


def create(name: str, **kwargs: Any) -> Engine:
    """Build the engine registered as ``name`` (``auto`` resolves first)."""
    _load_builtin()
    if name == "auto":
        name, why = resolve_auto(kwargs.get("model"))
        log.info("engine auto -> %s", why)
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise EngineError(f"unknown engine {name!r}; known: {', '.join(names())}") from None
    return factory(**kwargs)
