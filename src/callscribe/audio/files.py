"""Opening recordings safely: only regular files, checked on the descriptor that is then read.

A named pipe, a device or a socket would block or never end, so none is ever opened for decoding, probing or
hashing; the check runs before opening (opening some devices has effects) and again on the open descriptor.
Decode progress listeners live here too, so a long call can show how far it has got.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("callscribe")

# ``(path, seconds decoded so far, seconds declared or None)``, called after every block; see add_progress_listener.
ProgressListener = Callable[[str, float, "float | None"], None]
_listeners: list[ProgressListener] = []
_listeners_lock = threading.Lock()
_PROC_FD = Path("/proc/self/fd")


def add_progress_listener(listener: ProgressListener) -> Callable[[], None]:
    """Be told how far every decode in this process has got (long calls take minutes to decode).

    Returns a function that removes the listener. Listeners run in the decoding thread and must be quick.
    """
    with _listeners_lock:
        _listeners.append(listener)

    def remove() -> None:
        with _listeners_lock:
            if listener in _listeners:
                _listeners.remove(listener)

    return remove


def has_listeners() -> bool:
    return bool(_listeners)


def tell_listeners(path: str, seconds: float, declared: float | None) -> None:
    for listener in list(_listeners):
        try:
            listener(path, seconds, declared)
        except Exception:  # a progress display must never break a decode
            log.debug("progress listener failed", exc_info=True)


class AudioError(Exception):
    """A recording cannot be used. ``str(e)`` is one line: ``"{path}: {cause}"``."""

    def __init__(self, path: str | os.PathLike[str], cause: str, stage: str = "decode") -> None:
        self.path = str(path)
        self.cause = " ".join(str(cause).split())
        self.stage = stage
        super().__init__(f"{self.path}: {self.cause}")


def file_kind(mode: int) -> str | None:
    """What a non-regular file is, in words (``None`` for a regular file)."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISFIFO(mode):
        return "named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


def _unreadable(p: Path, exc: OSError) -> AudioError:
    if isinstance(exc, FileNotFoundError):
        return AudioError(p, "file not found")
    if isinstance(exc, PermissionError):
        return AudioError(p, "permission denied")
    return AudioError(p, f"cannot read file ({exc.strerror or exc})")


def open_regular(path: str | os.PathLike[str]) -> int:
    """Open ``path`` for reading only if it is a regular file (symlinks followed); return the descriptor.

    The type is checked before opening (opening a device can have effects) and again on the open descriptor
    (the path may have been swapped in between). Raises :class:`AudioError` naming the file.
    """
    p = Path(path)
    try:
        info = p.stat()
    except OSError as exc:
        raise _unreadable(p, exc) from None
    _check_kind(p, info.st_mode)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise _unreadable(p, exc) from None
    try:
        _check_kind(p, os.fstat(fd).st_mode)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _check_kind(path: Path, mode: int) -> None:
    kind = file_kind(mode)
    if kind == "directory":
        raise AudioError(path, "is a directory, not an audio file")
    if kind is not None:
        raise AudioError(path, f"is a {kind}, not a regular file")


def fd_path(fd: int, path: Path) -> str:
    """A path that opens the very file behind ``fd`` (``/proc/self/fd/N`` where the system has it)."""
    return str(_PROC_FD / str(fd)) if _PROC_FD.is_dir() else str(path)
