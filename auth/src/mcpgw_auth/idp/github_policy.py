"""Whether a GitHub user may still hold grants: asked at every refresh, answered from the allowlist, and for org and
team entries from GitHub with the user's sealed token, cached for `membership_cache_ttl` seconds per replica."""

from __future__ import annotations

import logging
from collections.abc import Callable

from mcpgw_auth.idp.allowlist import Allowlist
from mcpgw_auth.idp.base import AccessCheckUnavailable, UpstreamTokens
from mcpgw_auth.idp.github_api import GitHubEndpoints, UpstreamError, github_session
from mcpgw_auth.records import Identity
from mcpgw_auth.sealing import TokenSealer

log = logging.getLogger("mcpgw_auth.github")

SUBJECT_PREFIX = "github:"
_CACHE_LIMIT = 10_000


class GitHubAccessPolicy:
    def __init__(
        self,
        allowlist: Allowlist,
        endpoints: GitHubEndpoints,
        tokens: UpstreamTokens,
        sealer: TokenSealer | None,
        cache_ttl: int,
        clock: Callable[[], float],
    ) -> None:
        self._allowlist = allowlist
        self._endpoints = endpoints
        self._tokens = tokens
        self._sealer = sealer
        self._cache_ttl = cache_ttl
        self._clock = clock
        self._cache: dict[str, tuple[bool, float]] = {}  # subject -> (allowed, until)

    async def keep_token(self, identity: Identity, access_token: str) -> None:
        """After a sign-in: keep the GitHub token, sealed, only when this user's re-checks will need it (an org or
        team lets them in, not their login); otherwise it is dropped here, its work done."""
        subject = identity.subject
        if (
            self._sealer is not None
            and self._allowlist.needs_membership
            and not self._allowlist.allows_login(identity.username)
        ):
            sealed = self._sealer.seal(access_token, subject)
            await self._tokens.keep(subject, sealed)
            self._cache.pop(subject, None)

    async def recheck(self, identity: Identity) -> bool:
        if not identity.subject.startswith(SUBJECT_PREFIX):
            return False  # a grant from another provider (the operator switched to GitHub)
        if self._allowlist.allows_login(identity.username):
            return True
        if not self._allowlist.needs_membership or self._sealer is None:
            return False
        now = self._clock()
        cached = self._cache.get(identity.subject)
        if cached is not None and cached[1] > now:
            return cached[0]
        allowed = await self._ask_github(identity)
        if len(self._cache) >= _CACHE_LIMIT:
            del self._cache[next(iter(self._cache))]  # drop the oldest entry
        self._cache[identity.subject] = (allowed, now + self._cache_ttl)
        return allowed

    async def _ask_github(self, identity: Identity) -> bool:
        assert self._sealer is not None
        sealed = await self._tokens.load(identity.subject)
        token = None if sealed is None else self._sealer.open(sealed, identity.subject)
        if sealed is None or token is None:
            return False  # no token kept (expired, or sealed with another key): a new sign-in is needed
        try:
            async with github_session(self._endpoints, token) as github:
                allowed = await self._allowlist.allows(identity.username, github)
        except UpstreamError as exc:
            if exc.failure == "bad_credentials":  # the user revoked the app, or GitHub revoked the token
                await self._tokens.drop(identity.subject)
                return False
            log.warning("membership re-check failed", extra={"reason": exc.failure})
            raise AccessCheckUnavailable(exc.detail) from None
        if allowed:
            await self._tokens.keep(identity.subject, sealed)  # kept while in use
        else:
            await self._tokens.drop(identity.subject)
        return allowed
