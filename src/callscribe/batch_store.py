"""The output folder of a batch run: its lock, the state of each call in it, errors.jsonl, and write failures.

Every write the batch runner makes goes through :func:`write_failure` when it fails: the failure becomes one line
for that call, and a full disk (``ENOSPC``/``EDQUOT``) says so, so the runner can stop cleanly.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from callscribe.batch_inputs import Job, same_file
from callscribe.model import Transcript
from callscribe.options import Options
from callscribe.outputs.writers import TEMP_PATTERNS, atomic_write_text, replay_commits
from callscribe.pipeline import CallError

log = logging.getLogger("callscribe")

ERRORS_FILE = "errors.jsonl"
LOCK_FILE = ".callscribe.lock"
DISK_FULL = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


class OutputLock:
    """One run at a time per output folder (``OUT/.callscribe.lock``, released by the OS even on ``kill -9``).

    Holding it makes it safe to finish the commits and sweep the temp files a killed run left behind.
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
        try:
            replay_commits(self.path.parent)
            for pattern in TEMP_PATTERNS:
                for stale in self.path.parent.glob(pattern):
                    stale.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("%s: could not tidy up after an earlier run (%s)", self.path.parent, exc.strerror or exc)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def check_writable(out_dir: Path) -> None:
    """Fail early, in one line, when the output folder cannot be written."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".write-test.", suffix=".tmp", dir=out_dir)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise PermissionError(f"{out_dir}: output folder is not writable ({exc.strerror or exc})") from None


@dataclass(frozen=True)
class Previous:
    """What the output folder already holds for a job's stem."""

    transcript: Transcript | None = None  # the finished transcript for this input and these options
    foreign: str | None = None  # why the stem's JSON must not be overwritten (it is another recording's)
    exists: bool = False  # some transcript JSON is there (redoing the call replaces the whole set)


def previous(job: Job, out_dir: Path, sha: str, options: Options) -> Previous:
    """Read ``OUT/<stem>.json``: done for this input and options, another input's, or to be redone."""
    path = out_dir / f"{job.stem}.json"
    if not path.is_file():
        return Previous()
    try:
        t = Transcript.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return Previous(exists=True)  # unreadable: not a finished transcript, safe to replace
    if t.call.sha256 != sha and not same_file(t.call.path, job.path):
        return Previous(
            foreign=f"{job.path}: {path} holds the transcript of another recording ({t.call.path}); "
            "not overwriting it: move it away or use another --output folder",
            exists=True,
        )
    if t.call.sha256 != sha or t.options.get("result_key") != options.result_key():
        return Previous(exists=True)
    return Previous(transcript=t, exists=True)


def write_failure(job: Job, exc: BaseException, what: str = "cannot write outputs") -> CallError:
    """A failed write as one line for that call (``stage`` is ``disk-full`` when there is no room left)."""
    code = getattr(exc, "errno", None)
    reason = getattr(exc, "strerror", None) or " ".join(str(exc).split()) or type(exc).__name__
    filename = getattr(exc, "filename", None)
    where = f" {Path(filename).name}" if filename and not str(filename).startswith(".") else ""
    stage = "disk-full" if code in DISK_FULL else "write"
    return CallError(str(job.path), stage, f"{job.path}: {what}{where} ({reason})")


def is_disk_full(exc: BaseException) -> bool:
    return getattr(exc, "errno", None) in DISK_FULL


class ErrorLog:
    """``OUT/errors.jsonl``: one line per file that failed in its latest attempt, rewritten atomically.

    Saving never raises: when the folder cannot take it (disk full, read-only), the entries stay in memory and one
    warning says so; the run's summary still lists every failure.
    """

    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / ERRORS_FILE
        self.entries: dict[str, dict[str, str]] = {}
        self.save_error: str | None = None
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines() if self.path.is_file() else []
        except (OSError, UnicodeDecodeError):
            lines = []
        for line in lines:
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
        try:
            if not self.entries:
                self.path.unlink(missing_ok=True)
                return
            body = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in self.entries.values())
            atomic_write_text(self.path, body)
        except OSError as exc:
            if self.save_error is None:
                self.save_error = f"{self.path}: cannot write ({exc.strerror or exc})"
                log.warning("%s", self.save_error)
            return
        self.save_error = None
