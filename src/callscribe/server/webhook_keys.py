"""Per-key webhook URLs, kept in the server's data folder: ``<data>/webhooks/keys.json`` (``{key name: URL}``).

The call store's ``api_keys`` table has no column for a URL and its schema is not changed for one, so
``callscribe keys create NAME --webhook URL`` (which takes ``--data-dir`` / ``$CALLSCRIBE_DATA_DIR`` as ``serve``
does) writes the URL here, atomically and under a lock; the server reads the file when a job ends (again only when
it has changed). The URL is the operator's, set on the server's machine, never a request's.
"""

from __future__ import annotations

import fcntl
import json
import logging
import threading
from pathlib import Path

from callscribe.outputs.writers import atomic_write_text
from callscribe.server.webhooks import check_url

log = logging.getLogger("callscribe.server")

FILE = "keys.json"


class KeyWebhooks:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._seen: tuple[int, int] | None = None
        self._urls: dict[str, str] = {}

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> KeyWebhooks:
        return cls(Path(data_dir) / "webhooks" / FILE)

    def url(self, name: str) -> str | None:
        """The webhook of key ``name`` (None without one)."""
        return self.urls().get(name)

    def urls(self) -> dict[str, str]:
        with self._lock:
            try:
                st = self.path.stat()
            except FileNotFoundError:
                self._seen, self._urls = None, {}
                return {}
            stamp = (st.st_mtime_ns, st.st_size)
            if stamp != self._seen:
                self._urls = self._read()
                self._seen = stamp
            return dict(self._urls)

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.error("%s: unreadable (%s); key webhooks are off until it is fixed", self.path, exc)
            return {}
        if not isinstance(data, dict):
            log.error("%s: not a JSON object; key webhooks are off until it is fixed", self.path)
            return {}
        return {str(k): str(v) for k, v in data.items() if isinstance(v, str)}

    def set(self, name: str, url: str | None) -> None:
        """Give key ``name`` the webhook ``url`` (None removes it); ValueError (one line) for a bad URL."""
        if url is not None:
            url = check_url(url)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with (self.path.parent / f".{FILE}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two `keys create` at once both land
            current = self._read() if self.path.exists() else {}
            if url is None:
                current.pop(name, None)
            else:
                current[name] = url
            atomic_write_text(self.path, json.dumps(current, ensure_ascii=False, indent=1, sort_keys=True) + "\n")
