"""What ``callscribe bench`` measured: dataclasses, the rich table, and the atomic JSON file."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from rich.table import Table

from callscribe.outputs.writers import atomic_write_text

# Per-call timing keys the pipeline records, in pipeline order (``qa`` only when asked for).
STAGES = ("decode", "vad", "speakers", "engine", "text", "qa")


@dataclass
class StageTimes:
    """Seconds per stage summed over every call (``text`` includes the speakers stage's post-ASR cleanup)."""

    decode: float = 0.0
    vad: float = 0.0
    speakers: float = 0.0
    engine: float = 0.0
    text: float = 0.0
    qa: float = 0.0

    def add(self, timings: dict[str, float]) -> None:
        for name in STAGES:
            setattr(self, name, getattr(self, name) + float(timings.get(name, 0.0)))

    @property
    def total(self) -> float:
        return sum(getattr(self, name) for name in STAGES)

    def rounded(self) -> StageTimes:
        return StageTimes(**{name: round(getattr(self, name), 4) for name in STAGES})


@dataclass
class EngineFigures:
    """The engine as it ran: what it is, where, and what it was given."""

    name: str
    description: str
    device: str
    batch_size: int
    calls: int = 0  # engine.transcribe calls (batches handed over by the pipeline)
    clips: int = 0
    clip_seconds: float = 0.0
    seconds: float = 0.0  # wall time inside engine.transcribe
    gpu_peak_mb: float | None = None  # torch.cuda.max_memory_allocated, when torch drives a CUDA device

    @property
    def mean_clip_s(self) -> float:
        return self.clip_seconds / self.clips if self.clips else 0.0


@dataclass
class CallBench:
    """One call: its length and per-stage seconds, or the one-line reason it failed."""

    path: str
    audio_s: float = 0.0
    channels: int = 0
    utterances: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None


@dataclass
class BenchReport:
    """A whole run. ``wall_s`` excludes the model load (``load_s``); ``rtf`` = ``wall_s`` / ``audio_s``."""

    machine: str
    started: str
    mode: str  # "pipelined" (as ``transcribe`` runs) or "serial" (one call at a time, stage times add up)
    options: dict[str, object]
    engine: EngineFigures
    load_s: float
    wall_s: float
    audio_s: float
    stages: StageTimes
    rss_after_load_mb: float
    peak_rss_mb: float
    calls: list[CallBench] = field(default_factory=list)

    @property
    def rtf(self) -> float:
        return self.wall_s / self.audio_s if self.audio_s else 0.0

    @property
    def audio_hours_per_hour(self) -> float:
        return self.audio_s / self.wall_s if self.wall_s else 0.0

    @property
    def unattributed_s(self) -> float:
        """Wall time no stage accounts for (clip cutting, hashing, scheduling); negative when stages overlapped."""
        return self.wall_s - self.stages.total

    @property
    def failed(self) -> int:
        return sum(1 for c in self.calls if c.error)

    def to_dict(self) -> dict[str, object]:
        d = dataclasses.asdict(self)
        d["rtf"] = round(self.rtf, 4)
        d["audio_hours_per_hour"] = round(self.audio_hours_per_hour, 3)
        d["unattributed_s"] = round(self.unattributed_s, 4)
        d["stages_total_s"] = round(self.stages.total, 4)
        d["engine"]["mean_clip_s"] = round(self.engine.mean_clip_s, 3)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n"


def write_json(report: BenchReport, path: str | Path) -> Path:
    """Write the report atomically (temp file + rename)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, report.to_json())
    return target


def _share(seconds: float, wall: float) -> str:
    return f"{seconds / wall:.0%}" if wall > 0 else "-"


def render(report: BenchReport) -> list[Table]:
    """The summary and the per-stage breakdown as rich tables."""
    e = report.engine
    summary = Table(title="callscribe bench", show_header=False, box=None)
    summary.add_row("machine", report.machine)
    summary.add_row("engine", f"{e.name}: {e.description} (device {e.device}, batch {e.batch_size})")
    calls = f"{len(report.calls)}" + (f" ({report.failed} failed)" if report.failed else "")
    summary.add_row("calls", f"{calls}, {report.audio_s:.1f} s audio, mode {report.mode}")
    summary.add_row("model load", f"{report.load_s:.2f} s")
    summary.add_row("wall", f"{report.wall_s:.2f} s (model load excluded)")
    summary.add_row("real-time factor", f"{report.rtf:.3f}")
    summary.add_row("audio hours / hour", f"{report.audio_hours_per_hour:.1f}")
    summary.add_row("clips", f"{e.clips} in {e.calls} engine calls, mean {e.mean_clip_s:.1f} s")
    summary.add_row("peak RSS", f"{report.peak_rss_mb:.0f} MB ({report.rss_after_load_mb:.0f} MB after model load)")
    if e.gpu_peak_mb is not None:
        summary.add_row("GPU memory peak", f"{e.gpu_peak_mb:.0f} MB")
    stages = Table(title="time per stage (summed over calls)")
    stages.add_column("stage")
    stages.add_column("seconds", justify="right")
    stages.add_column("share of wall", justify="right")
    stages.add_column("x real time", justify="right")
    for name in STAGES:
        seconds = getattr(report.stages, name)
        if name == "qa" and seconds == 0.0 and not report.options.get("qa"):
            continue
        speed = f"{report.audio_s / seconds:.0f}" if seconds > 0 else "-"
        stages.add_row(name, f"{seconds:.2f}", _share(seconds, report.wall_s), speed)
    stages.add_row("unattributed", f"{report.unattributed_s:.2f}", _share(report.unattributed_s, report.wall_s), "")
    return [summary, stages]
