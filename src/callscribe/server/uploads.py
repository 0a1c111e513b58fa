"""Uploads: streamed to the data folder in chunks, hashed on the way, renamed to their sha256.

The client's filename is only ever shown (its last path part, cleaned) and used for a known media extension; the
file on disk is ``<folder>/<sha256><.ext>``, so a name like ``../../etc/passwd`` reaches nothing. A body over the
size limit stops at the limit (413) and leaves no file. In a passing folder (``uploads/``) the same content uploaded
by requests in flight at once is one file, removed when the last of them lets go; a kept folder (``audio/``, the
recordings of stored calls) writes each file durably (fsync, rename, fsync of the folder) and keeps it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from callscribe.batch_inputs import MEDIA_SUFFIXES
from callscribe.server.errors import ApiError

log = logging.getLogger("callscribe.server")

TEMP_PREFIX = ".upload-"
TEMP_SUFFIX = ".part"
_UNSAFE = re.compile(r"[^\w.\- ()\[\]+,@]", re.UNICODE)


def display_name(filename: str | None) -> str:
    """A client filename fit for messages: its last path part, printable, at most 80 characters."""
    if not filename:
        return "upload"
    last = re.split(r"[\\/]", filename)[-1]
    clean = _UNSAFE.sub("_", last).strip(" .") or "upload"
    return clean[:80]


def media_suffix(filename: str | None) -> str:
    """The filename's extension when it is a known media one (lower case), else ``""``."""
    suffix = Path(display_name(filename)).suffix.lower()
    return suffix if suffix in MEDIA_SUFFIXES else ""


def too_large(limit: int) -> ApiError:
    return ApiError(413, f"upload is larger than the server's limit of {limit} bytes", code="file_too_large",
                    param="file")  # fmt: skip


@dataclass
class StoredUpload:
    """An upload on disk under its content hash; ``name`` is the client's (cleaned) filename; ``existed``: the
    same content was already there."""

    path: Path
    sha256: str
    size: int
    name: str
    existed: bool = False
    released: bool = field(default=False, repr=False)


class Incoming:
    """An upload being received: a hidden temp file in the uploads folder, hashed and counted as it grows."""

    def __init__(self, store: UploadStore, filename: str | None, limit: int) -> None:
        self.store = store
        self.filename = filename
        self.limit = limit
        self.size = 0
        self._hash = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX, dir=store.folder)
        self.temp = Path(tmp)
        self._fh = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise too_large(self.limit)
        self._hash.update(data)
        self._fh.write(data)

    def discard(self) -> None:
        if not self._fh.closed:
            self._fh.close()
        self.temp.unlink(missing_ok=True)

    def commit(self) -> StoredUpload:
        if self.store.keep:
            self._fh.flush()
            os.fsync(self._fh.fileno())
        self._fh.close()
        return self.store._adopt(self.temp, self._hash.hexdigest(), self.size, self.filename)


class UploadStore:
    """A folder of uploads named by content; a passing one counts the requests using each file."""

    def __init__(self, folder: Path, *, keep: bool = False) -> None:
        self.folder = Path(folder)
        self.keep = keep
        self.folder.mkdir(parents=True, exist_ok=True)
        self._users: dict[Path, int] = {}
        self._lock = threading.Lock()

    def sweep(self) -> int:
        """Remove what a stopped server left behind: temp files, and in a passing folder every upload."""
        count = 0
        with self._lock:
            for path in self.folder.iterdir():
                temp = path.name.startswith(TEMP_PREFIX) and path.name.endswith(TEMP_SUFFIX)
                if path.is_file() and (temp or not self.keep) and path not in self._users:
                    path.unlink(missing_ok=True)
                    count += 1
        return count

    def begin(self, filename: str | None, limit: int) -> Incoming:
        return Incoming(self, filename, limit)

    def _adopt(self, temp: Path, sha: str, size: int, filename: str | None) -> StoredUpload:
        final = self.folder / f"{sha}{media_suffix(filename)}"
        with self._lock:
            existed = final in self._users or (self.keep and final.is_file())
            if existed:  # the same content is already here
                temp.unlink(missing_ok=True)
            else:
                os.replace(temp, final)
                if self.keep:
                    _fsync_dir(self.folder)
            if not self.keep:
                self._users[final] = self._users.get(final, 0) + 1
        return StoredUpload(final, sha, size, display_name(filename), existed)

    def release(self, upload: StoredUpload) -> None:
        """This request is done with the file; in a passing folder the last user removes it."""
        if upload.released or self.keep:
            return
        upload.released = True
        with self._lock:
            left = self._users.get(upload.path, 0) - 1
            if left > 0:
                self._users[upload.path] = left
                return
            self._users.pop(upload.path, None)
            upload.path.unlink(missing_ok=True)

    def discard(self, upload: StoredUpload) -> None:
        """Drop an upload that will not be used (a kept file only when this upload brought it)."""
        if not self.keep:
            self.release(upload)
        elif not upload.existed:
            upload.path.unlink(missing_ok=True)

    def find(self, sha: str) -> Path | None:
        """The file holding this content (any extension), or None."""
        if not re.fullmatch(r"[0-9a-f]{64}", sha):
            return None
        for path in sorted(self.folder.glob(f"{sha}*")):
            if path.is_file():
                return path
        return None


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
