"""The store side of the identity providers: upstream tokens they keep, sealed, for later access re-checks."""

from __future__ import annotations

from mcpgw_auth.store import Store


class StoredUpstreamTokens:
    """`idp.base.UpstreamTokens` on the Store: each token lives `ttl` seconds from its last use."""

    def __init__(self, store: Store, ttl: int) -> None:
        self._store = store
        self._ttl = ttl

    async def load(self, subject: str) -> str | None:
        return await self._store.get_upstream_token(subject)

    async def keep(self, subject: str, sealed: str) -> None:
        await self._store.save_upstream_token(subject, sealed, self._ttl)

    async def drop(self, subject: str) -> None:
        await self._store.delete_upstream_token(subject)
