"""What the batch runner needs from an executor."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from callscribe.model import Transcript
    from callscribe.pipeline import CallError

# Executors by the name ``transcribe --executor`` takes.
EXECUTORS = ("local", "ray")


@runtime_checkable
class Executor(Protocol):
    """Runs the pipeline over ``(path, sha256)`` pairs and yields one ``Transcript`` or ``CallError`` per call, in
    any order, as each call finishes. :class:`callscribe.pipeline.Pipeline` is one (the local executor)."""

    def run(self, sources: Iterable[tuple[str | Path, str]]) -> Iterator[Transcript | CallError]: ...
