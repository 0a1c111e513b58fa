"""Who is at the desk: a signed-in session (cookie) or ``Authorization: Bearer KEY``, and CSRF checks on writes.

Signing in with a key makes a server-side session: the cookie holds only a random session id (HttpOnly,
SameSite=Strict, Secure behind https); the key stays in this process and is resolved again on every request, so a
revoked key ends its sessions at once. Every session has a CSRF token that each write must send back
(``X-CSRF-Token`` header or a ``csrf`` form field). Requests with a bearer key need no CSRF token: browsers never
attach that header on their own. Sessions live in memory: a restart signs everyone out.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import quote

from fastapi import Request

from callscribe.server.auth import Access, Principal
from callscribe.server.errors import ApiError

SESSION_COOKIE = "cs_session"
LOGIN_CSRF_COOKIE = "cs_login"
IDLE_S = 12 * 3600.0  # a session unused this long is forgotten
MAX_SESSIONS = 10_000


@dataclass
class Session:
    id: str
    token: str  # the key the user signed in with (kept in memory only)
    csrf: str
    created: float
    seen: float = field(default_factory=time.monotonic)


class Sessions:
    """Signed-in sessions by id (thread-safe)."""

    def __init__(self, idle_s: float = IDLE_S) -> None:
        self.idle_s = idle_s
        self._by_id: dict[str, Session] = {}
        self._lock = threading.Lock()

    def open(self, token: str) -> Session:
        now = time.monotonic()
        s = Session(secrets.token_urlsafe(32), token, secrets.token_urlsafe(24), now, now)
        with self._lock:
            self._sweep(now)
            if len(self._by_id) >= MAX_SESSIONS:  # drop the least recently used
                oldest = min(self._by_id.values(), key=lambda x: x.seen)
                del self._by_id[oldest.id]
            self._by_id[s.id] = s
        return s

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        now = time.monotonic()
        with self._lock:
            s = self._by_id.get(session_id)
            if s is None:
                return None
            if now - s.seen > self.idle_s:
                del self._by_id[session_id]
                return None
            s.seen = now
            return s

    def close(self, session_id: str | None) -> None:
        with self._lock:
            self._by_id.pop(session_id or "", None)

    def _sweep(self, now: float) -> None:
        for sid in [k for k, s in self._by_id.items() if now - s.seen > self.idle_s]:
            del self._by_id[sid]


def sessions(request: Request) -> Sessions:
    """The app's sessions (made on first use)."""
    state = request.app.state
    found = getattr(state, "desk_sessions", None)
    if found is None:
        found = state.desk_sessions = Sessions()
    return found  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Viewer:
    """The person at the desk: their principal, and the session when they came with the cookie."""

    principal: Principal
    session: Session | None = None

    @property
    def name(self) -> str:
        return self.principal.name

    @property
    def pii(self) -> bool:
        return self.principal.allows("pii")

    @property
    def admin(self) -> bool:
        return self.principal.allows("admin")

    @property
    def csrf(self) -> str:
        return self.session.csrf if self.session else ""


def resolve(request: Request) -> Viewer | None:
    """The viewer behind a bearer key or a session cookie; None without either; ApiError 401 for an unknown key."""
    access: Access = request.app.state.access
    if access.open:
        return Viewer(access.principal(None))
    header = request.headers.get("authorization")
    if header:
        return Viewer(access.principal(header))  # 401 ApiError for an unknown key
    session = sessions(request).get(request.cookies.get(SESSION_COOKIE))
    if session is None:
        return None
    try:
        return Viewer(access.principal(f"Bearer {session.token}"), session)
    except ApiError:  # the key was revoked since sign-in
        sessions(request).close(session.id)
        return None


def here(request: Request) -> str:
    """The request's path and query, as a ``next=`` target (always a local path)."""
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return path if path.startswith("/") and not path.startswith("//") else "/"


def login_url(request: Request) -> str:
    return "/login?next=" + quote(here(request), safe="")


def data_viewer(scope: str = "review", *, write: bool = False) -> Callable[[Request], Awaitable[Viewer]]:
    """Dependency for the desk's JSON and media routes: 401/403 as the API answers; ``write``: a session must send
    its CSRF token."""

    async def dependency(request: Request) -> Viewer:
        viewer = resolve(request)
        if viewer is None:
            raise ApiError(401, "sign in at /login or send 'Authorization: Bearer <key>'", "authentication_error",
                           "missing_api_key")  # fmt: skip
        if not viewer.principal.allows(scope):
            raise ApiError(403, f"this API key lacks the {scope!r} scope", "permission_error", "insufficient_scope")
        if write and viewer.session is not None:
            sent = request.headers.get("x-csrf-token", "")
            if not sent and request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
                sent = str((await request.form()).get("csrf", ""))
            if not hmac.compare_digest(sent.encode(), viewer.session.csrf.encode()):
                raise ApiError(403, "missing or wrong CSRF token (reload the page)", "permission_error", "csrf_failed")
        request.state.principal = viewer.principal
        return viewer

    return dependency


def secure_request(request: Request) -> bool:
    """Whether the browser reached us over https (directly or through a proxy that says so)."""
    proto = request.headers.get("x-forwarded-proto", request.url.scheme)
    return proto.split(",")[0].strip().lower() == "https"
