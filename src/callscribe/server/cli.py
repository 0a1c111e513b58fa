"""``callscribe serve``: the service on uvicorn. Flags override ``CALLSCRIBE_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer


def _one_line(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0] if errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        msg = str(first.get("msg", exc)).removeprefix("Value error, ")
        return f"--{where.replace('_', '-')}: {msg}" if where else msg
    return " ".join(str(exc).split())


def serve_command(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Folder for uploads and service data (default callscribe-data).")
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", help="Admin key, sent as 'Authorization: Bearer KEY' (better: $CALLSCRIBE_API_KEY)."),
    ] = None,
    max_upload: Annotated[str | None, typer.Option("--max-upload", help="Largest upload, e.g. 1GB, 200MB.")] = None,
    max_queue: Annotated[int | None, typer.Option("--max-queue", help="Requests waiting before 503.")] = None,
    max_streams: Annotated[int | None, typer.Option("--max-streams", help="Live streams open at once.")] = None,
    cors_origin: Annotated[
        list[str] | None, typer.Option("--cors-origin", help="Allow browser calls from this origin (repeatable).")
    ] = None,
    engine: Annotated[str | None, typer.Option(help="auto, whisper, qwen3 or openai.")] = None,
    model: Annotated[str | None, typer.Option(help="Model name, hub id or local folder.")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda.")] = None,
    compute_type: Annotated[str | None, typer.Option(help="auto, int8, float16, bfloat16, float32.")] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads for the engine (0 = all cores).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Clips per engine batch (0: the engine's choice).")] = None,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible server(s) for --engine openai.")] = None,
    language: Annotated[str | None, typer.Option(help="Default language: zh, en, ... or auto.")] = None,
    hotwords: Annotated[
        Path | None, typer.Option("--hotwords", help="Glossary for every request: a term a line, or 'wrong => right'.")
    ] = None,
    redact: Annotated[str | None, typer.Option("--redact", help="'pii' to redact every transcript.")] = None,
    qa: Annotated[bool | None, typer.Option("--qa/--no-qa", help="Quality checks in verbose_json answers.")] = None,
    scorecard: Annotated[str | None, typer.Option(help="Scorecard YAML for --qa.")] = None,
    zh_script: Annotated[
        str | None, typer.Option("--zh-script", help="Mandarin text in simplified, traditional or keep.")
    ] = None,
    max_duration: Annotated[float | None, typer.Option(help="Refuse audio longer than this (seconds).")] = None,
    glossary_db: Annotated[
        str | None,
        typer.Option(
            "--glossary-db",
            help="Also use the glossary kept in this call store (URL; default: --db; '' for none), read again "
            "before each request.",
        ),
    ] = None,
    max_clip: Annotated[float | None, typer.Option("--max-clip", help="Longest clip sent to the engine (s).")] = None,
    beam_size: Annotated[int | None, typer.Option(help="Beam size (whisper).")] = None,
    timestamps: Annotated[
        str | None, typer.Option(help="segment or word (a request's timestamp_granularities[]=word adds words).")
    ] = None,
    aligner: Annotated[str | None, typer.Option(help="Forced aligner for word times with qwen3.")] = None,
    hub: Annotated[str | None, typer.Option(help="huggingface or modelscope (qwen3).")] = None,
    concurrency: Annotated[int | None, typer.Option(help="Requests in flight (openai engine).")] = None,
    channels: Annotated[str | None, typer.Option(help="auto, split or mix.")] = None,
    channel_roles: Annotated[
        str | None, typer.Option("--channel-roles", help="Roles by channel, e.g. agent,customer (a call's own win).")
    ] = None,
    speakers: Annotated[int | None, typer.Option(help="Number of speakers (mono calls).")] = None,
    min_speakers: Annotated[int | None, typer.Option(help="Fewest speakers (mono calls).")] = None,
    max_speakers: Annotated[int | None, typer.Option(help="Most speakers (mono calls).")] = None,
    roles_config: Annotated[str | None, typer.Option(help="YAML file overriding role patterns.")] = None,
    redact_audio: Annotated[
        bool | None,
        typer.Option("--redact-audio/--no-redact-audio", help="Stored calls: redact PII and tone it out of the audio."),
    ] = None,
    denoise: Annotated[bool | None, typer.Option("--denoise/--no-denoise", help="Spectral-gate denoising.")] = None,
    normalize: Annotated[
        bool | None, typer.Option("--normalize/--no-normalize", help="Loudness normalisation of clips.")
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning or error.")] = None,
    db: Annotated[
        str | None, typer.Option("--db", help="Call store for /v1/calls and API keys (default: $CALLSCRIBE_DB).")
    ] = None,
    job_concurrency: Annotated[
        int | None, typer.Option("--job-concurrency", help="Call jobs in the engine at once (they share batches).")
    ] = None,
    webhook_url: Annotated[str | None, typer.Option("--webhook-url", help="POST here when a call job ends.")] = None,
    webhook_secret: Annotated[
        str | None,
        typer.Option("--webhook-secret", help="HMAC key signing webhooks (better: $CALLSCRIBE_WEBHOOK_SECRET)."),
    ] = None,
    webhook_allow: Annotated[
        list[str] | None,
        typer.Option("--webhook-allow", help="URL prefix a job's own webhook_url may use (repeatable; '*': any)."),
    ] = None,
    webhook_attempts: Annotated[
        int | None, typer.Option("--webhook-attempts", help="Tries per webhook delivery (default 8).")
    ] = None,
    webhook_backoff: Annotated[
        float | None, typer.Option("--webhook-backoff", help="Seconds before a webhook's second try, doubled after.")
    ] = None,
) -> None:
    """Serve an OpenAI-compatible transcription API (POST /v1/audio/transcriptions) with one loaded engine."""
    from callscribe.cli import fail, validate_options
    from callscribe.extras import require

    for module in ("fastapi", "uvicorn", "pydantic_settings", "prometheus_client", "python_multipart"):
        require(module, "server")
    import uvicorn
    from pydantic import ValidationError

    from callscribe.pipeline import Pipeline
    from callscribe.server import logs
    from callscribe.server.app import create_app
    from callscribe.server.settings import Settings
    from callscribe.store import StoreError
    from callscribe.text.glossary import GlossaryError
    from callscribe.text.script import validate_script

    given: dict[str, Any] = {
        "host": host, "port": port, "data_dir": data_dir, "api_key": api_key, "max_upload": max_upload,
        "max_streams": max_streams,
        "max_queue": max_queue, "cors_origins": cors_origin or None, "engine": engine, "model": model,
        "device": device, "compute_type": compute_type, "threads": threads, "batch_size": batch_size,
        "base_url": base_url, "language": language, "hotwords": hotwords, "redact": redact, "qa": qa,
        "scorecard": scorecard, "zh_script": zh_script, "max_duration": max_duration, "log_level": log_level,
        "db": db, "job_concurrency": job_concurrency, "webhook_url": webhook_url, "webhook_secret": webhook_secret,
        "webhook_allow": webhook_allow or None, "webhook_attempts": webhook_attempts,
        "webhook_backoff": webhook_backoff, "glossary_db": glossary_db, "max_clip": max_clip,
        "beam_size": beam_size, "timestamps": timestamps, "aligner": aligner, "hub": hub, "concurrency": concurrency,
        "channels": channels, "channel_roles": channel_roles, "speakers": speakers, "min_speakers": min_speakers,
        "max_speakers": max_speakers, "roles_config": roles_config, "redact_audio": redact_audio,
        "denoise": denoise, "normalize": normalize,
    }  # fmt: skip
    try:
        settings = Settings(**{k: v for k, v in given.items() if v is not None})
        validate_script(settings.zh_script)
        options = settings.options()
        validate_options(options)
        if options.roles_config:  # a bad file would fail every call: say so before the model loads
            from callscribe.speakers.roles import load_patterns

            load_patterns(options.roles_config)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except ValidationError as exc:
        raise fail(_one_line(exc)) from None
    except (GlossaryError, ValueError, TypeError) as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"--data-dir {settings.data_dir}: cannot create ({exc.strerror or exc})") from None
    logs.configure(settings.log_level)
    try:
        app = create_app(settings, pipeline=Pipeline(options))
    except StoreError as exc:
        raise fail(" ".join(str(exc).split())) from None
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=30,
        server_header=False,
    )


def register(app: typer.Typer) -> None:
    from callscribe.server.cli_keys import keys_app

    app.command("serve")(serve_command)
    app.add_typer(keys_app, name="keys")
