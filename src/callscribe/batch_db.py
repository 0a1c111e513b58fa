"""The batch runner's database sink: each call goes into the call store as it finishes, QA in the same transaction.

The output folder stays the source of truth: a call's files are committed first, then the call is stored. A run
killed between the two, or an earlier run without ``--db``, leaves a call that is in the folder and not in the
store; the next run with ``--db`` finds its transcript done and stores it from the JSON (and its ``.qa.json``)
without transcribing it again. ``Store.add`` is one transaction and idempotent by sha256 + options key, so a call is
never half-stored and never stored twice.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from callscribe.model import QAResult, Transcript
from callscribe.outputs.writers import QA_SUFFIX

if TYPE_CHECKING:
    from callscribe.callmeta import MetadataSource
    from callscribe.store import Store
    from callscribe.store.bulk import Added, NewCall

log = logging.getLogger("callscribe")
_LOOKUP: Any = object()  # put(): look the metadata up


def options_key(t: Transcript) -> str:
    """The result key a transcript was made with (the batch runner's "same options" key), or ``""``."""
    key = t.options.get("result_key")
    if isinstance(key, str) and key:
        return key
    from callscribe.options import Options

    try:
        opts = {k: v for k, v in t.options.items() if k != "result_key"}
        return Options.build(opts).result_key()
    except (TypeError, ValueError):
        return ""


def read_qa(path: Path) -> QAResult:
    """A ``<stem>.qa.json`` file; ``ValueError`` with one line naming it when it is not a QA result."""
    try:
        return QAResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ValueError(f"{path}: not a QA result ({reason})") from None


def qa_file(out_dir: Path, stem: str) -> Path:
    return out_dir / f"{stem}{QA_SUFFIX}"


class StoreSink:
    """Puts finished calls into a :class:`~callscribe.store.Store` (used by the batch runner and ``index``)."""

    def __init__(self, store: Store, metadata: MetadataSource | None = None) -> None:
        self.store = store
        self.metadata = metadata
        self.added = 0  # calls written (new or updated) by this sink
        self.new = 0  # of those, calls the store did not have before

    def put(self, t: Transcript, qa: QAResult | None, meta: Any = _LOOKUP) -> int:
        """Store one call with its QA in one transaction (replacing the same call made with the same options).

        ``meta`` is the call's ``CallMeta``; by default it is looked up in the metadata source (``None`` keeps what
        the store has)."""
        key = options_key(t)
        known = self.store.has(t.call.sha256, key)
        if meta is _LOOKUP:
            meta = self.metadata.meta(t.call.path) if self.metadata is not None else None
        call_id = self.store.add(t, qa, meta=meta, options_key=key)
        self.added += 1
        self.new += not known
        return int(call_id)

    def new_call(self, t: Transcript, qa: QAResult | None) -> NewCall:
        """A call for ``Store.add_many`` (``index``), its metadata looked up and its options key set."""
        from callscribe.store.bulk import NewCall

        meta = self.metadata.meta(t.call.path) if self.metadata is not None else None
        return NewCall(t, qa, meta=meta, options_key=options_key(t))

    def count(self, added: Added) -> None:
        """Count a call ``Store.add_many`` stored."""
        if added.error is None:
            self.added += 1
            self.new += added.new

    def ensure(self, t: Transcript, out_dir: Path, stem: str, fresh_qa: QAResult | None = None) -> bool:
        """A call already done in the folder: store it when the store lacks it, or has new QA or metadata for it.

        Returns whether it was written. A ``.qa.json`` that cannot be read is logged and the call is stored
        without QA.
        """
        meta = self.metadata.meta(t.call.path) if self.metadata is not None else None
        if fresh_qa is None and meta is None and self.store.has(t.call.sha256, options_key(t)):
            return False
        qa = fresh_qa
        if qa is None:
            path = qa_file(out_dir, stem)
            if path.is_file():
                try:
                    qa = read_qa(path)
                except ValueError as exc:
                    log.warning("%s; storing the call without QA", exc)
        self.put(t, qa, meta)
        return True
