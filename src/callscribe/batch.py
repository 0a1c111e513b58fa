"""The batch runner: find recordings, skip what is done, transcribe the rest, write outputs and errors.

Resumable and idempotent: a call is done when ``OUT/<stem>.json`` exists with the same input sha256 and the same
result-affecting options. Every output is written atomically (JSON last), so a run killed at any point, even with
``kill -9``, leaves only whole files, and the next run neither loses nor repeats anything.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from callscribe.model import Transcript
from callscribe.options import Options
from callscribe.outputs.writers import atomic_write_text, write_outputs
from callscribe.pipeline import CallError, Pipeline, one_line, sha256_file

log = logging.getLogger("callscribe")

ERRORS_FILE = "errors.jsonl"
LOCK_FILE = ".callscribe.lock"
HIDDEN_PREFIXES = (".", "~")
# In a folder, a file is taken when PyAV finds audio in it, or when its name says it is a recording: those fail
# loudly (zero bytes, no audio stream, corrupt) instead of being skipped without a word.
MEDIA_SUFFIXES = frozenset(
    [
        ".wav",
        ".wave",
        ".mp3",
        ".m4a",
        ".aac",
        ".amr",
        ".awb",
        ".opus",
        ".ogg",
        ".oga",
        ".flac",
        ".wma",
        ".mp4",
        ".mov",
        ".mkv",
        ".webm",
        ".3gp",
        ".caf",
        ".aif",
        ".aiff",
        ".au",
        ".gsm",
        ".vox",
    ]
)


@dataclass(frozen=True)
class Job:
    path: Path
    stem: str
    duration: float = 0.0  # from a cheap container probe; 0 when unknown


@dataclass
class RunSummary:
    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    not_audio: list[str] = field(default_factory=list)
    errors: list[CallError] = field(default_factory=list)

    @property
    def speed(self) -> float:
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0


def _probe_duration(path: Path) -> float | None:
    """Seconds of audio per the container, or ``None`` when PyAV finds no audio stream."""
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            streams = container.streams.audio
            if not streams:
                return None
            stream = streams[0]
            if stream.duration is not None and stream.time_base is not None:
                return float(stream.duration * stream.time_base)
            return float(container.duration / 1_000_000) if container.duration else 0.0
    except Exception:
        return None


def discover(paths: Sequence[str | Path], out_dir: Path | None = None) -> tuple[list[Job], list[str]]:
    """Files as given, folders walked recursively keeping what PyAV can open as audio.

    Returns the jobs and the files skipped in folders because they hold no audio. A path that does not exist, or a
    file given by name that is not audio, stays a job: it fails with a clear error and the batch goes on.
    """
    jobs: list[Job] = []
    skipped: list[str] = []
    seen: set[Path] = set()
    out_resolved = out_dir.resolve() if out_dir else None
    for raw in paths:
        root = Path(raw)
        if root.is_dir():
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = sorted(
                    d
                    for d in dirnames
                    if not d.startswith(HIDDEN_PREFIXES) and (Path(dirpath) / d).resolve() != out_resolved
                )
                for name in sorted(filenames):
                    if name.startswith(HIDDEN_PREFIXES):
                        continue
                    f = Path(dirpath) / name
                    duration = _probe_duration(f)
                    if duration is None and f.suffix.lower() not in MEDIA_SUFFIXES:
                        skipped.append(str(f))
                        continue
                    rel = f.relative_to(root).with_suffix("")
                    _add(jobs, seen, f, "__".join(rel.parts), duration or 0.0)
        else:
            _add(jobs, seen, root, root.stem or root.name, _probe_duration(root) or 0.0)
    # Two inputs may share a stem (a/x.wav, b/x.mp3): keep names unique and stable.
    counts: dict[str, int] = {}
    unique = []
    for job in jobs:
        n = counts.get(job.stem, 0)
        counts[job.stem] = n + 1
        unique.append(job if n == 0 else Job(job.path, f"{job.stem}.{n + 1}", job.duration))
    return unique, skipped


def _add(jobs: list[Job], seen: set[Path], path: Path, stem: str, duration: float) -> None:
    key = path.resolve() if path.exists() else path
    if key in seen:
        return
    seen.add(key)
    jobs.append(Job(path, stem, duration))


class OutputLock:
    """One run at a time per output folder (``OUT/.callscribe.lock``, released by the OS even on ``kill -9``).

    Holding it makes it safe to sweep the temp files a killed run left behind.
    """

    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / LOCK_FILE
        self._fd: int | None = None

    def __enter__(self) -> OutputLock:
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise PermissionError(f"{self.path.parent}: another callscribe run is writing to this folder") from None
        self._fd = fd
        for stale in self.path.parent.glob(".*.tmp"):
            stale.unlink(missing_ok=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def check_writable(out_dir: Path) -> None:
    """Fail early, in one line, when the output folder cannot be written."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".write-test.", dir=out_dir)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise PermissionError(f"{out_dir}: output folder is not writable ({exc.strerror or exc})") from None


def is_done(job: Job, out_dir: Path, sha: str, options: Options) -> Transcript | None:
    """The finished transcript for this input and options, or ``None``."""
    path = out_dir / f"{job.stem}.json"
    if not path.is_file():
        return None
    try:
        t = Transcript.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if t.call.sha256 != sha or t.options.get("result_key") != options.result_key():
        return None
    return t


class ErrorLog:
    """``OUT/errors.jsonl``: one line per file that failed in its latest attempt, rewritten atomically."""

    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / ERRORS_FILE
        self.entries: dict[str, dict[str, str]] = {}
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                    self.entries[entry["path"]] = entry
                except (ValueError, KeyError, TypeError):
                    continue

    def record(self, err: CallError) -> None:
        self.entries[err.path] = {"path": err.path, "stage": err.stage, "reason": str(err)}
        self._save()

    def clear(self, path: str) -> None:
        if self.entries.pop(path, None) is not None:
            self._save()

    def _save(self) -> None:
        if not self.entries:
            self.path.unlink(missing_ok=True)
            return
        body = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in self.entries.values())
        atomic_write_text(self.path, body)


ProgressHook = Callable[[str, Job, float], None]  # (event, job, audio seconds) with event done|skipped|failed


def run_batch(
    paths: Sequence[str | Path],
    out_dir: str | Path,
    options: Options,
    *,
    pipeline: Pipeline | None = None,
    jobs: list[Job] | None = None,
    on_progress: ProgressHook | None = None,
) -> RunSummary:
    """Transcribe every recording under ``paths`` into ``out_dir``; see the module docstring for the guarantees."""
    out = Path(out_dir)
    check_writable(out)
    with OutputLock(out):
        return _run_locked(paths, out, options, pipeline, jobs, on_progress)


def _run_locked(
    paths: Sequence[str | Path],
    out: Path,
    options: Options,
    pipeline: Pipeline | None,
    jobs: list[Job] | None,
    on_progress: ProgressHook | None,
) -> RunSummary:
    t_start = time.perf_counter()
    summary = RunSummary()
    if jobs is None:
        jobs, summary.not_audio = discover(paths, out)
    summary.total = len(jobs)
    errors = ErrorLog(out)
    pipeline = pipeline or Pipeline(options)
    by_path: dict[str, Job] = {}

    def note(event: str, job: Job, seconds: float) -> None:
        if on_progress is not None:
            on_progress(event, job, seconds)

    def todo() -> Iterator[tuple[Path, str]]:
        for job in jobs:
            try:
                sha = sha256_file(job.path)
            except FileNotFoundError:
                sha = ""
            except OSError as exc:
                fail(
                    CallError(str(job.path), "input", f"{job.path}: cannot read file ({exc.strerror or exc})"),
                    job,
                )
                continue
            if sha:
                done = is_done(job, out, sha, options)
                if done is not None:
                    missing = [f for f in options.formats if not (out / f"{job.stem}.{f}").is_file()]
                    if missing:
                        write_outputs(done, out, job.stem, tuple(missing))
                    errors.clear(str(job.path))
                    summary.skipped += 1
                    note("skipped", job, done.call.duration)
                    continue
            by_path[str(job.path)] = job
            yield job.path, sha

    def fail(err: CallError, job: Job) -> None:
        summary.failed += 1
        summary.errors.append(err)
        errors.record(err)
        log.error("%s", err)
        note("failed", job, job.duration)

    for item in pipeline.run(todo()):
        if isinstance(item, CallError):
            fail(item, by_path.get(item.path) or Job(Path(item.path), Path(item.path).stem))
            continue
        job = by_path[item.call.path]
        t = item
        if options.qa:
            t = _with_qa(t, out, job.stem, options)
        try:
            if options.redact_audio:
                _redact_audio(t, out, job.stem)
            write_outputs(t, out, job.stem, options.formats)
        except OSError as exc:
            fail(CallError(str(job.path), "write", f"{job.path}: cannot write outputs ({one_line(exc)})"), job)
            continue
        errors.clear(str(job.path))
        summary.done += 1
        summary.audio_seconds += t.call.duration
        note("done", job, t.call.duration)
    summary.wall_seconds = time.perf_counter() - t_start
    return summary


def _redact_audio(t: Transcript, out: Path, stem: str) -> None:
    """``OUT/<stem>.redacted.wav``: the recording with a tone over every redacted stretch (input untouched)."""
    from callscribe.text.pii import PiiSpan, redact_audio

    spans = [PiiSpan(r.start, r.end, r.kind, r.channel) for r in t.redactions]
    redact_audio(t.call.path, spans, out / f"{stem}.redacted.wav")


def _with_qa(t: Transcript, out: Path, stem: str, options: Options) -> Transcript:
    from callscribe.qa import run_qa

    t0 = time.perf_counter()
    result = run_qa(t, options.scorecard)
    atomic_write_text(out / f"{stem}.qa.json", json.dumps(result.to_dict(), ensure_ascii=False, indent=2) + "\n")
    timings = {**t.timings, "qa": round(time.perf_counter() - t0, 4)}
    from dataclasses import replace

    return replace(t, timings=timings)
