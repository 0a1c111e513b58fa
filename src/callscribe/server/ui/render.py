"""Pages from Jinja templates (autoescaped), with the desk's headers: a strict content security policy (scripts
and styles only from this server), no framing, no caching of pages that hold call data."""

from __future__ import annotations

import functools
import gzip
import json
import os
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Request
from fastapi.responses import Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from callscribe.server.ui.access import Viewer
from callscribe.server.ui.charts import clock
from callscribe.server.ui.i18n import LANGS, js_messages, request_lang, translator
from callscribe.text.pii import redact_text

HERE = Path(__file__).resolve().parent
TZ_VAR = "CALLSCRIBE_UI_TZ"
GZIP_MIN = 16_384
GZIP_LEVEL = 5
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@functools.cache
def static_version() -> str:
    """Changes whenever a static file does (cache-busting ``?v=`` on every asset link)."""
    newest = max((p.stat().st_mtime_ns for p in (HERE / "static").rglob("*") if p.is_file()), default=0)
    return format(newest // 1_000_000, "x")


@functools.cache
def desk_tz() -> tzinfo:
    """The zone the desk shows times and reads dates in: ``$CALLSCRIBE_UI_TZ`` (e.g. Asia/Shanghai), else UTC."""
    name = os.environ.get(TZ_VAR, "").strip()
    if not name:
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{TZ_VAR}={name!r}: not a known time zone (e.g. UTC, Asia/Shanghai)") from None


def local_time(value: datetime | str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None or value == "":
        return "-"
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(desk_tz()).strftime(fmt)


def _json_script(value: Any) -> Markup:
    """JSON safe to put inside ``<script type="application/json">``."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


@functools.cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(("html",), default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["clock"] = clock
    env.filters["local"] = local_time
    env.filters["json_script"] = _json_script
    env.filters["redact"] = lambda text: redact_text(text) if text else text
    env.globals["static_version"] = static_version
    return env


def page(request: Request, template: str, viewer: Viewer | None, status: int = 200, **context: Any) -> Response:
    lang = request_lang(request)
    t = translator(lang)
    tz = desk_tz()
    body = (
        environment()
        .get_template(template)
        .render(
            request=request,
            viewer=viewer,
            lang=lang,
            langs=LANGS,
            t=t,
            js_text=js_messages(lang),
            tz_name=getattr(tz, "key", None) or tz.tzname(None) or "UTC",
            path=request.url.path,
            query=request.url.query,
            **context,
        )
    )
    return compressed(request, body.encode("utf-8"), "text/html; charset=utf-8", PAGE_HEADERS, status)


def compressed(request: Request, data: bytes, media_type: str, headers: dict[str, str], status: int = 200) -> Response:
    """``data`` gzipped when the client takes it and it is big enough to gain (a long call's page: ~5x smaller)."""
    out = dict(headers)
    if len(data) >= GZIP_MIN and "gzip" in request.headers.get("accept-encoding", "").lower():
        data = gzip.compress(data, compresslevel=GZIP_LEVEL)
        out |= {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
    return Response(data, status_code=status, media_type=media_type, headers=out)
