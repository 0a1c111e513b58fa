"""The ``callscribe`` command line (typer + rich)."""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from callscribe.batch import OutputLock, RunSummary, check_writable, discover, run_locked
from callscribe.engines.base import EngineError
from callscribe.executors.ray_cli import ray_settings, start_ray
from callscribe.extras import MissingExtra, extra_for, missing_extra_message, require
from callscribe.options import Options
from callscribe.outputs.writers import parse_formats
from callscribe.pipeline import Pipeline
from callscribe.text.glossary import Glossary, GlossaryError
from callscribe.text.script import validate_script

if TYPE_CHECKING:
    from callscribe.batch_db import StoreSink
    from callscribe.executors.base import Executor

app = typer.Typer(
    name="callscribe",
    help="Transcribe and check customer-service call recordings, on your own machines.",
    no_args_is_help=True,
    add_completion=False,
)
err = Console(stderr=True)
out = Console()
log = logging.getLogger("callscribe")


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("callscribe")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree that was never installed
        return "unknown"


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"callscribe {version()}")
        raise typer.Exit()


@app.callback()
def _root(
    _version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", callback=_show_version, is_eager=True),
    ] = False,
) -> None:
    """Transcribe and check customer-service call recordings, on your own machines."""


# Commands that live beside their own code; each module has register(app).
COMMAND_MODULES = (
    "callscribe.eval.cli",
    "callscribe.eval.bench",
    "callscribe.qa.cli",
    "callscribe.qa.cli_insights",
    "callscribe.cli_store",
    "callscribe.server.cli",
    "callscribe.cli_stream",
)


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _stored_glossary(url: str) -> Glossary:
    """The glossary kept in a call store (terms, and ``wrong => right`` entries reviewers made from corrections)."""
    from callscribe.store import Store, StoreError

    try:
        with Store(url) as store:
            lines = store.terms()
    except StoreError as exc:
        raise GlossaryError(f"--glossary-db: {exc}") from None
    return Glossary.parse("\n".join(lines), source=f"the glossary in {url}")


def merge_glossaries(a: Glossary, b: Glossary) -> Glossary:
    terms = tuple(dict.fromkeys((*a.terms, *b.terms)))
    return Glossary(terms, tuple(dict.fromkeys((*a.corrections, *b.corrections))))


def build_options(**kw: object) -> Options:
    """CLI flags → Options (hotwords file parsed here so a bad file fails before any work)."""
    hotwords_file = kw.pop("hotwords_file", None)
    glossary_db = kw.pop("glossary_db", None)
    if hotwords_file is not None or glossary_db:
        glossary = Glossary.load(str(hotwords_file)) if hotwords_file is not None else Glossary()
        if glossary_db:
            glossary = merge_glossaries(glossary, _stored_glossary(str(glossary_db)))
        kw["hotwords"] = glossary.terms
        kw["corrections"] = glossary.corrections
    fmt = kw.pop("format_spec", None)
    kw["formats"] = parse_formats(str(fmt) if fmt else None)
    if kw.get("language") == "auto":
        kw["language"] = None
    roles = kw.pop("channel_roles_spec", None)
    kw["channel_roles"] = tuple(r.strip() for r in str(roles).split(",")) if roles else ()
    redact = kw.pop("redact_spec", None)
    kw["redact"] = tuple(r.strip() for r in str(redact).split(",") if r.strip()) if redact else ()
    unknown = sorted(set(kw["redact"]) - {"pii"})
    if unknown:
        raise ValueError(f"--redact knows 'pii', not {', '.join(unknown)}")
    if kw.get("redact_audio"):
        # Audio redaction needs to know when each word was said.
        kw["redact"] = ("pii",)
        kw["timestamps"] = "word"
    return Options.build({k: v for k, v in kw.items() if v is not None})


def known_languages() -> frozenset[str]:
    """Language codes some engine understands (Whisper's, Qwen3-ASR's and their usual aliases)."""
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    from callscribe.engines.qwen3_lang import ALIASES, CODE_TO_NAME

    return frozenset(_LANGUAGE_CODES) | frozenset(CODE_TO_NAME) | frozenset(ALIASES)


def validate_options(options: Options, *, mask: str | None = None) -> None:
    """Everything about the options that can be wrong, found before any work (one-line ``ValueError``).

    ``mask`` is a redaction mask template, checked by ``callscribe.text.pii.validate_mask`` where that exists.
    """
    if options.language is not None and options.language.strip().lower() not in known_languages():
        raise ValueError(f"--language {options.language}: unknown language code; use auto or a code like zh, en, yue")
    if options.qa or options.scorecard:
        require("jieba", "qa")
        require("pypinyin", "qa")
    if options.scorecard:
        from callscribe.qa.rules import ScorecardError, load_scorecard

        try:
            load_scorecard(options.scorecard)
        except ScorecardError as exc:
            raise ValueError(f"--scorecard: {' '.join(str(exc).split())}") from None
    if mask is not None:
        from callscribe.text import pii

        check = getattr(pii, "validate_mask", None)
        if check is not None:
            check(mask)


@app.command()
def transcribe(
    paths: Annotated[list[Path], typer.Argument(help="Recordings and/or folders (searched recursively).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for transcripts.")] = Path("out"),
    format_spec: Annotated[str, typer.Option("--format", "-f", help="json,txt,srt,vtt,tsv,rttm or all.")] = "json,txt",
    language: Annotated[str, typer.Option(help="zh, en, ... or auto.")] = "auto",
    engine: Annotated[str, typer.Option(help="auto, whisper, qwen3 or openai.")] = "auto",
    model: Annotated[str | None, typer.Option(help="Model name, hub id or local folder.")] = None,
    hotwords_file: Annotated[
        Path | None, typer.Option("--hotwords", help="Glossary: a term a line, or 'wrong => right'.")
    ] = None,
    glossary_db: Annotated[
        str | None, typer.Option("--glossary-db", help="Also use the glossary kept in this call store (URL).")
    ] = None,
    max_duration: Annotated[float | None, typer.Option(help="Refuse calls longer than this (seconds).")] = None,
    max_clip: Annotated[float, typer.Option("--max-clip", help="Longest clip sent to the engine (s, <= 30).")] = 20.0,
    batch_size: Annotated[int, typer.Option(help="Clips per engine batch (0: the engine's choice).")] = 0,
    beam_size: Annotated[int, typer.Option(help="Beam size (whisper).")] = 5,
    timestamps: Annotated[str, typer.Option(help="segment or word.")] = "segment",
    aligner: Annotated[
        str | None, typer.Option(help="Forced aligner for --timestamps word with qwen3 (hub id or folder).")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    compute_type: Annotated[str, typer.Option(help="auto, int8, float16, bfloat16, float32.")] = "auto",
    threads: Annotated[int, typer.Option(help="CPU threads for the engine (0 = all cores).")] = 0,
    hub: Annotated[str, typer.Option(help="huggingface or modelscope (qwen3).")] = "huggingface",
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible server(s), comma-separated.")] = None,
    concurrency: Annotated[int, typer.Option(help="Requests in flight (openai engine).")] = 4,
    channels: Annotated[
        str, typer.Option(help="auto, split (a party per channel) or mix (every channel averaged into one signal).")
    ] = "auto",
    channel_roles_spec: Annotated[
        str | None, typer.Option("--channel-roles", help="Roles by channel, e.g. agent,customer.")
    ] = None,
    speakers: Annotated[int | None, typer.Option(help="Number of speakers (mono calls).")] = None,
    min_speakers: Annotated[int | None, typer.Option(help="Fewest speakers (mono calls).")] = None,
    max_speakers: Annotated[int | None, typer.Option(help="Most speakers (mono calls).")] = None,
    roles_config: Annotated[str | None, typer.Option(help="YAML file overriding role patterns.")] = None,
    redact_spec: Annotated[str | None, typer.Option("--redact", help="'pii' to redact outputs.")] = None,
    redact_audio: Annotated[
        bool, typer.Option("--redact-audio", help="Also write <call>.redacted.wav with a tone over PII.")
    ] = False,
    qa: Annotated[bool, typer.Option("--qa", help="Run quality checks and write <call>.qa.json.")] = False,
    scorecard: Annotated[str | None, typer.Option(help="Scorecard YAML for --qa.")] = None,
    denoise: Annotated[bool, typer.Option(help="Spectral-gate denoising of clips.")] = False,
    no_normalize: Annotated[bool, typer.Option("--no-normalize", help="Skip loudness normalisation.")] = False,
    zh_script: Annotated[
        str, typer.Option("--zh-script", help="Mandarin text in simplified, traditional or keep (as heard).")
    ] = "simplified",
    db: Annotated[
        str | None,
        typer.Option(
            "--db", envvar="CALLSCRIBE_DB", help="Also store each call in this database (URL; default $CALLSCRIBE_DB)."
        ),
    ] = None,
    metadata: Annotated[
        Path | None, typer.Option("--metadata", help="CSV of call metadata for --db: file, agent_id, call_time, queue.")
    ] = None,
    name_pattern: Annotated[
        str | None, typer.Option("--name-pattern", help="Metadata for --db from names: '{agent_id}_{call_time}'.")
    ] = None,
    executor: Annotated[
        str, typer.Option(help="local (this machine) or ray (a Ray cluster; needs the ray extra).")
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option("--ray-address", help="Ray cluster to join: auto or ray://HOST:10001 (default: a local Ray)."),
    ] = None,
    gpus_per_engine: Annotated[
        float, typer.Option(help="GPUs per engine actor with --executor ray (a fraction shares a GPU).")
    ] = 1.0,
    cpu_workers: Annotated[
        int, typer.Option(help="CPUs for decoding and speakers with --executor ray (0 = all; a local Ray gets these).")
    ] = 0,
    engine_actors: Annotated[
        int, typer.Option(help="Engine actors with --executor ray (0 = one per --gpus-per-engine GPUs, else one).")
    ] = 0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Transcribe recordings into OUTPUT: one transcript per call, resumable, errors in errors.jsonl."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")
    try:
        options = build_options(
            format_spec=format_spec, language=language, engine=engine, model=model, hotwords_file=hotwords_file,
            glossary_db=glossary_db,
            max_duration=max_duration, max_clip_s=max_clip, batch_size=batch_size, beam_size=beam_size,
            timestamps=timestamps, device=device, compute_type=compute_type, threads=threads, hub=hub,
            base_url=base_url, concurrency=concurrency, channels=channels, channel_roles_spec=channel_roles_spec,
            speakers=speakers, min_speakers=min_speakers, max_speakers=max_speakers, roles_config=roles_config,
            redact_spec=redact_spec, redact_audio=redact_audio, qa=qa, scorecard=scorecard, denoise=denoise,
            extra={"aligner": aligner} if aligner else None,
            normalize=not no_normalize, zh_script=validate_script(zh_script),
        )  # fmt: skip
        validate_options(options)
    except MissingExtra as exc:
        raise fail(f"--qa: {exc}") from None
    except (GlossaryError, ValueError, TypeError) as exc:
        raise fail(str(exc)) from None
    try:
        ray = ray_settings(executor, ray_address, gpus_per_engine, cpu_workers, engine_actors, verbose)
    except ValueError as exc:
        raise fail(str(exc)) from None
    sink = _store_sink(db, metadata, name_pattern)  # the database is checked before the model loads
    try:
        check_writable(output)
        with OutputLock(output):  # before the model loads: a second run into the same folder stops at once
            summary = _locked_run(paths, output, options, sink, ray)
    except PermissionError as exc:
        raise fail(str(exc)) from None
    finally:
        if sink is not None:
            sink.store.close()
    _print_summary(summary, output)
    if sink is not None:
        err.print(f"database: {sink.added} calls stored ({sink.new} new)", highlight=False, soft_wrap=True)
    if summary.failed or summary.stopped:
        raise typer.Exit(1)


def _store_sink(db: str | None, metadata: Path | None, name_pattern: str | None) -> StoreSink | None:
    """The call store for ``--db`` with its metadata source, opened and checked now (one line and exit 2 if not)."""
    if not db:
        if metadata is not None or name_pattern is not None:
            raise fail("--metadata and --name-pattern describe calls in the database: give --db URL too")
        return None
    from callscribe.batch_db import StoreSink
    from callscribe.cli_store import load_metadata, open_store

    meta = load_metadata(metadata, name_pattern)
    return StoreSink(open_store(db), meta)


def _locked_run(
    paths: list[Path],
    output: Path,
    options: Options,
    sink: StoreSink | None = None,
    ray: dict[str, Any] | None = None,
) -> RunSummary:
    from callscribe.cli_progress import BatchProgress

    jobs, not_audio = discover(paths, output)
    if not jobs:
        raise fail("no audio found in " + ", ".join(map(str, paths)))
    pipeline: Executor
    if ray is None:
        local = pipeline = Pipeline(options)
        try:
            name = local.resolve_engine_name()
            loaded = local.engine
        except EngineError as exc:
            raise fail(str(exc)) from None
        why = f" — {local.engine_reason}" if local.engine_reason else ""
        described = loaded.describe() + why
    else:
        try:
            pipeline, name, described = start_ray(options, ray)
        except (EngineError, ValueError) as exc:
            raise fail(str(exc)) from None
    err.print(f"engine: [bold]{name}[/] {escape(described)}", highlight=False, soft_wrap=True)
    progress = BatchProgress(err, jobs)
    try:
        with progress:
            summary = run_locked(
                paths,
                output,
                options,
                pipeline,
                jobs,
                on_progress=progress.on_progress,
                on_activity=progress.on_activity,
                sink=sink,
            )
    finally:
        close = getattr(pipeline, "close", None)
        if ray is not None and close is not None:
            close()
    summary.not_audio = not_audio
    return summary


def _print_summary(s: RunSummary, output: Path) -> None:
    if s.stopped:
        err.print(
            f"[bold red]stopped:[/] {escape(s.stopped)}; {len(s.not_tried)} of {s.total} calls not tried; "
            "free some space and rerun the same command to go on",
            highlight=False,
            soft_wrap=True,
        )
    table = Table(title="callscribe transcribe", show_header=False, box=None)
    table.add_row("calls", f"{s.total} ({s.done} transcribed, {s.skipped} already done, {s.failed} failed)")
    table.add_row("audio", f"{s.audio_seconds / 60:.1f} min transcribed in {s.wall_seconds:.1f} s")
    if s.audio_seconds:
        table.add_row("speed", f"{s.speed:.1f}× real time")
    if s.not_audio:
        table.add_row("skipped", f"{len(s.not_audio)} files in folders that hold no audio")
    table.add_row("outputs", escape(str(output)))
    if s.not_tried:
        shown = ", ".join(Path(p).name for p in s.not_tried[:5]) + (", ..." if len(s.not_tried) > 5 else "")
        table.add_row("not tried", escape(f"{len(s.not_tried)}: {shown}"))
    if s.failed:
        saved = (output / "errors.jsonl").is_file()
        where = str(output / "errors.jsonl") if saved else "not saved: the output folder took no more writes"
        table.add_row("errors", escape(where))
    err.print(table)


def _register_commands() -> None:
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(app)


_register_commands()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - interactive
        err.print("interrupted; rerun the same command to resume")
        sys.exit(130)
    except (MissingExtra, ModuleNotFoundError) as exc:  # an optional extra a command needs: one line
        if extra_for(exc) is None:
            raise
        err.print(f"[bold red]error:[/] {escape(missing_extra_message(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
