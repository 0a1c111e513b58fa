"""The glossary a served request is heard with: the ``--hotwords`` file and the glossary kept in the call store.

Reviewers add ``wrong => right`` entries in the desk while the server runs, so the store's glossary is read again
before a request goes to the engine (at most every :data:`REFRESH_S` seconds) and merged with the file exactly as
``callscribe transcribe --hotwords FILE --glossary-db URL`` merges them. The merged glossary travels in the
request's :class:`~callscribe.server.worker.RequestOptions`; it is not part of the key that names a stored call
(:meth:`LiveGlossary.file_only`), so the same recording sent again after a glossary change is still the duplicate of
the call stored for it, not a second copy of it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from callscribe.pipeline import one_line
from callscribe.text.glossary import Glossary

if TYPE_CHECKING:
    from callscribe.server.settings import Settings
    from callscribe.server.worker import RequestOptions
    from callscribe.store import Store

log = logging.getLogger("callscribe.server")

REFRESH_S = 2.0  # the store's glossary is read at most this often


class LiveGlossary:
    """The file's glossary merged with the store's, as read at most :data:`REFRESH_S` seconds ago.

    ``store`` is the server's own store when ``--glossary-db`` names the ``--db`` database; another URL is opened
    here (and closed by :meth:`close`). When the store cannot be read, the last glossary read is kept.
    """

    def __init__(self, file: Glossary, url: str, store: Store | None = None, refresh_s: float = REFRESH_S) -> None:
        self.file = file
        self.url = url
        self.refresh_s = refresh_s
        self._own = store is None
        self._store = store
        self._lock = threading.Lock()
        self._merged = file
        self._read_at = float("-inf")

    @classmethod
    def from_settings(cls, settings: Settings, store: Store | None) -> LiveGlossary | None:
        """None unless the settings name a glossary store (``--glossary-db``, by default ``--db``)."""
        url = settings.glossary_db
        if not url:
            return None
        file = Glossary.load(str(settings.hotwords)) if settings.hotwords is not None else Glossary()
        return cls(file, url, store if store is not None and url == settings.db else None)

    def current(self) -> Glossary:
        with self._lock:
            if time.monotonic() - self._read_at >= self.refresh_s:
                self._merged = self._read()
                self._read_at = time.monotonic()
            return self._merged

    def apply(self, options: RequestOptions) -> RequestOptions:
        """``options`` with the server's glossary as it is now (in place of the one read at start)."""
        g = self.current()
        return replace(options, glossary=(g.terms, g.corrections))

    def file_only(self, options: RequestOptions) -> RequestOptions:
        """``options`` with the ``--hotwords`` file's glossary alone: what names a call whatever the store holds."""
        return replace(options, glossary=(self.file.terms, self.file.corrections))

    def close(self) -> None:
        if self._own and self._store is not None:
            self._store.close()
            self._store = None

    def _read(self) -> Glossary:
        from callscribe.cli import merge_glossaries

        try:
            if self._store is None:
                from callscribe.store import Store

                self._store = Store(self.url)
            lines = self._store.terms()
            return merge_glossaries(
                self.file, Glossary.parse("\n".join(lines), source=f"the glossary in {self._store}")
            )
        except Exception as exc:  # a database that went away, an entry a glossary cannot hold: keep the last one
            log.warning("the glossary store could not be read (the last glossary read is used): %s", one_line(exc))
            return self._merged
