"""Sign-in with a key, sign-out, the language switch and the desk's static files."""

from __future__ import annotations

import hmac
import mimetypes
import secrets
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from callscribe.server.auth import Access
from callscribe.server.errors import ApiError
from callscribe.server.ui.access import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    resolve,
    secure_request,
    sessions,
)
from callscribe.server.ui.i18n import LANG_COOKIE, normalize, translator
from callscribe.server.ui.render import HERE, page

router = APIRouter(include_in_schema=False)
STATIC = (HERE / "static").resolve()
LOGIN_TTL_S = 3600
LANG_TTL_S = 365 * 86400


def safe_next(value: str | None) -> str:
    """A local path to go to after signing in (never another site)."""
    value = (value or "/").strip()
    if not value.startswith("/") or value.startswith("//") or "\\" in value or "\n" in value or "\r" in value:
        return "/"
    return value


def _login_form(request: Request, next_url: str, error: str = "", status: int = 200) -> Response:
    token = secrets.token_urlsafe(24)
    response = page(request, "login.html", None, status=status, next_url=next_url, csrf=token, error=error)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=LOGIN_TTL_S, httponly=True, samesite="strict",
                        secure=secure_request(request), path="/login")  # fmt: skip
    return response


@router.get("/login")
async def login_page(request: Request, next: str = "/") -> Response:
    access: Access = request.app.state.access
    if access.open:
        return RedirectResponse(safe_next(next), status_code=303)
    return _login_form(request, safe_next(next))


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    next_url = safe_next(str(form.get("next") or "/"))
    t = translator(_lang(request))
    sent, expected = str(form.get("csrf") or ""), request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        return _login_form(request, next_url, t("login.expired"), status=403)
    key = str(form.get("key") or "").strip()
    access: Access = request.app.state.access
    try:
        principal = access.principal(f"Bearer {key}") if key else None
    except ApiError:
        principal = None
    if principal is None:
        return _login_form(request, next_url, t("login.bad_key"), status=401)
    if not principal.allows("review"):
        return _login_form(request, next_url, t("login.no_review"), status=403)
    session = sessions(request).open(key)
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(SESSION_COOKIE, session.id, httponly=True, samesite="strict", secure=secure_request(request),
                        path="/")  # fmt: skip
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    viewer = resolve(request) if SESSION_COOKIE in request.cookies else None
    if viewer is not None and viewer.session is not None:
        sent = str((await request.form()).get("csrf") or "")
        if not hmac.compare_digest(sent.encode(), viewer.session.csrf.encode()):
            raise ApiError(403, "missing or wrong CSRF token (reload the page)", "permission_error", "csrf_failed")
        sessions(request).close(viewer.session.id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _lang(request: Request) -> str:
    from callscribe.server.ui.i18n import request_lang

    return request_lang(request)


@router.get("/lang/{code}")
async def set_lang(code: str, request: Request, next: str = "/") -> Response:
    lang = normalize(code)
    if lang is None:
        raise ApiError(400, f"language {code!r} is not offered (zh-CN, en)", code="invalid_value", param="code")
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(LANG_COOKIE, lang, max_age=LANG_TTL_S, samesite="lax", secure=secure_request(request),
                        path="/")  # fmt: skip
    return response


@router.get("/ui/static/{path:path}")
async def static(path: str, request: Request) -> Response:
    target = (STATIC / path).resolve()
    if not target.is_relative_to(STATIC) or not target.is_file():
        raise ApiError(404, f"no static file {quote(path)}", code="not_found")
    media = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    if target.suffix == ".js":
        media = "text/javascript"
    cache = "public, max-age=31536000, immutable" if request.query_params.get("v") else "public, max-age=300"
    return FileResponse(Path(target), media_type=media, headers={"Cache-Control": cache,
                                                                 "X-Content-Type-Options": "nosniff"})  # fmt: skip
