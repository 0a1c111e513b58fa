"""The received audio of a stream, appended to a WAV file in the data folder as it arrives.

The file is a valid WAV at every moment a reader looks: the header's sizes are rewritten after every
``HEADER_EVERY_S`` of audio (and at close), and a reader that trusts the header sees everything up to that point;
readers that read to the end of the file (FFmpeg) see every byte received. Nothing the client sent is lost when the
connection drops, and a server killed mid-call leaves a file that decodes.
"""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

HEADER_BYTES = 44
HEADER_EVERY_S = 1.0


def _header(sample_rate: int, channels: int, data_bytes: int) -> bytes:
    block = channels * 2
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, sample_rate, sample_rate * block, block, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


class WavRecorder:
    """Appends 16-bit PCM to ``path``; :meth:`close` gives the finished file's sha256 (the call's identity)."""

    def __init__(self, path: Path, sample_rate: int, channels: int) -> None:
        self.path = Path(path)
        self.sample_rate = sample_rate
        self.channels = channels
        self.data_bytes = 0
        self._since_header = 0
        self._fh = open(self.path, "xb")  # noqa: SIM115 - kept open for the whole call
        self._fh.write(_header(sample_rate, channels, 0))
        self._fh.flush()

    @property
    def seconds(self) -> float:
        return self.data_bytes / (self.sample_rate * self.channels * 2)

    @property
    def closed(self) -> bool:
        return self._fh.closed

    def append(self, pcm: bytes) -> None:
        self._fh.write(pcm)
        self.data_bytes += len(pcm)
        self._since_header += len(pcm)
        if self._since_header >= HEADER_EVERY_S * self.sample_rate * self.channels * 2:
            self._rewrite_header()
        self._fh.flush()

    def _rewrite_header(self) -> None:
        self._fh.seek(0)
        self._fh.write(_header(self.sample_rate, self.channels, self.data_bytes))
        self._fh.seek(0, os.SEEK_END)
        self._since_header = 0

    def close(self) -> str:
        """Finish the header, fsync, close; returns the file's sha256."""
        if not self._fh.closed:
            self._rewrite_header()
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
        return sha256_of(self.path)


def repair(path: Path) -> tuple[int, int]:
    """Make a recording a server left behind whole: ``(sample rate, channels)`` from its header; the header's
    sizes are set to the whole sample frames in the file (a partly written frame at the end is cut off)."""
    path = Path(path)
    with open(path, "r+b") as fh:
        head = fh.read(HEADER_BYTES)
        if len(head) < HEADER_BYTES or head[:4] != b"RIFF" or head[8:16] != b"WAVEfmt " or head[36:40] != b"data":
            raise ValueError(f"{path.name} is not a recording this server wrote")
        channels, sample_rate = struct.unpack("<HI", head[22:28])
        size = fh.seek(0, os.SEEK_END) - HEADER_BYTES
        data_bytes = size - size % (channels * 2)
        fh.truncate(HEADER_BYTES + data_bytes)
        fh.seek(0)
        fh.write(_header(sample_rate, channels, data_bytes))
        fh.flush()
        os.fsync(fh.fileno())
    return sample_rate, channels


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
