"""``callscribe bench``: run the pipeline on recordings without writing transcripts and say where the time goes.

Reports per-stage seconds (decode, VAD, speakers, engine, text, QA), real-time factor, audio hours per hour, peak RSS
and the model load time on its own, and the engine's own figures (clips, mean clip length, GPU memory peak when torch
drives a CUDA device). The same command runs on CPU and GPU.

``--serial`` runs one call at a time so the stage times add up to the wall time; the default runs the calls the way
``callscribe transcribe`` does (decode and VAD of the next calls overlap the engine, clips batched across calls).
"""

from __future__ import annotations

import logging
import platform
import resource
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from callscribe.engines.base import Clip, Engine, EngineOptions, EngineResult
    from callscribe.eval.bench_report import BenchReport, EngineFigures
    from callscribe.options import Options

log = logging.getLogger("callscribe")

# ru_maxrss is in KiB on Linux, bytes on macOS.
_RSS_DIVISOR = 1024 * 1024 if sys.platform == "darwin" else 1024


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / _RSS_DIVISOR


def machine_name() -> str:
    """CPU model, core count and OS, e.g. ``AMD EPYC, 2 cores, Linux x86_64``."""
    import os

    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}"


class MeteredEngine:
    """Wraps the real engine to count what it is given: calls, clips, clip seconds and time inside it."""

    def __init__(self, engine: Engine, figures: EngineFigures) -> None:
        self.inner = engine
        self.name = engine.name
        self.figures = figures

    def describe(self) -> str:
        return self.inner.describe()

    def transcribe(self, clips: Sequence[Clip], options: EngineOptions) -> list[EngineResult]:
        t0 = time.perf_counter()
        try:
            return self.inner.transcribe(clips, options)
        finally:
            f = self.figures
            f.seconds += time.perf_counter() - t0
            f.calls += 1
            f.clips += len(clips)
            f.clip_seconds += sum(c.duration for c in clips)


def _torch_cuda() -> Any | None:
    """torch, when it is already loaded (by the engine) and sees a CUDA device; never imported just for this."""
    torch = sys.modules.get("torch")
    try:
        return torch if torch is not None and torch.cuda.is_available() else None
    except Exception:  # pragma: no cover - broken CUDA runtime
        return None


def run_bench(paths: Sequence[str | Path], options: Options, *, serial: bool = False, workers: int = 2) -> BenchReport:
    """Transcribe every recording under ``paths`` in memory (nothing written) and measure it."""
    from callscribe.batch import discover
    from callscribe.eval.bench_report import BenchReport, CallBench, EngineFigures, StageTimes
    from callscribe.pipeline import CallError, Pipeline

    jobs, _not_audio = discover(paths)
    if not jobs:
        raise FileNotFoundError("no audio found in " + ", ".join(map(str, paths)))
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    pipeline = Pipeline(options)
    name = pipeline.resolve_engine_name()
    engine = pipeline.engine
    load_s = time.perf_counter() - t0
    figures = EngineFigures(
        name=name,
        description=engine.describe(),
        device=str(getattr(engine, "device", options.device)),
        batch_size=options.batch_size or getattr(engine, "default_batch", 0) or getattr(engine, "batch_size", 0),
    )
    metered = MeteredEngine(engine, figures)
    pipeline = Pipeline(options, engine=metered)
    rss_after_load = peak_rss_mb()
    torch = _torch_cuda()
    if torch is not None:
        torch.cuda.reset_peak_memory_stats()
    stages = StageTimes()
    calls: list[CallBench] = []
    audio_s = 0.0
    t1 = time.perf_counter()
    for item in _results(pipeline, [j.path for j in jobs], serial=serial, workers=workers):
        if isinstance(item, CallError):
            calls.append(CallBench(path=item.path, error=str(item)))
            log.error("%s", item)
            continue
        timings = dict(item.timings)
        if options.qa:
            timings["qa"] = _qa_seconds(item, options)
        stages.add(timings)
        audio_s += item.call.duration
        calls.append(CallBench(item.call.path, item.call.duration, item.call.channels, len(item.utterances), timings))
    wall_s = time.perf_counter() - t1
    if torch is not None:
        figures.gpu_peak_mb = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    figures.seconds = round(figures.seconds, 4)
    figures.clip_seconds = round(figures.clip_seconds, 3)
    return BenchReport(
        machine=machine_name(),
        started=started,
        mode="serial" if serial else "pipelined",
        options=options.to_dict(),
        engine=figures,
        load_s=round(load_s, 4),
        wall_s=round(wall_s, 4),
        audio_s=round(audio_s, 3),
        stages=stages.rounded(),
        rss_after_load_mb=round(rss_after_load, 1),
        peak_rss_mb=round(peak_rss_mb(), 1),
        calls=calls,
    )


def _results(pipeline: Any, paths: list[Path], *, serial: bool, workers: int) -> Iterator[Any]:
    if not serial:
        yield from pipeline.run(((p, "") for p in paths), workers=workers)
        return
    for path in paths:
        yield from pipeline.run([(path, "")], workers=1, lookahead=1)


def _qa_seconds(transcript: Any, options: Options) -> float:
    from callscribe.qa import run_qa

    t0 = time.perf_counter()
    run_qa(transcript, options.scorecard)
    return round(time.perf_counter() - t0, 4)


def bench_command(
    paths: Annotated[list[Path], typer.Argument(help="Recordings and/or folders (searched recursively).")],
    engine: Annotated[str, typer.Option(help="auto, whisper, qwen3 or openai.")] = "auto",
    model: Annotated[str | None, typer.Option(help="Model name, hub id or local folder.")] = None,
    language: Annotated[str, typer.Option(help="zh, en, ... or auto.")] = "auto",
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    compute_type: Annotated[str, typer.Option(help="auto, int8, float16, bfloat16, float32.")] = "auto",
    threads: Annotated[int, typer.Option(help="CPU threads for the engine (0 = all cores).")] = 0,
    batch_size: Annotated[int, typer.Option(help="Clips per engine batch (0: the engine's choice).")] = 0,
    beam_size: Annotated[int, typer.Option(help="Beam size (whisper).")] = 5,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible server(s), comma-separated.")] = None,
    channels: Annotated[str, typer.Option(help="auto, split or mix.")] = "auto",
    speakers: Annotated[int | None, typer.Option(help="Number of speakers (mono calls); 1 skips diarization.")] = None,
    denoise: Annotated[bool, typer.Option(help="Spectral-gate denoising of clips.")] = False,
    qa: Annotated[bool, typer.Option("--qa", help="Also run and time the quality checks.")] = False,
    scorecard: Annotated[str | None, typer.Option(help="Scorecard YAML for --qa.")] = None,
    serial: Annotated[
        bool, typer.Option("--serial", help="One call at a time, no overlap: stage times add up to the wall time.")
    ] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the report as JSON to this file.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Measure the pipeline on recordings: time per stage, real-time factor, memory; writes no transcripts."""
    from rich.console import Console
    from rich.markup import escape

    from callscribe.engines.base import EngineError
    from callscribe.eval.bench_report import render, write_json
    from callscribe.options import Options

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")
    err = Console(stderr=True)
    try:
        options = Options.build(
            {
                "engine": engine,
                "model": model,
                "language": None if language == "auto" else language,
                "device": device,
                "compute_type": compute_type,
                "threads": threads,
                "batch_size": batch_size,
                "beam_size": beam_size,
                "base_url": base_url,
                "channels": channels,
                "speakers": speakers,
                "denoise": denoise,
                "qa": qa,
                "scorecard": scorecard,
            }
        )
        report = run_bench(paths, options, serial=serial)
    except (EngineError, FileNotFoundError, ValueError, TypeError) as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    console = Console()
    for table in render(report):
        console.print(table)
    if json_out is not None:
        write_json(report, json_out)
        log.info("wrote %s", json_out)
    if report.failed:
        for call in report.calls:
            if call.error:
                err.print(f"[red]failed:[/] {escape(str(call.error))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the ``bench`` command to the main callscribe app."""
    app.command("bench")(bench_command)
