"""Browser state: the login session cookie, a per-browser id, where to sign in, and CSRF tokens bound to both the
browser and the pending authorization request."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote

from fastapi import Request, Response

from mcpgw_auth.oauth import secrets
from mcpgw_auth.records import AuthRequest, Identity
from mcpgw_auth.service.sessions import Sessions


class Browser:
    """The cookies of one gateway (names and flags from its issuer) and the session they carry."""

    def __init__(self, sessions: Sessions, *, secure: bool, cookie_ttl: int, login_path: str) -> None:
        self._sessions = sessions
        self._secure = secure
        self._ttl = cookie_ttl
        self._login_path = login_path

    def _name(self, base: str) -> str:
        # __Host- cookies need Secure, so they are used whenever the issuer is https.
        return f"__Host-mcpgw_{base}" if self._secure else f"mcpgw_{base}"

    def _set(self, response: Response, base: str, value: str) -> None:
        response.set_cookie(
            self._name(base), value, max_age=self._ttl, path="/", secure=self._secure, httponly=True, samesite="lax"
        )

    def login_url(self, request_id: str | None) -> str:
        """Where a browser without a session goes to sign in (a path on the issuer): to continue the pending
        authorization request `request_id`, or, when it is None, to reach the account page."""
        return self._login_path if request_id is None else f"{self._login_path}?request={quote(request_id)}"

    def id(self, request: Request) -> str | None:
        value = request.cookies.get(self._name("bid"))
        return value if value and len(value) <= 64 else None

    def id_or_new(self, request: Request) -> str:
        return self.id(request) or secrets.new_secret()

    def keep_id(self, request: Request, response: Response, bid: str) -> None:
        """Set the browser-id cookie unless the browser already sent this one."""
        if self.id(request) != bid:
            self._set(response, "bid", bid)

    async def current_user(self, request: Request) -> Identity | None:
        return await self._sessions.current(request.cookies.get(self._name("session")))

    async def start_session(self, response: Response, identity: Identity) -> None:
        self._set(response, "session", await self._sessions.start(identity))

    async def end_session(self, request: Request, response: Response) -> None:
        await self._sessions.end(request.cookies.get(self._name("session")))
        response.delete_cookie(self._name("session"), path="/", secure=self._secure, httponly=True, samesite="lax")


def csrf_token(pending: AuthRequest, bid: str, purpose: str) -> str:
    """Only the browser that started the request can produce this (the request's secret keyed by its id)."""
    return hmac.new(pending.csrf.encode(), f"{purpose}:{bid}".encode(), hashlib.sha256).hexdigest()


def csrf_ok(pending: AuthRequest, bid: str | None, purpose: str, presented: str | None) -> bool:
    if bid is None or presented is None:
        return False
    return secrets.equal(presented, csrf_token(pending, bid, purpose))


def browser_csrf_token(bid: str, purpose: str) -> str:
    """For forms outside an authorization request (account page, sign-in for it): keyed by the browser's own
    HttpOnly cookie, which a cross-site page can neither read nor set (`__Host-` under https)."""
    return hmac.new(bid.encode(), f"browser:{purpose}".encode(), hashlib.sha256).hexdigest()


def browser_csrf_ok(bid: str | None, purpose: str, presented: str | None) -> bool:
    if bid is None or presented is None:
        return False
    return secrets.equal(presented, browser_csrf_token(bid, purpose))
