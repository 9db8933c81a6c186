"""The GitHub identity provider: the OAuth App web flow, then our own consent page.

GET /login/github sends the browser to GitHub with a single-use `state` bound to this browser and to the pending
authorization request (or to the account page); GET /login/github/callback exchanges the code, reads the user,
applies the allowlist, and starts a session. Any failure ends in an RFC 6749 error redirect to the client when the
pending request is known, else in an error page.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from mcpgw_auth.gateway import Gateway
from mcpgw_auth.idp.allowlist import Allowlist
from mcpgw_auth.idp.github_api import Failure, GitHubEndpoints, UpstreamError, github_session
from mcpgw_auth.idp.github_policy import SUBJECT_PREFIX, GitHubAccessPolicy
from mcpgw_auth.oauth import secrets
from mcpgw_auth.oauth.authorize import error_redirect
from mcpgw_auth.oauth.errors import OAuthError, UserFacingError
from mcpgw_auth.records import AuthRequest, Identity, LoginState
from mcpgw_auth.sealing import TokenSealer, decode_key
from mcpgw_auth.settings import Settings
from mcpgw_auth.store import Store
from mcpgw_auth.web import browser
from mcpgw_auth.web.consent import EXPIRED, pending_request
from mcpgw_auth.web.deps import GatewayDep, Query
from mcpgw_auth.web.forms import FormData

log = logging.getLogger("mcpgw_auth.github")

LOGIN_PATH = "/login/github"
CALLBACK_PATH = "/login/github/callback"

_TITLES = {
    "denied": "Sign-in cancelled",
    "not_allowed": "Not allowed",
    "timeout": "GitHub is unavailable",
    "unavailable": "GitHub is unavailable",
    "rate_limited": "GitHub is unavailable",
}
_CALLBACK_ERRORS: dict[str, Failure] = {  # errors GitHub puts on the callback besides access_denied
    "redirect_uri_mismatch": "misconfigured",
    "application_suspended": "misconfigured",
}


def _param(query: FormData, name: str, max_length: int = 512) -> str | None:
    values = query.get(name, [])
    if len(values) > 1 or (values and len(values[0]) > max_length):
        raise UserFacingError("Invalid request", f"The {name} parameter is malformed.")
    return values[0] if values else None


def _redirect(location: str, status: int = 303) -> RedirectResponse:
    return RedirectResponse(location, status_code=status, headers={"Cache-Control": "no-store"})


class GitHubIdentityProvider:
    name = "github"

    def __init__(self, settings: Settings, store: Store, clock: Callable[[], float]) -> None:
        secret, key = settings.github_client_secret, settings.token_encryption_key
        if not settings.github_client_id or secret is None:
            raise RuntimeError("the GitHub login needs AUTH_GITHUB_CLIENT_ID and AUTH_GITHUB_CLIENT_SECRET")
        self._allowlist = Allowlist.parse(settings.allowlist, settings.allow_all_users)
        self._endpoints = GitHubEndpoints(
            web_url=settings.github_base_url,
            api_url=settings.github_api_url,
            client_id=settings.github_client_id,
            client_secret=secret.get_secret_value(),
            redirect_uri=f"{settings.issuer}{CALLBACK_PATH}",
            # user:email for the verified primary address; read:org to see org and team memberships.
            scope="user:email read:org" if self._allowlist.needs_membership else "user:email",
            timeout=settings.github_timeout,
        )
        sealer = TokenSealer(decode_key(key.get_secret_value())) if key is not None else None
        self.access_policy = GitHubAccessPolicy(
            self._allowlist,
            self._endpoints,
            store,
            sealer,
            settings.refresh_token_ttl,
            settings.membership_cache_ttl,
            clock,
        )

    def login_url(self, request_id: str | None) -> str:
        return LOGIN_PATH if request_id is None else f"{LOGIN_PATH}?request={quote(request_id)}"

    def router(self) -> APIRouter:
        router = APIRouter()

        @router.get(LOGIN_PATH)
        async def start(request: Request, gateway: GatewayDep, query: Query) -> Response:
            request_id = _param(query, "request", 64)
            if request_id is not None:
                await pending_request(gateway, request_id)
            bid = browser.browser_id_or_new(gateway, request)
            state, verifier = secrets.new_secret(), secrets.new_secret(48)
            login = LoginState(
                request_id=request_id,
                browser_hash=secrets.digest(bid),
                code_verifier=verifier,
                created_at=gateway.now(),
            )
            await gateway.store.save_login_state(secrets.digest(state), login, gateway.settings.auth_request_ttl)
            async with github_session(self._endpoints) as github:
                response = _redirect(github.authorization_url(state, verifier), status=302)
            browser.keep_browser_id(gateway, request, response, bid)
            return response

        @router.get(CALLBACK_PATH)
        async def callback(request: Request, gateway: GatewayDep, query: Query) -> Response:
            login = await self._login_state(gateway, request, query)
            pending = None
            if login.request_id is not None:
                pending, _ = await pending_request(gateway, login.request_id)
            try:
                identity = await self._sign_in(query, login)
            except UpstreamError as exc:
                log.warning("GitHub sign-in failed", extra={"reason": exc.failure})
                return await self._fail(gateway, pending, exc)
            target = "/account" if pending is None else f"/consent?request={quote(pending.request_id)}"
            response = _redirect(target)  # MCP confused-deputy rule: our own consent page comes next
            await browser.start_session(gateway, response, identity)
            return response

        return router

    async def _login_state(self, gateway: Gateway, request: Request, query: FormData) -> LoginState:
        state = _param(query, "state", 128)
        login = await gateway.store.take_login_state(secrets.digest(state)) if state else None
        if login is None:
            raise UserFacingError(
                "Sign-in failed",
                "This sign-in link is unknown, expired or was already used. Start again from your application.",
            )
        bid = browser.browser_id(gateway, request)
        if bid is None or not hmac.compare_digest(secrets.digest(bid), login.browser_hash):
            raise UserFacingError(
                "Sign-in failed", "This sign-in was started in another browser. Start again from there.", 403
            )
        return login

    async def _sign_in(self, query: FormData, login: LoginState) -> Identity:
        error = _param(query, "error", 100)
        if error == "access_denied":  # the user pressed Cancel on GitHub's authorization page
            raise UpstreamError("denied", "The authorization was declined on GitHub.")
        if error is not None:
            raise UpstreamError(_CALLBACK_ERRORS.get(error, "unexpected"), "GitHub refused the sign-in.")
        code = _param(query, "code")
        if not code:
            raise UpstreamError("unexpected", "GitHub's answer carried no authorization code.")
        async with github_session(self._endpoints) as github:
            await github.exchange(code, login.code_verifier)
            user = await github.user()
            if not await self._allowlist.allows(user.login, github):
                raise UpstreamError("not_allowed", f"The GitHub account {user.login} may not use this gateway.")
            identity = Identity(subject=f"{SUBJECT_PREFIX}{user.id}", username=user.login, email=user.email)
            await self.access_policy.keep_token(identity, github.access_token)
        return identity

    async def _fail(self, gateway: Gateway, pending: AuthRequest | None, exc: UpstreamError) -> Response:
        if pending is None:
            raise UserFacingError(_TITLES.get(exc.failure, "Sign-in failed"), exc.detail, exc.status)
        if await gateway.store.take_auth_request(pending.request_id) is None:
            raise EXPIRED
        error = OAuthError(exc.error_code, exc.detail)  # RFC 6749 §4.1.2.1, with `iss` (RFC 9207)
        return _redirect(error_redirect(pending.redirect_uri, error, pending.state, gateway.settings.issuer))
