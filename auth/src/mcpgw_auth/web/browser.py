"""Browser state: the login session cookie, a per-browser id, and CSRF tokens bound to both the browser and the
pending authorization request."""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request, Response

from mcpgw_auth.gateway import Gateway
from mcpgw_auth.oauth import secrets
from mcpgw_auth.records import AuthRequest, Identity


def _name(gateway: Gateway, base: str) -> str:
    # __Host- cookies need Secure, so they are used whenever the issuer is https.
    return f"__Host-mcpgw_{base}" if gateway.settings.secure_cookies else f"mcpgw_{base}"


def _set(gateway: Gateway, response: Response, base: str, value: str, max_age: int) -> None:
    response.set_cookie(
        _name(gateway, base),
        value,
        max_age=max_age,
        path="/",
        secure=gateway.settings.secure_cookies,
        httponly=True,
        samesite="lax",
    )


def browser_id(gateway: Gateway, request: Request) -> str | None:
    value = request.cookies.get(_name(gateway, "bid"))
    return value if value and len(value) <= 64 else None


def browser_id_or_new(gateway: Gateway, request: Request) -> str:
    return browser_id(gateway, request) or secrets.new_secret()


def keep_browser_id(gateway: Gateway, request: Request, response: Response, bid: str) -> None:
    """Set the browser-id cookie unless the browser already sent this one."""
    if browser_id(gateway, request) != bid:
        _set(gateway, response, "bid", bid, gateway.settings.session_ttl)


def csrf_token(pending: AuthRequest, bid: str, purpose: str) -> str:
    """Only the browser that started the request can produce this (the request's secret keyed by its id)."""
    return hmac.new(pending.csrf.encode(), f"{purpose}:{bid}".encode(), hashlib.sha256).hexdigest()


def csrf_ok(pending: AuthRequest, bid: str | None, purpose: str, presented: str | None) -> bool:
    if bid is None or presented is None:
        return False
    return hmac.compare_digest(csrf_token(pending, bid, purpose), presented)


def browser_csrf_token(bid: str, purpose: str) -> str:
    """For forms outside an authorization request (account page, sign-in for it): keyed by the browser's own
    HttpOnly cookie, which a cross-site page can neither read nor set (`__Host-` under https)."""
    return hmac.new(bid.encode(), f"browser:{purpose}".encode(), hashlib.sha256).hexdigest()


def browser_csrf_ok(bid: str | None, purpose: str, presented: str | None) -> bool:
    if bid is None or presented is None:
        return False
    return hmac.compare_digest(browser_csrf_token(bid, purpose), presented)


async def current_user(gateway: Gateway, request: Request) -> Identity | None:
    value = request.cookies.get(_name(gateway, "session"))
    if not value or len(value) > 64:
        return None
    return await gateway.store.get_session(secrets.digest(value))


async def start_session(gateway: Gateway, response: Response, identity: Identity) -> None:
    value = secrets.new_secret()
    await gateway.store.save_session(secrets.digest(value), identity, gateway.settings.session_ttl)
    _set(gateway, response, "session", value, gateway.settings.session_ttl)


async def end_session(gateway: Gateway, request: Request, response: Response) -> None:
    value = request.cookies.get(_name(gateway, "session"))
    if value and len(value) <= 64:
        await gateway.store.delete_session(secrets.digest(value))
    response.delete_cookie(
        _name(gateway, "session"), path="/", secure=gateway.settings.secure_cookies, httponly=True, samesite="lax"
    )
