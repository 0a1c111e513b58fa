"""What the batch runner takes in: recordings found under the paths given, and the output name of each.

Only regular files (symlinks followed) are probed or hashed; a named pipe, a device or a socket would block or
never end, so it becomes a one-line error instead. An output stem comes from the input's path relative to the folder
it was found in (``sub/y.wav`` -> ``sub__y``). When two inputs would share any output file, the clash is settled
the same way on every run: the extension is kept (``x.wav.json``, ``x.mp3.json``), then the folder is put in front,
then a short hash of the absolute path; an input whose transcript already sits in the output folder under its plain
stem keeps that name, so a clashing file added later does not rename earlier work. Names that still clash are
refused, never overwritten. Files callscribe writes (redacted audio anywhere, everything callscribe writes in the
output folder) are never taken as inputs.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from callscribe.audio.decode import probe_seconds
from callscribe.audio.files import file_kind
from callscribe.outputs.writers import REDACTED_SUFFIX, call_suffixes, is_output_name

HIDDEN_PREFIXES = (".", "~")
# Folders callscribe writes inside an output folder.
OUTPUT_SUBFOLDERS = frozenset(["insights"])
# In a folder, a file is taken when PyAV finds audio in it, or when its name says it is a recording: those fail
# loudly (zero bytes, no audio stream, corrupt, a named pipe) instead of being skipped without a word.
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
_LEVELS = 4  # base stem, + extension, + folder, + path hash


@dataclass(frozen=True)
class Job:
    path: Path
    stem: str
    duration: float = 0.0  # from a cheap container probe; 0 when unknown
    error: str | None = None  # known before any read: the file cannot be an input (one line, names the file)


@dataclass
class _Found:
    path: Path
    rel: tuple[str, ...]  # path parts relative to the folder it was found in (just the name for a file given)
    folder: str  # name of that folder (or of the file's parent)
    duration: float = 0.0
    error: str | None = None
    names: list[str] = field(default_factory=list)

    def stem(self, level: int) -> str:
        base = "__".join([*self.rel[:-1], Path(self.rel[-1]).stem or self.rel[-1]])
        ext = self.path.suffix if Path(self.rel[-1]).stem else ""
        if level == 0:
            return base
        if level == 1:
            return base + ext
        if level == 2:
            return f"{self.folder}__{base}{ext}" if self.folder else base + ext
        digest = hashlib.sha256(str(self.path.absolute()).encode("utf-8", "surrogateescape")).hexdigest()[:8]
        return f"{base}{ext}.{digest}"


def _inspect(path: Path, given: bool) -> tuple[float | None, str | None]:
    """``(duration, error)``: duration ``None`` means "not audio, skip it" (only for files found in folders)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        broken = path.is_symlink()
        if not given and not broken:
            return None, None
        return 0.0, f"{path}: {'broken symbolic link' if broken else 'file not found'}"
    except OSError as exc:
        return 0.0, f"{path}: cannot read file ({exc.strerror or exc})"
    kind = file_kind(info.st_mode)
    media = path.suffix.lower() in MEDIA_SUFFIXES
    if kind is not None:
        if not given and not media:
            return None, None
        return 0.0, f"{path}: is a {kind}, not a regular file" if kind != "directory" else f"{path}: is a directory"
    if not stat.S_ISREG(info.st_mode):  # pragma: no cover - file_kind covers every type
        return None, None
    seconds = probe_seconds(path)
    if seconds is None and not given and not media:
        return None, None
    return seconds or 0.0, None


def discover(paths: Sequence[str | Path], out_dir: Path | None = None) -> tuple[list[Job], list[str]]:
    """Files as given, folders walked recursively keeping what PyAV can open as audio.

    Returns the jobs and the files skipped in folders because they hold no audio. A path that does not exist, or a
    file given by name that is not audio, stays a job: it fails with a clear error and the batch goes on.
    """
    found: list[_Found] = []
    skipped: list[str] = []
    seen: set[Path] = set()
    out_resolved = out_dir.resolve() if out_dir else None
    for raw in paths:
        root = Path(raw)
        if not root.is_dir():
            duration, error = _inspect(root, given=True)
            _add(found, seen, _Found(root, (root.name,), root.absolute().parent.name, duration or 0.0, error))
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            here = Path(dirpath)
            in_out = out_resolved is not None and here.resolve() == out_resolved
            dirnames[:] = sorted(
                d
                for d in dirnames
                if not d.startswith(HIDDEN_PREFIXES)
                and (here / d).resolve() != out_resolved
                and not (in_out and d in OUTPUT_SUBFOLDERS)
            )
            for name in sorted(filenames):
                if name.startswith(HIDDEN_PREFIXES) or name.endswith(REDACTED_SUFFIX):
                    continue
                if in_out and is_output_name(name):
                    continue
                f = here / name
                duration, error = _inspect(f, given=False)
                if duration is None:
                    skipped.append(str(f))
                    continue
                rel = f.relative_to(root).parts
                _add(found, seen, _Found(f, rel, root.absolute().name, duration, error))
    return _name(found, out_dir), skipped


def _add(found: list[_Found], seen: set[Path], item: _Found) -> None:
    key = item.path.resolve() if item.path.exists() else item.path.absolute()
    if key in seen:
        return
    seen.add(key)
    found.append(item)


def _pinned(found: list[_Found], out_dir: Path | None) -> set[int]:
    """Inputs sharing a plain stem whose transcript is already in ``out_dir`` under that stem: they keep it."""
    if out_dir is None:
        return set()
    groups: dict[str, list[int]] = {}
    for i, item in enumerate(found):
        groups.setdefault(item.stem(0), []).append(i)
    pinned = set()
    for stem, members in groups.items():
        if len(members) < 2 or not (out_dir / f"{stem}.json").is_file():
            continue
        try:
            recorded = json.loads((out_dir / f"{stem}.json").read_text(encoding="utf-8"))["call"]["path"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        owner = [i for i in members if same_file(str(recorded), found[i].path)]
        if len(owner) == 1:
            pinned.add(owner[0])
    return pinned


def same_file(recorded: str, path: Path) -> bool:
    if recorded == str(path):
        return True
    try:
        return Path(recorded).resolve() == path.resolve()
    except OSError:
        return False


def _name(found: list[_Found], out_dir: Path | None = None) -> list[Job]:
    """Give every input a stem no other input's files can clash with (same inputs and outputs: same names)."""
    levels = [0] * len(found)
    pinned = _pinned(found, out_dir)
    suffixes = call_suffixes()
    while True:
        claims: dict[str, set[int]] = {}
        for i, item in enumerate(found):
            stem = item.stem(levels[i])
            for suffix in suffixes:
                claims.setdefault(stem + suffix, set()).add(i)
        clashing = {i for owners in claims.values() if len(owners) > 1 for i in owners}
        movable = {i for i in clashing if levels[i] < _LEVELS - 1 and i not in pinned}
        if not movable:
            break
        for i in movable:
            levels[i] += 1
    jobs = []
    for i, item in enumerate(found):
        stem = item.stem(levels[i])
        error = item.error
        if i in clashing and error is None:
            others = sorted(str(found[j].path) for owners in claims.values() if i in owners for j in owners if j != i)
            error = f"{item.path}: output name {stem!r} clashes with {others[0]}; rename one of them"
        jobs.append(Job(item.path, stem, item.duration, error))
    return jobs
