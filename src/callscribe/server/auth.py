"""Who is calling: bearer keys resolved to a :class:`Principal`, checked by ``require(scope)`` dependencies.

One admin key (``--api-key``) and, with a call store, the keys kept in it (hashed, each with scopes). With neither,
the service is open (a warning is logged at start).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import Request

from callscribe.server.errors import ApiError
from callscribe.server.scopes import SCOPES

log = logging.getLogger("callscribe.server")


@dataclass(frozen=True)
class Principal:
    """A caller: a name for the logs and the scopes its key grants (``admin`` grants every scope)."""

    name: str
    scopes: frozenset[str]

    def allows(self, scope: str | None) -> bool:
        return scope is None or "admin" in self.scopes or scope in self.scopes


ANONYMOUS = Principal("anonymous", frozenset(SCOPES))  # what an open service (no key configured) sees


class KeyResolver(Protocol):
    """Turns a presented bearer token into a principal, or None when it does not know the token."""

    def resolve(self, token: str) -> Principal | None: ...


class StaticKey:
    """One key from the settings, compared in constant time."""

    def __init__(self, key: str, principal: Principal) -> None:
        self._key = key.encode()
        self.principal = principal

    def resolve(self, token: str) -> Principal | None:
        return self.principal if hmac.compare_digest(token.encode(), self._key) else None


class StoreKeys:
    """Keys kept in the call store (``callscribe keys create``): only their hash is stored; a key's scope field
    holds its scopes, comma-separated."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def resolve(self, token: str) -> Principal | None:
        key = self.store.verify_key(token)
        if key is None:
            return None
        scopes = frozenset(s.strip() for s in str(key.scope).split(",")) & frozenset(SCOPES)
        return Principal(key.name, scopes)


class Access:
    """The resolvers a service trusts; with none, every request is :data:`ANONYMOUS`."""

    def __init__(self, resolvers: Sequence[KeyResolver] = ()) -> None:
        self.resolvers = list(resolvers)

    @classmethod
    def from_key(cls, api_key: str | None) -> Access:
        if not api_key:
            return cls()
        return cls([StaticKey(api_key, Principal("admin", frozenset({"admin"})))])

    @property
    def open(self) -> bool:
        return not self.resolvers

    def principal(self, authorization: str | None) -> Principal:
        """The caller behind an ``Authorization`` header; :class:`ApiError` 401 when missing or not known."""
        if self.open:
            return ANONYMOUS
        token = _bearer(authorization)
        if token is None:
            raise ApiError(401, "missing API key: send 'Authorization: Bearer <key>'", "authentication_error",
                           "missing_api_key")  # fmt: skip
        for resolver in self.resolvers:
            found = resolver.resolve(token)
            if found is not None:
                return found
        raise ApiError(401, "invalid API key", "authentication_error", "invalid_api_key")


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def require(scope: str | None = None) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency: the request's principal, which must hold ``scope`` (None: any known key).

    401 without a valid key, 403 with a key that lacks the scope.
    """
    if scope is not None and scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; known: {', '.join(SCOPES)}")

    async def dependency(request: Request) -> Principal:
        access: Access = request.app.state.access
        principal = access.principal(request.headers.get("authorization"))
        if not principal.allows(scope):
            raise ApiError(403, f"this API key lacks the {scope!r} scope", "permission_error", "insufficient_scope")
        request.state.principal = principal
        return principal

    return dependency
