"""Speech recognition engines behind one Protocol (see :mod:`callscribe.engines.base`)."""

from callscribe.engines.base import (
    Clip,
    Engine,
    EngineError,
    EngineOptions,
    EngineResult,
    EngineSegment,
    create,
    names,
    register,
    resolve_auto,
)

__all__ = [
    "Clip",
    "Engine",
    "EngineError",
    "EngineOptions",
    "EngineResult",
    "EngineSegment",
    "create",
    "names",
    "register",
    "resolve_auto",
]
