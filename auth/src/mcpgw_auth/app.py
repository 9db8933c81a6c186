"""Wiring: build every part from the settings, once, and hand back one ASGI application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from types import ModuleType

from fastapi import FastAPI

from mcpgw_auth.idp.allowlist import Allowlist
from mcpgw_auth.idp.base import IdentityProvider, UpstreamTokens
from mcpgw_auth.idp.dev import DevIdentityProvider
from mcpgw_auth.idp.github import GitHubConfig, GitHubIdentityProvider
from mcpgw_auth.keys import KeyManager, ensure_keys
from mcpgw_auth.sealing import decode_key
from mcpgw_auth.service.accounts import Accounts
from mcpgw_auth.service.authorization import Authorizations
from mcpgw_auth.service.cimd import ClientDocuments, DocumentFetcher
from mcpgw_auth.service.clients import Clients
from mcpgw_auth.service.health import Health
from mcpgw_auth.service.revocations import Revocations
from mcpgw_auth.service.sessions import Sessions
from mcpgw_auth.service.tokens import Tokens
from mcpgw_auth.service.upstream import StoredUpstreamTokens
from mcpgw_auth.service.verification import AccessTokenVerifier, RevocationList
from mcpgw_auth.settings import Settings
from mcpgw_auth.store import Store
from mcpgw_auth.web import (
    account,
    as_metadata,
    authorize,
    consent,
    errors,
    health,
    introspect,
    jwks,
    login_dev,
    login_github,
    manage,
    prm,
    register,
    revoke,
    token,
)
from mcpgw_auth.web.browser import Browser
from mcpgw_auth.web.middleware import Middleware
from mcpgw_auth.web.pages import Pages
from mcpgw_auth.web.verify import Receive, Scope, Send, VerifyEndpoint
from mcpgw_auth.wiring import open_store

log = logging.getLogger("mcpgw_auth")

_ROUTERS = (as_metadata, prm, jwks, health, manage, authorize, consent, token, revoke, introspect, account)


def build_identity_provider(
    settings: Settings, tokens: UpstreamTokens, clock: Callable[[], float]
) -> tuple[IdentityProvider, ModuleType]:
    """The configured provider and the web module holding its login routes."""
    match settings.identity_provider:
        case "dev":
            return DevIdentityProvider(settings.issuer), login_dev
        case "github":
            secret, key = settings.github_client_secret, settings.token_encryption_key
            if not settings.github_client_id or secret is None:
                raise RuntimeError("the GitHub login needs AUTH_GITHUB_CLIENT_ID and AUTH_GITHUB_CLIENT_SECRET")
            config = GitHubConfig(
                client_id=settings.github_client_id,
                client_secret=secret.get_secret_value(),
                web_url=settings.github_base_url,
                api_url=settings.github_api_url,
                issuer=settings.issuer,
                timeout=settings.github_timeout,
                allowlist=Allowlist.parse(settings.allowlist, settings.allow_all_users),
                token_key=decode_key(key.get_secret_value()) if key is not None else None,
                membership_cache_ttl=settings.membership_cache_ttl,
            )
            return GitHubIdentityProvider(config, tokens, clock), login_github


class AuthApp:
    """The auth service: `/verify` answered directly, everything else by the FastAPI app."""

    def __init__(self, verify: VerifyEndpoint, app: Middleware) -> None:
        self._verify = verify
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/verify":
            await self._verify(scope, receive, send)
        else:
            await self._app(scope, receive, send)


def create_app(settings: Settings, store: Store | None = None, clock: Callable[[], float] = time.time) -> AuthApp:
    ensure_keys(settings.key_dir)
    keys = KeyManager(settings.key_dir, settings.access_token_ttl)
    store = store or open_store(settings)
    revoked = RevocationList()
    revocations = Revocations(store, revoked, settings.access_token_ttl)
    verifier = AccessTokenVerifier(settings.issuer, keys, revoked, settings.verify_cache_size)
    upstream = StoredUpstreamTokens(store, settings.refresh_token_ttl)
    idp, login = build_identity_provider(settings, upstream, clock)
    sessions = Sessions(settings, store)
    pages = Pages()
    fetcher = DocumentFetcher(
        timeout=settings.cimd_timeout,
        max_bytes=settings.cimd_max_bytes,
        allowed_hosts=frozenset(settings.cimd_allowed_hosts),
        ca_file=settings.cimd_ca_file,
    )
    documents = ClientDocuments(settings, store, fetcher, clock)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        ready = asyncio.Event()
        follower = asyncio.create_task(revocations.follow(clock, ready, int(settings.revocation_sync_interval * 1000)))
        key_watch = asyncio.create_task(_watch_keys(keys))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ready.wait(), timeout=5)
        try:
            yield
        finally:
            follower.cancel()
            key_watch.cancel()
            await asyncio.gather(follower, key_watch, return_exceptions=True)
            await fetcher.aclose()
            await store.close()

    api = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    state = api.state
    state.settings, state.pages, state.keys, state.clock, state.idp = settings, pages, keys, clock, idp
    state.sessions = sessions
    state.browser = Browser(
        sessions, secure=settings.secure_cookies, cookie_ttl=settings.session_ttl, login_path=login.LOGIN_PATH
    )
    state.health = Health(store)
    state.clients = Clients(settings, store, revocations, documents)
    state.authorizations = Authorizations(settings, store, documents)
    state.tokens = Tokens(settings, store, keys, verifier, revocations, idp.access_policy, clock)
    state.accounts = Accounts(store, revocations)
    # RFC 7591 registration may be switched off (MCP 2026-07-28 deprecates it for metadata documents); clients
    # registered before keep working and keep their RFC 7592 management.
    registration = (register,) if settings.registration_enabled else ()
    for module in (*_ROUTERS, *registration, login):
        api.include_router(module.router)
    errors.install(api, pages, settings.issuer)
    return AuthApp(VerifyEndpoint(settings, verifier, clock), Middleware(api, settings.max_body_bytes))


async def _watch_keys(keys: KeyManager) -> None:
    """Pick up a key rotation made by the CLI or another replica."""
    while True:
        await asyncio.sleep(5)
        try:
            keys.refresh()
        except Exception as exc:  # a half-written key dir must not kill the service
            log.error("could not reload signing keys: %s", type(exc).__name__)
