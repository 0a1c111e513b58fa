"""The batch runner: find recordings, skip what is done, transcribe the rest, write outputs and errors.

Resumable and idempotent: a call is done when ``OUT/<stem>.json`` exists with the same input sha256 and the same
result-affecting options. A call's files are replaced as one set (:class:`~callscribe.outputs.writers.OutputSet`,
JSON last), so a run killed at any point, even with ``kill -9``, leaves either the old set or the new one, and the
next run neither loses nor repeats anything. A file that cannot be used, a failed write, a failed QA are one line
for that call and the batch goes on; a full disk stops the run cleanly, saying what was and was not done.
With a store sink (``--db``) each call also goes into the database right after its files (see
:mod:`callscribe.batch_db`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from callscribe.audio.files import AudioError, add_progress_listener, open_regular
from callscribe.batch_inputs import HIDDEN_PREFIXES, MEDIA_SUFFIXES, Job, discover
from callscribe.batch_store import (
    ERRORS_FILE,
    LOCK_FILE,
    ErrorLog,
    OutputLock,
    check_writable,
    previous,
    write_failure,
)
from callscribe.model import QAResult, Transcript
from callscribe.options import Options
from callscribe.outputs.writers import QA_SUFFIX, REDACTED_SUFFIX, WRITERS, OutputSet
from callscribe.pipeline import CallError, Pipeline, one_line

if TYPE_CHECKING:
    from callscribe.batch_db import StoreSink
    from callscribe.executors.base import Executor

log = logging.getLogger("callscribe")

__all__ = [
    "ERRORS_FILE",
    "HIDDEN_PREFIXES",
    "LOCK_FILE",
    "MEDIA_SUFFIXES",
    "ErrorLog",
    "Job",
    "OutputLock",
    "RunSummary",
    "check_writable",
    "discover",
    "run_batch",
    "run_locked",
]

# (event, job, audio seconds, error) with event done | skipped | failed; error is set for failed.
ProgressHook = Callable[[str, Job, float, "CallError | None"], None]
# (activity, call, seconds so far, seconds in all or None) with activity decoding | transcribing.
ActivityHook = Callable[[str, str, float, "float | None"], None]


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
    stopped: str | None = None  # why the run stopped before trying every call (disk full)
    not_tried: list[str] = field(default_factory=list)

    @property
    def speed(self) -> float:
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0


def sha256_regular(path: Path) -> str:
    """sha256 of a regular file, read through one descriptor checked to be a regular file (never blocks)."""
    digest = hashlib.sha256()
    fd = open_regular(path)
    with os.fdopen(fd, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class _HeardCounter:
    """Wraps an engine to tell how far into each call the engine has got (progress during long calls)."""

    def __init__(self, inner: Any, hook: ActivityHook) -> None:
        self._inner = inner
        self._hook = hook
        self._reached: dict[str, float] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def transcribe(self, clips: Sequence[Any], options: Any) -> Any:
        ends: dict[str, float] = {}
        for clip in clips:
            ends[clip.call_id] = max(ends.get(clip.call_id, 0.0), float(clip.start + clip.duration))
        results = self._inner.transcribe(clips, options)
        for call_id, end in ends.items():
            self._reached[call_id] = max(self._reached.get(call_id, 0.0), end)
            self._hook("transcribing", call_id, self._reached[call_id], None)
        return results


def run_batch(
    paths: Sequence[str | Path],
    out_dir: str | Path,
    options: Options,
    *,
    pipeline: Pipeline | Executor | None = None,
    jobs: list[Job] | None = None,
    on_progress: ProgressHook | None = None,
    on_activity: ActivityHook | None = None,
    sink: StoreSink | None = None,
) -> RunSummary:
    """Transcribe every recording under ``paths`` into ``out_dir``; see the module docstring for the guarantees.

    With a ``sink`` (:class:`~callscribe.batch_db.StoreSink`) each call also goes into the call store as it
    finishes, and calls already done in the folder but missing from the store are stored without transcribing.
    ``pipeline`` may be another executor (:class:`~callscribe.executors.base.Executor`, e.g. the Ray executor):
    the same skipping, outputs, store and errors, with the calls transcribed wherever it runs them.
    """
    out = Path(out_dir)
    check_writable(out)
    with OutputLock(out):
        return run_locked(paths, out, options, pipeline, jobs, on_progress, on_activity, sink)


def run_locked(
    paths: Sequence[str | Path],
    out: Path,
    options: Options,
    pipeline: Pipeline | Executor | None = None,
    jobs: list[Job] | None = None,
    on_progress: ProgressHook | None = None,
    on_activity: ActivityHook | None = None,
    sink: StoreSink | None = None,
) -> RunSummary:
    """:func:`run_batch` for a caller that already holds ``OutputLock(out)`` (it loads the model after locking)."""
    t_start = time.perf_counter()
    summary = RunSummary()
    if jobs is None:
        jobs, summary.not_audio = discover(paths, out)
    summary.total = len(jobs)
    errors = ErrorLog(out)
    pipeline = pipeline or Pipeline(options)
    if on_activity is not None and isinstance(pipeline, Pipeline):  # other executors report per call only
        pipeline = _counting(pipeline, on_activity)
    by_path: dict[str, Job] = {}
    finished: set[str] = set()

    def note(event: str, job: Job, seconds: float, err: CallError | None = None) -> None:
        finished.add(str(job.path))
        if on_progress is not None:
            on_progress(event, job, seconds, err)

    def fail(err: CallError, job: Job) -> None:
        summary.failed += 1
        summary.errors.append(err)
        errors.record(err)
        log.debug("%s", err)
        note("failed", job, job.duration, err)
        if err.stage == "disk-full" and summary.stopped is None:
            summary.stopped = f"{out}: no space left on the device"

    def todo() -> Iterator[tuple[Path, str]]:
        for job in jobs:
            if summary.stopped:
                return
            if job.error:
                fail(CallError(str(job.path), "input", job.error), job)
                continue
            try:
                sha = sha256_regular(job.path)
            except AudioError as exc:
                fail(CallError(str(job.path), "input", str(exc)), job)
                continue
            except OSError as exc:
                fail(CallError(str(job.path), "input", f"{job.path}: cannot read file ({exc.strerror or exc})"), job)
                continue
            prev = previous(job, out, sha, options)
            if prev.foreign:
                fail(CallError(str(job.path), "output", prev.foreign), job)
                continue
            if prev.transcript is not None:
                err = _complete(prev.transcript, out, job, options, sink)
                if err is not None:
                    fail(err, job)
                    continue
                errors.clear(str(job.path))
                summary.skipped += 1
                note("skipped", job, prev.transcript.call.duration)
                continue
            by_path[str(job.path)] = job
            yield job.path, sha

    remove_listener = (
        add_progress_listener(lambda path, s, total: on_activity("decoding", path, s, total))
        if on_activity is not None
        else None
    )
    results = pipeline.run(todo())
    try:
        for item in results:
            if isinstance(item, CallError):
                fail(item, by_path.get(item.path) or Job(Path(item.path), Path(item.path).stem))
            else:
                job = by_path[item.call.path]
                err = _finish(item, out, job, options, sink)
                if err is not None:
                    fail(err, job)
                else:
                    errors.clear(str(job.path))
                    summary.done += 1
                    summary.audio_seconds += item.call.duration
                    note("done", job, item.call.duration)
            if summary.stopped:
                break
    finally:
        results.close()
        if remove_listener is not None:
            remove_listener()
    summary.not_tried = [str(j.path) for j in jobs if str(j.path) not in finished]
    summary.wall_seconds = time.perf_counter() - t_start
    return summary


def _counting(pipeline: Pipeline, hook: ActivityHook) -> Pipeline:
    """The same pipeline with its engine wrapped to report how far the engine has got in each call."""
    engine = pipeline.engine
    counted = Pipeline(pipeline.options, engine=_HeardCounter(engine, hook))  # type: ignore[arg-type]
    counted.engine_reason = pipeline.engine_reason
    return counted


def _finish(t: Transcript, out: Path, job: Job, options: Options, sink: StoreSink | None = None) -> CallError | None:
    """QA, redacted audio and every format of a new transcript, replacing the call's earlier set as one; then the
    call (with its QA) into the store."""
    files = OutputSet(out, job.stem)
    qa = None
    try:
        qa_error = None
        if options.qa:
            t, qa, qa_error = _qa(t, job, options)
            if qa is not None:
                files.add_text(QA_SUFFIX, _qa_text(qa))
        if options.redact_audio:
            _redact_audio(t, files.temp_for(REDACTED_SUFFIX))
        files.add_transcript(t, options.formats)
        files.commit(replace_all=True)
    except Exception as exc:
        files.discard()
        return _not_written(job, exc)
    if sink is not None:
        return _stored(job, lambda: sink.put(t, qa)) or qa_error
    return qa_error


def _complete(t: Transcript, out: Path, job: Job, options: Options, sink: StoreSink | None = None) -> CallError | None:
    """A call already done: write the formats, QA result and redacted audio asked for now but missing; store the
    call when the store lacks it or its QA is new."""
    files = OutputSet(out, job.stem)
    qa = None
    try:
        missing = [f for f in options.formats if not files.final(WRITERS[f].suffix).is_file()]
        qa_error = None
        if options.qa and not files.final(QA_SUFFIX).is_file():
            _, qa, qa_error = _qa(t, job, options)
            if qa is not None:
                files.add_text(QA_SUFFIX, _qa_text(qa))
        if options.redact_audio and not files.final(REDACTED_SUFFIX).is_file():
            _redact_audio(t, files.temp_for(REDACTED_SUFFIX))
        if missing or files.staged:
            files.add_transcript(t, missing)
            files.commit(replace_all=False)
    except Exception as exc:
        files.discard()
        return _not_written(job, exc)
    if sink is not None:
        return _stored(job, lambda: sink.ensure(t, out, job.stem, qa)) or qa_error
    return qa_error


def _stored(job: Job, put: Callable[[], object]) -> CallError | None:
    """Run one store write; a failure is one line for the call (its files are written: a rerun stores it)."""
    try:
        put()
    except Exception as exc:
        log.debug("store write failed", exc_info=True)
        return CallError(str(job.path), "store", f"{job.path}: not stored in the database ({one_line(exc)})")
    return None


def _not_written(job: Job, exc: Exception) -> CallError:
    """A call whose outputs could not be written: a disk error, or the redacted audio failed."""
    if isinstance(exc, OSError):
        return write_failure(job, exc)
    return CallError(str(job.path), "redact", f"{job.path}: cannot write redacted audio ({one_line(exc)})")


def _redact_audio(t: Transcript, target: Path) -> None:
    """The recording with a tone over every redacted stretch (input untouched), written to ``target``."""
    from callscribe.text.pii import PiiSpan, redact_audio

    spans = [PiiSpan(r.start, r.end, r.kind, r.channel) for r in t.redactions]
    redact_audio(t.call.path, spans, target)


def _qa_text(result: QAResult) -> str:
    return json.dumps(result.to_dict(), ensure_ascii=False, indent=2) + "\n"


def _qa(t: Transcript, job: Job, options: Options) -> tuple[Transcript, QAResult | None, CallError | None]:
    """QA of one call: the transcript (timings updated), the result, or the one-line reason it failed."""
    from callscribe.extras import MissingExtra

    t0 = time.perf_counter()
    try:
        from callscribe.qa import run_qa

        result = run_qa(t, options.scorecard)
    except MissingExtra as exc:
        return t, None, CallError(str(job.path), "qa", f"{job.path}: QA skipped: {exc}")
    except ModuleNotFoundError as exc:
        from callscribe.extras import missing_extra_message

        return t, None, CallError(str(job.path), "qa", f"{job.path}: QA skipped: {missing_extra_message(exc)}")
    except Exception as exc:
        log.debug("QA failed", exc_info=True)
        return t, None, CallError(str(job.path), "qa", f"{job.path}: QA failed: {one_line(exc)}")
    return replace(t, timings={**t.timings, "qa": round(time.perf_counter() - t0, 4)}), result, None
