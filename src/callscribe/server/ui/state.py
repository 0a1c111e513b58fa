"""What the desk keeps per app: the store and recordings of the service, its own folder in the data dir
(``DATA/ui``: peaks, playable/masked audio, the review ledger) and the sentiment cache of the calls page."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Request

from callscribe.server.errors import ApiError
from callscribe.server.ui.review import Ledger

if TYPE_CHECKING:
    from callscribe.store import Store

# Heavy per-request work (decoding for peaks, writing masked audio) runs at most this many at a time.
MEDIA_WORKERS = 2
MEDIA_TTL_S = 600.0
MEDIA_ENTRIES = 2000


@dataclass(frozen=True)
class CallMedia:
    """What the audio and peaks routes need of a call, kept briefly so that the player's many range requests do not
    each read the whole call from the store. ``spans``: what a viewer without ``pii`` must not hear, as computed
    with the corrections ``stamp`` (count, last id) names; a new correction makes it stale."""

    sha256: str
    duration: float
    spans: tuple[tuple[float, float], ...]
    stamp: tuple[int, int]
    at: float = field(default_factory=time.monotonic)


def correction_stamp(corrections: list[Any]) -> tuple[int, int]:
    return len(corrections), corrections[-1].id if corrections else 0


class MediaCache:
    def __init__(self) -> None:
        self._d: OrderedDict[int, CallMedia] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, call_id: int) -> CallMedia | None:
        with self._lock:
            found = self._d.get(call_id)
            if found is None or time.monotonic() - found.at > MEDIA_TTL_S:
                self._d.pop(call_id, None)
                return None
            self._d.move_to_end(call_id)
            return found

    def put(self, call_id: int, media: CallMedia) -> None:
        with self._lock:
            self._d[call_id] = media
            self._d.move_to_end(call_id)
            while len(self._d) > MEDIA_ENTRIES:
                self._d.popitem(last=False)

    def drop(self, call_id: int) -> None:
        with self._lock:
            self._d.pop(call_id, None)


@dataclass
class DeskState:
    service: Any
    folder: Path
    ledger: Ledger
    media_gate: asyncio.Semaphore
    media: MediaCache = field(default_factory=MediaCache)

    @property
    def store(self) -> Store:
        store = self.service.store
        if store is None:
            raise ApiError(501, "the review desk needs the call store: start callscribe serve with --db URL",
                           "invalid_request_error", "store_not_configured")  # fmt: skip
        return store  # type: ignore[no-any-return]

    @property
    def has_store(self) -> bool:
        return self.service.store is not None

    def audio_path(self, sha256: str) -> Path | None:
        return self.service.audio.find(sha256)  # type: ignore[no-any-return]


def desk(request: Request) -> DeskState:
    state = request.app.state
    found = getattr(state, "desk", None)
    if found is None:
        service = state.service
        folder = Path(service.settings.data_dir) / "ui"
        found = state.desk = DeskState(service, folder, Ledger(folder / "reviewed.json"),
                                       asyncio.Semaphore(MEDIA_WORKERS))  # fmt: skip
    return found  # type: ignore[no-any-return]
