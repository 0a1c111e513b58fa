"""Where decoded samples live: in memory while the call is short, then one anonymous temp file per channel.

Reads are positional (``os.preadv``) so several threads can cut clips at once, and nothing is memory-mapped:
mapped pages would count in the process's resident memory.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import numpy as np

_FLOAT_BYTES = 4


class SampleSpool:
    """Per-channel float32 samples, appended in blocks of shape ``(channels, n)`` and read back by range."""

    def __init__(self, channels: int, spill_after: int) -> None:
        """``spill_after``: samples per channel kept in memory before everything moves to temp files."""
        self.channels = channels
        self.spill_after = spill_after
        self.frames = 0
        self._pending: list[np.ndarray] = []
        self._arrays: list[np.ndarray] | None = None
        self._files: list[Any] | None = None

    def append(self, block: np.ndarray) -> None:
        if self._files is None and self.frames + block.shape[1] > self.spill_after:
            self._spill()
        if self._files is not None:
            for ch, handle in enumerate(self._files):
                handle.write(np.ascontiguousarray(block[ch], dtype=np.float32).tobytes())
        else:
            self._pending.append(np.array(block, dtype=np.float32))
        self.frames += block.shape[1]

    def _spill(self) -> None:
        # One anonymous file per channel, closed in close().
        self._files = [
            tempfile.TemporaryFile(prefix="callscribe-", buffering=0)  # noqa: SIM115
            for _ in range(self.channels)
        ]
        pending, self._pending = self._pending, []
        for block in pending:
            for ch, handle in enumerate(self._files):
                handle.write(block[ch].tobytes())

    def finish(self) -> None:
        if self._files is None and self._arrays is None:
            if self._pending:
                joined = np.concatenate(self._pending, axis=1)
            else:
                joined = np.zeros((self.channels, 0), dtype=np.float32)
            self._arrays = [np.ascontiguousarray(joined[ch]) for ch in range(self.channels)]
            self._pending = []

    @property
    def spooled(self) -> bool:
        return self._files is not None

    def read(self, channel: int, first: int, last: int) -> np.ndarray:
        first, last = max(0, first), min(self.frames, last)
        if last <= first:
            return np.zeros(0, dtype=np.float32)
        if self._arrays is not None:
            return self._arrays[channel][first:last].copy()
        if self._files is None:
            raise RuntimeError("samples are still being written")
        out = np.empty(last - first, dtype=np.float32)
        view = memoryview(out).cast("B")
        fd = self._files[channel].fileno()
        done = 0
        while done < len(view):
            got = os.preadv(fd, [view[done:]], first * _FLOAT_BYTES + done)
            if got <= 0:
                raise OSError(f"temp spool ended early at byte {first * _FLOAT_BYTES + done}")
            done += got
        return out

    def close(self) -> None:
        for handle in self._files or ():
            handle.close()
        self._files = None
        self._arrays = None
        self._pending = []
