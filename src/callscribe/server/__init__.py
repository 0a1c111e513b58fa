"""The callscribe service: an OpenAI-compatible transcription API over the one pipeline (``callscribe serve``).

from callscribe.server import Settings, create_app
app = create_app(Settings(api_key="secret", engine="whisper"))   # run with uvicorn

Needs the ``[server]`` extra. See docs/server.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from callscribe.server.app import Service, create_app
    from callscribe.server.auth import Access, KeyResolver, Principal, require
    from callscribe.server.settings import Settings, parse_size
    from callscribe.server.worker import EngineWorker, RequestOptions

# Loaded on first use, so that `callscribe --help` (which imports the serve and keys commands) works without the
# [server] extra.
_WHERE = {
    "Access": "auth",
    "KeyResolver": "auth",
    "Principal": "auth",
    "require": "auth",
    "Service": "app",
    "create_app": "app",
    "Settings": "settings",
    "parse_size": "settings",
    "EngineWorker": "worker",
    "RequestOptions": "worker",
}

__all__ = [
    "Access",
    "EngineWorker",
    "KeyResolver",
    "Principal",
    "RequestOptions",
    "Service",
    "Settings",
    "create_app",
    "parse_size",
    "require",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'callscribe.server' has no attribute {name!r}")
    return getattr(importlib.import_module(f"callscribe.server.{_WHERE[name]}"), name)
