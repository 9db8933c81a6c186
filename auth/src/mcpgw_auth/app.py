"""Wiring: build every part from the settings, once, and hand back one ASGI application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

from fastapi import FastAPI

from mcpgw_auth.gateway import Gateway
from mcpgw_auth.grants import Grants
from mcpgw_auth.idp.base import IdentityProvider
from mcpgw_auth.idp.dev import DevIdentityProvider
from mcpgw_auth.idp.github import GitHubIdentityProvider
from mcpgw_auth.keys import ensure_keys
from mcpgw_auth.settings import Settings
from mcpgw_auth.store import Store
from mcpgw_auth.store.memory import MemoryStore
from mcpgw_auth.store.redis import RedisStore
from mcpgw_auth.verification import AccessTokenVerifier, KeyManager, RevocationList, follow_revocations
from mcpgw_auth.web import (
    account,
    as_metadata,
    authorize,
    consent,
    errors,
    health,
    introspect,
    jwks,
    manage,
    prm,
    register,
    revoke,
    token,
)
from mcpgw_auth.web.middleware import Middleware
from mcpgw_auth.web.pages import Pages
from mcpgw_auth.web.verify import Receive, Scope, Send, VerifyEndpoint

log = logging.getLogger("mcpgw_auth")


def build_store(settings: Settings) -> Store:
    if settings.redis_url is not None:
        return RedisStore.from_url(settings.redis_url.get_secret_value())
    log.warning(
        "AUTH_REDIS_URL is not set: all state is kept in this process's memory and lost on restart. "
        "Use this only for local development."
    )
    return MemoryStore()


def build_identity_provider(settings: Settings, store: Store, clock: Callable[[], float]) -> IdentityProvider:
    match settings.identity_provider:
        case "dev":
            return DevIdentityProvider(settings)
        case "github":
            return GitHubIdentityProvider(settings, store, clock)


class AuthApp:
    """The auth service: `/verify` answered directly, everything else by the FastAPI app."""

    def __init__(self, gateway: Gateway, verify: VerifyEndpoint, app: Middleware) -> None:
        self.gateway = gateway
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
    store = store or build_store(settings)
    revocations = RevocationList()
    idp = build_identity_provider(settings, store, clock)
    gateway = Gateway(
        settings=settings,
        store=store,
        keys=keys,
        revocations=revocations,
        verifier=AccessTokenVerifier(settings.issuer, keys, revocations, settings.verify_cache_size),
        grants=Grants(settings, store, keys, revocations, clock, idp.access_policy),
        idp=idp,
        pages=Pages(),
        clock=clock,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        ready = asyncio.Event()
        block_ms = int(settings.revocation_sync_interval * 1000)
        follower = asyncio.create_task(
            follow_revocations(store, revocations, clock, settings.access_token_ttl, ready, block_ms)
        )
        key_watch = asyncio.create_task(_watch_keys(keys))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ready.wait(), timeout=5)
        try:
            yield
        finally:
            follower.cancel()
            key_watch.cancel()
            await asyncio.gather(follower, key_watch, return_exceptions=True)
            await store.close()

    api = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    api.state.gateway = gateway
    for module in (
        as_metadata,
        prm,
        jwks,
        health,
        register,
        manage,
        authorize,
        consent,
        token,
        revoke,
        introspect,
        account,
    ):
        api.include_router(module.router)
    api.include_router(gateway.idp.router())
    errors.install(api)
    return AuthApp(gateway, VerifyEndpoint(gateway), Middleware(api, settings.max_body_bytes))


async def _watch_keys(keys: KeyManager) -> None:
    """Pick up a key rotation made by the CLI or another replica."""
    while True:
        await asyncio.sleep(5)
        try:
            keys.refresh()
        except Exception as exc:  # a half-written key dir must not kill the service
            log.error("could not reload signing keys: %s", type(exc).__name__)
