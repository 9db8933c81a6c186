"""Ending grants and tokens: applied on this replica at once and published on the feed every replica follows."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from mcpgw_auth.records import Revocation
from mcpgw_auth.service.verification import RevocationList
from mcpgw_auth.store import Store

log = logging.getLogger("mcpgw_auth.revocations")


class Revocations:
    def __init__(self, store: Store, revoked: RevocationList, access_token_ttl: int) -> None:
        self._store = store
        self._revoked = revoked
        self._access_token_ttl = access_token_ttl

    async def revoke_family(self, family_id: str, now: int) -> None:
        issued = await self._store.revoke_family(family_id)
        await self.revoke_access_tokens(issued, now)

    async def revoke_access_tokens(self, issued: list[tuple[str, int]], now: int) -> None:
        entries = [Revocation(kind="jti", value=jti, at=now, expires_at=exp) for jti, exp in issued if exp > now]
        if entries:
            self._revoked.apply(entries)  # effective on this replica at once
            await self._store.publish_revocations(entries)

    async def revoke_client(self, client_id: str, now: int) -> None:
        for family_id in await self._store.families_of_client(client_id):
            await self._store.revoke_family(family_id)
        entry = Revocation(kind="client", value=client_id, at=now, expires_at=now + self._access_token_ttl)
        self._revoked.apply([entry])
        await self._store.publish_revocations([entry])

    async def follow(self, clock: Callable[[], float], ready: asyncio.Event, block_ms: int) -> None:
        """Background task: apply the revocation feed as it arrives (within a second on every replica)."""
        cursor: str | None = None
        last_prune = clock()
        while True:
            try:
                entries, cursor = await self._store.read_revocations(cursor, block_ms=block_ms)
                self._revoked.apply(entries)
                ready.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # store unreachable: keep serving what we know, retry soon
                log.warning("revocation feed unavailable: %s", type(exc).__name__)
                await asyncio.sleep(0.5)
            if clock() - last_prune > 60:
                self._revoked.prune(int(clock()), self._access_token_ttl)
                last_prune = clock()
