"""What ``callscribe transcribe`` shows while it works: a bar on a terminal, plain lines otherwise.

Every failed file is reported once, as it happens (its one-line reason); a long call shows how far decoding and the
engine have got, so an 18-hour recording never means minutes of silence.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from callscribe.batch import Job
from callscribe.pipeline import CallError

# Seconds between two plain progress lines about the same call (logs, pipes); 0 prints every step.
PROGRESS_EVERY_ENV = "CALLSCRIBE_PROGRESS_EVERY"
DEFAULT_EVERY_S = 30.0


def hms(seconds: float) -> str:
    s = round(max(0.0, seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class BatchProgress:
    """Progress for one batch: ``on_progress`` and ``on_activity`` are the batch runner's hooks."""

    def __init__(self, console: Console, jobs: list[Job]) -> None:
        self.console = console
        self.jobs = jobs
        self.plain = not console.is_terminal
        self.every = float(os.environ.get(PROGRESS_EVERY_ENV, DEFAULT_EVERY_S))
        self.by_call: dict[str, Job] = {str(job.path): job for job in jobs}
        stems: dict[str, list[Job]] = {}
        for job in jobs:
            stems.setdefault(job.path.stem, []).append(job)
        # The engine knows a call by its file name without extension: only where that names one job.
        self.by_call.update({stem: same[0] for stem, same in stems.items() if len(same) == 1})
        self.n = 0
        self.audio = 0.0
        self.credited: dict[str, float] = {}  # audio seconds of unfinished calls already on the bar
        self.last_line: dict[tuple[str, str], float] = {}
        self.first_seen: dict[str, float] = {}
        self.lock = threading.Lock()
        columns = (
            TextColumn("[bold]{task.fields[files]}[/] files"),
            BarColumn(),
            TextColumn("{task.fields[hours]:.2f} h audio"),
            TextColumn("{task.fields[speed]:.1f}× real time"),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[now]}"),
        )
        self.bar = Progress(*columns, console=console, transient=False, disable=self.plain)
        total = sum(j.duration for j in jobs) or float(len(jobs))
        self.task = self.bar.add_task("calls", total=total, files=f"0/{len(jobs)}", hours=0.0, speed=0.0, now="")

    def __enter__(self) -> BatchProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(None, None, None)

    def _say(self, text: str) -> None:
        self.console.print(escape(text), highlight=False, soft_wrap=True)

    def on_progress(self, event: str, job: Job, seconds: float, error: CallError | None) -> None:
        with self.lock:
            self.n += 1
            if event == "done":
                self.audio += seconds
            weight = job.duration or seconds or (0.0 if self.jobs and any(j.duration for j in self.jobs) else 1.0)
            advance = max(0.0, weight - self.credited.pop(str(job.path), 0.0))
            elapsed = self.bar.tasks[0].elapsed or 1e-9
            self.bar.update(
                self.task,
                advance=advance,
                files=f"{self.n}/{len(self.jobs)}",
                hours=self.audio / 3600,
                speed=self.audio / elapsed,
                now="",
            )
            count = f"[{self.n}/{len(self.jobs)}]"
            if error is not None:
                self._say(f"{count} failed ({error.stage}): {error}")
            elif self.plain:
                said = "already done" if event == "skipped" else event
                self._say(f"{count} {said}: {job.path} ({hms(seconds)} of audio)")

    def on_activity(self, activity: str, call: str, seconds: float, total: float | None) -> None:
        """Decoding and engine progress inside one call (called from worker threads too)."""
        with self.lock:
            job = self.by_call.get(call)
            name = str(job.path) if job is not None else call
            length = total or (job.duration if job is not None else 0.0) or None
            where = f"{hms(seconds)} of {hms(length)}" if length else hms(seconds)
            if activity == "transcribing" and job is not None and job.duration:
                key = str(job.path)
                credit = min(seconds, job.duration) * 0.99
                gain = credit - self.credited.get(key, 0.0)
                if gain > 0:
                    self.credited[key] = credit
                    self.bar.update(self.task, advance=gain)
            self.bar.update(self.task, now=escape(f"{activity} {Path(name).name}: {where}"))
            if self.plain:
                now = time.monotonic()
                first = self.first_seen.setdefault(name, now)
                last = self.last_line.get((activity, name))
                if now - first >= self.every and (last is None or now - last >= self.every):
                    self.last_line[(activity, name)] = now
                    self._say(f"... {activity} {name}: {where}")
