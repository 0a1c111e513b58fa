"""One documented options dataclass for the whole pipeline; the CLI and the Python API both build it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

OUTPUT_FORMATS = ("json", "txt", "srt", "vtt", "tsv", "rttm")

# Options that change what a transcript says; only these go into the cache key that decides
# whether a call that already has outputs is done.
_RESULT_AFFECTING = (
    "engine",
    "model",
    "language",
    "hotwords",
    "corrections",
    "max_clip_s",
    "normalize",
    "denoise",
    "vad_threshold",
    "timestamps",
    "beam_size",
    "channels",
    "channel_roles",
    "speakers",
    "min_speakers",
    "max_speakers",
    "redact",
    "zh_script",
    "compute_type",
    "hub",
    "base_url",
)


@dataclass(frozen=True)
class Options:
    """Everything a run can be told.

    engine: ``auto`` | ``whisper`` | ``qwen3`` | ``openai``; model: engine-specific name, hub id or directory
    (``None`` = the engine's default; for ``whisper`` the bundled offline model).
    language: ``zh``, ``en``, ... or ``None`` to detect. hotwords: glossary terms; corrections: wrong -> right.
    max_clip_s: longest clip sent to an engine. normalize: loudness-normalise clips. denoise: spectral-gate clips.
    max_duration: refuse calls longer than this many seconds (``None`` = no limit).
    batch_size: clips per engine batch; 0 lets the engine choose (whisper: 1 on CPU, where bigger batches only cost
    memory, 16 on CUDA; qwen3: 8).
    formats: output formats written by the batch runner.
    zh_script: ``simplified`` (default), ``traditional`` or ``keep``: the script of Mandarin text, applied before
    the glossary, redaction, QA and insights.
    """

    engine: str = "auto"
    model: str | None = None
    language: str | None = None
    hotwords: tuple[str, ...] = ()
    corrections: tuple[tuple[str, str], ...] = ()
    max_clip_s: float = 20.0  # measured on whole calls: one voice's 25 s turn lost words in one 30 s clip
    pad_s: float = 0.2
    normalize: bool = True
    denoise: bool = False
    vad_threshold: float = 0.5
    min_silence_s: float = 0.3
    max_duration: float | None = None
    timestamps: str = "segment"
    beam_size: int = 5
    batch_size: int = 0  # 0 = the engine's choice
    device: str = "auto"
    compute_type: str = "auto"
    threads: int = 0
    hub: str = "huggingface"
    base_url: str | None = None
    concurrency: int = 4
    zh_script: str = "simplified"
    channels: str = "auto"
    channel_roles: tuple[str, ...] = ()
    speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None
    roles_config: str | None = None
    redact: tuple[str, ...] = ()
    redact_audio: bool = False
    qa: bool = False
    scorecard: str | None = None
    formats: tuple[str, ...] = ("json", "txt")
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, options: Options | dict[str, Any] | None = None, **overrides: Any) -> Options:
        """Accept an Options, a dict, or keyword arguments; unknown keys are an error."""
        base: dict[str, Any] = {}
        if isinstance(options, Options):
            base = dataclasses.asdict(options)
        elif isinstance(options, dict):
            base = dict(options)
        base.update(overrides)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(base) - known)
        if unknown:
            raise TypeError(f"unknown option(s): {', '.join(unknown)}")
        for key in ("hotwords", "channel_roles", "redact", "formats"):
            if key in base and base[key] is not None:
                base[key] = tuple(base[key])
        if "corrections" in base:
            base["corrections"] = tuple(tuple(p) for p in base["corrections"])
        return cls(**base)

    def replace(self, **changes: Any) -> Options:
        return dataclasses.replace(self, **changes)

    def result_key(self) -> str:
        """A short hash of the options that change the transcript (formats, threads... do not)."""
        d = dataclasses.asdict(self)
        picked = {k: d[k] for k in _RESULT_AFFECTING}
        blob = json.dumps(picked, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))
