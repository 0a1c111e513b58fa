"""Service settings: ``CALLSCRIBE_*`` environment variables, overridden by ``callscribe serve`` flags.

Every field reads from ``CALLSCRIBE_<FIELD>`` (``CALLSCRIBE_API_KEY``, ``CALLSCRIBE_MAX_UPLOAD=500MB``,
``CALLSCRIBE_CORS_ORIGINS=https://a.example,https://b.example``...). :meth:`Settings.options` turns the transcribe
part into the pipeline's :class:`~callscribe.options.Options`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from callscribe.options import Options

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)


def parse_size(value: str | int | float) -> int:
    """``1GB`` → 10**9, ``512MiB`` → 512 * 2**20, ``1000`` → 1000 bytes (KB/MB/GB in powers of 1000)."""
    if isinstance(value, (int, float)):
        size = int(value)
    else:
        match = _SIZE.match(str(value))
        unit = match.group(2).lower() if match else ""
        if match is None or unit not in _UNITS:
            raise ValueError(f"not a size: {value!r} (examples: 1GB, 500MB, 512MiB, 100000)")
        size = int(float(match.group(1)) * _UNITS[unit])
    if size <= 0:
        raise ValueError(f"a size must be positive, got {value!r}")
    return size


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """What ``callscribe serve`` runs with (see docs/server.md for each field)."""

    model_config = SettingsConfigDict(env_prefix="CALLSCRIBE_", extra="ignore", validate_default=True)

    # -- the service --------------------------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    data_dir: Path = Path("callscribe-data")
    api_key: SecretStr | None = None
    max_upload: int = 1_000_000_000
    max_queue: int = Field(256, ge=1)
    max_streams: int = Field(8, ge=1)  # live streams open at once (/v1/stream)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    log_level: str = "info"

    # -- the call store and its durable job queue ----------------------------------------------------------------
    db: str | None = None  # CALLSCRIBE_DB, as for `transcribe --db`
    job_concurrency: int = Field(8, ge=1)
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_allow: Annotated[list[str], NoDecode] = Field(default_factory=list)  # prefixes for per-job URLs; "*": any
    webhook_attempts: int = Field(8, ge=1, le=100)
    webhook_backoff: float = Field(2.0, gt=0)  # seconds before the second try, doubled after each

    # -- the engine and the transcribe options a service needs ---------------------------------------------------
    engine: str = "auto"
    model: str | None = None
    device: str = "auto"
    compute_type: str = "auto"
    threads: int = 0
    batch_size: int = Field(0, ge=0)
    base_url: str | None = None
    language: str | None = None
    hotwords: Path | None = None
    redact: str | None = None
    qa: bool = False
    scorecard: str | None = None
    zh_script: str = "simplified"
    max_duration: float | None = Field(None, gt=0)
    glossary_db: str | None = None  # also the glossary kept in this call store (default: db; "" for none)
    max_clip: float = Field(20.0, gt=0, le=30)
    beam_size: int = Field(5, ge=1)
    timestamps: str = "segment"
    aligner: str | None = None
    hub: str = "huggingface"
    concurrency: int = Field(4, ge=1)  # requests in flight with --engine openai
    channels: str = "auto"
    channel_roles: str | None = None  # default roles by channel, e.g. agent,customer (a call's own win)
    speakers: int | None = Field(None, ge=1)
    min_speakers: int | None = Field(None, ge=1)
    max_speakers: int | None = Field(None, ge=1)
    roles_config: str | None = None
    redact_audio: bool = False  # stored calls: redact PII with word times, and make the toned recording at once
    denoise: bool = False
    normalize: bool = True

    @field_validator("max_upload", mode="before")
    @classmethod
    def _size(cls, value: Any) -> int:
        return parse_size(value)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        return _split(value)

    @field_validator("webhook_allow", mode="before")
    @classmethod
    def _allow(cls, value: Any) -> Any:
        from callscribe.server.webhooks import check_url

        values = _split(value)
        for prefix in values or ():
            if prefix != "*":
                check_url(prefix)
        return values

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, value: Any) -> Any:
        return None if value in ("", "auto") else value

    @field_validator("webhook_url")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f"not an http(s) URL: {value!r}")
        return value

    @field_validator("timestamps")
    @classmethod
    def _timestamps(cls, value: str) -> str:
        if value not in ("segment", "word"):
            raise ValueError(f"timestamps must be segment or word, not {value!r}")
        return value

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: str) -> str:
        if value not in ("auto", "split", "mix"):
            raise ValueError(f"channels must be auto, split or mix, not {value!r}")
        return value

    @field_validator("hub")
    @classmethod
    def _hub(cls, value: str) -> str:
        if value not in ("huggingface", "modelscope"):
            raise ValueError(f"hub must be huggingface or modelscope, not {value!r}")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.lower()
        if level not in ("debug", "info", "warning", "error"):
            raise ValueError(f"log level must be debug, info, warning or error, not {value!r}")
        return level

    @model_validator(mode="after")
    def _glossary_db(self) -> Settings:
        if self.glossary_db is None and self.db:  # the desk's glossary entries, read again before each request
            self.glossary_db = self.db
        return self

    def options(self) -> Options:
        """The pipeline options (the hotwords file read and checked here: a bad one fails before the model loads)."""
        from callscribe.cli import build_options

        return build_options(
            engine=self.engine,
            model=self.model,
            device=self.device,
            compute_type=self.compute_type,
            threads=self.threads,
            batch_size=self.batch_size,
            base_url=self.base_url,
            language=self.language,
            hotwords_file=self.hotwords,
            redact_spec=self.redact,
            qa=self.qa,
            scorecard=self.scorecard,
            zh_script=self.zh_script,
            max_duration=self.max_duration,
            glossary_db=self.glossary_db,
            max_clip_s=self.max_clip,
            beam_size=self.beam_size,
            timestamps=self.timestamps,
            extra={"aligner": self.aligner} if self.aligner else None,
            hub=self.hub,
            concurrency=self.concurrency,
            channels=self.channels,
            channel_roles_spec=self.channel_roles,
            speakers=self.speakers,
            min_speakers=self.min_speakers,
            max_speakers=self.max_speakers,
            roles_config=self.roles_config,
            redact_audio=self.redact_audio,
            denoise=self.denoise,
            normalize=self.normalize,
        )

    def api_key_value(self) -> str | None:
        return self.api_key.get_secret_value() if self.api_key is not None else None

    def webhook_secret_value(self) -> str | None:
        return self.webhook_secret.get_secret_value() if self.webhook_secret is not None else None
