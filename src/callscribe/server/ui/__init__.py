"""The review desk: the web UI of ``callscribe serve`` where QA reviewers listen, read, judge and correct.

``router`` holds every desk route (pages, their JSON data, audio and peaks, sign-in, static files); ``create_app``
includes it. Pages need a store (``--db``). See docs/ui.md.
"""

from __future__ import annotations

from fastapi import APIRouter

from callscribe.server.ui import routes_auth, routes_data, routes_pages
from callscribe.server.ui.live import LiveBoard, LiveCall, LiveLine, LiveSource, live_board

router = APIRouter()
router.include_router(routes_auth.router)
router.include_router(routes_data.router)
router.include_router(routes_pages.router)

__all__ = ["LiveBoard", "LiveCall", "LiveLine", "LiveSource", "live_board", "router"]
