"""Who is signed in on a browser, and the sign-ins in flight at an identity provider.

The browser holds only random values (the session cookie, the OAuth `state` sent upstream, its browser id); the
store holds their SHA-256, so a store dump cannot be replayed as a cookie.
"""

from __future__ import annotations

import hmac

from mcpgw_auth.oauth import secrets
from mcpgw_auth.oauth.errors import UserFacingError
from mcpgw_auth.records import Identity, LoginState
from mcpgw_auth.settings import Settings
from mcpgw_auth.store import Store

_MAX_COOKIE = 64


class Sessions:
    def __init__(self, settings: Settings, store: Store) -> None:
        self._settings = settings
        self._store = store

    async def current(self, cookie: str | None) -> Identity | None:
        if not cookie or len(cookie) > _MAX_COOKIE:
            return None
        return await self._store.get_session(secrets.digest(cookie))

    async def start(self, identity: Identity) -> str:
        """A new session for `identity`; returns the cookie value."""
        cookie = secrets.new_secret()
        await self._store.save_session(secrets.digest(cookie), identity, self._settings.session_ttl)
        return cookie

    async def end(self, cookie: str | None) -> None:
        if cookie and len(cookie) <= _MAX_COOKIE:
            await self._store.delete_session(secrets.digest(cookie))

    async def begin_login(self, request_id: str | None, browser_id: str, now: int) -> tuple[str, str]:
        """Park a sign-in at the identity provider; returns its `state` and PKCE verifier (RFC 7636)."""
        state, verifier = secrets.new_secret(), secrets.new_secret(48)
        login = LoginState(
            request_id=request_id, browser_hash=secrets.digest(browser_id), code_verifier=verifier, created_at=now
        )
        await self._store.save_login_state(secrets.digest(state), login, self._settings.auth_request_ttl)
        return state, verifier

    async def finish_login(self, state: str | None, browser_id: str | None) -> LoginState:
        """The sign-in a callback's `state` names, once, and only in the browser that started it."""
        login = await self._store.take_login_state(secrets.digest(state)) if state else None
        if login is None:
            raise UserFacingError(
                "Sign-in failed",
                "This sign-in link is unknown, expired or was already used. Start again from your application.",
            )
        if browser_id is None or not hmac.compare_digest(secrets.digest(browser_id), login.browser_hash):
            raise UserFacingError(
                "Sign-in failed", "This sign-in was started in another browser. Start again from there.", 403
            )
        return login
